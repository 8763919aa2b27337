"""An image classifier exported with its image processor in the graph and served: image files (base64 in TF
Serving's REST API) in, label and score out, as the Python path (processor, then model) answers."""

import base64
import io
import json
import os
import urllib.error
import urllib.request

import numpy as np
import pytest

import tfformers
from tfformers.errors import ConfigError
from tfformers.serving import ModelServer

LABELS = ("cat", "coffee", "rocket")
PROCESSOR = {"image_processor_type": "ViTImageProcessor", "do_resize": True, "size": {"height": 32, "width": 32},
             "resample": 2, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
             "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}


@pytest.fixture(scope="module")
def classifier_folder(tmp_path_factory):
    """A tiny random ViT classifier for 32x32 images, saved with its preprocessor_config.json."""
    import keras

    keras.utils.set_random_seed(0)
    config = tfformers.ViTConfig(image_size=32, patch_size=8, hidden_size=36, num_hidden_layers=2,
                                 num_attention_heads=3, intermediate_size=37, id2label=dict(enumerate(LABELS)))
    folder = tmp_path_factory.mktemp("vit-classifier")
    tfformers.TFAutoModelForImageClassification.from_config(config).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(PROCESSOR))
    return folder


def post(server, encoded):
    """(status, JSON answer) of a predict request with base64-encoded image files."""
    body = json.dumps({"instances": [{"b64": data} for data in encoded]}).encode()
    request = urllib.request.Request(server.url + "/v1/models/vit:predict", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def png_files():
    from test_image_processing import photographs

    photos = photographs()
    files = []
    for name in ("chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png"):
        data = io.BytesIO()
        photos[name].save(data, format="PNG")
        files.append(data.getvalue())
    return files


def test_image_bytes_in_label_and_score_out(classifier_folder, tmp_path):
    model = tfformers.TFAutoModelForImageClassification.from_pretrained(classifier_folder)
    processor = tfformers.AutoImageProcessor.from_pretrained(classifier_folder)
    files = png_files()
    logits = model.predict(processor(files, return_tensors="np"), verbose=0).logits
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    expected_labels = [LABELS[i] for i in probabilities.argmax(-1)]

    path = tfformers.export(model, tmp_path / "vit")
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    with ModelServer(tmp_path, port=0, max_string_bytes=1 << 20) as server:
        status, answer = post(server, [base64.b64encode(data).decode() for data in files])
        assert status == 200
        predictions = answer["predictions"]
        # an undecodable file: TF's decoding error, as TF Serving returns it, and the server keeps serving
        status, answer = post(server, [base64.b64encode(b"not an image").decode()])
        assert status == 400 and "image file format" in answer["error"], answer
        assert post(server, [base64.b64encode(files[0]).decode()])[0] == 200
    assert [p["label"] for p in predictions] == expected_labels
    np.testing.assert_allclose([p["score"] for p in predictions], probabilities.max(-1), atol=1e-5)

    # the pixels signature answers the same from processed images
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    pixels = tf.constant(processor(files, return_tensors="np").pixel_values)
    answer = loaded.signatures["from_pixels"](pixel_values=pixels)
    assert [label.decode() for label in answer["label"].numpy()] == expected_labels


def test_export_needs_a_fixed_size_processor(classifier_folder, tmp_path):
    model = tfformers.TFAutoModelForImageClassification.from_pretrained(classifier_folder)
    by_edge = tfformers.ViTImageProcessor(size={"shortest_edge": 32})
    with pytest.raises(ConfigError, match="shortest_edge without a crop"):
        tfformers.export(model, tmp_path / "vit", image_processor=by_edge)


def test_image_classification_pipeline_answers_as_transformers(classifier_folder):
    import transformers
    from PIL import Image

    files = png_files()
    images = [Image.open(io.BytesIO(data)).convert("RGB") for data in files]
    ours = tfformers.pipeline("image-classification", model=str(classifier_folder))
    theirs = transformers.pipeline("image-classification", model=str(classifier_folder))
    answers, expected = ours(images, top_k=3), theirs(images, top_k=3)
    for answer, reference in zip(answers, expected):
        assert [a["label"] for a in answer] == [r["label"] for r in reference]
        np.testing.assert_allclose([a["score"] for a in answer], [r["score"] for r in reference], atol=1e-3)
    assert ours(files[0], top_k=3) == answers[0]  # encoded bytes: the same pixels as the decoded image
    assert tfformers.pipeline(model=str(classifier_folder)).task == "image-classification"
