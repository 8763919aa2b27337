"""Image preprocessing in TF ops against transformers' ViTImageProcessor (its PIL backend, which
AutoImageProcessor gives without torchvision) on the real photographs in scikit-image's wheel, read as files.

Tolerance: 8-bit images are resized as PIL does (two passes, each rounded to 8 bits); PIL's fixed-point filter
coefficients still round some values that lie near a half differently (most of them when upscaling), so a
value may differ by at most 2 gray levels (2/255 before normalization, 0.0157 after ViT's std of 0.5), in at
most 3% of an image's values; every other value agrees to 1e-6. A model's predicted class is the same from
either preprocessing.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import tfformers
from tfformers.errors import ConfigError, InputError

GRAY_LEVEL = 1 / 255 / 0.5  # one 8-bit step after rescaling and normalizing with std 0.5
VIT_CONFIG = {  # google/vit-base-patch16-224's preprocessor_config.json
    "image_processor_type": "ViTImageProcessor",
    "do_resize": True,
    "size": {"height": 224, "width": 224},
    "resample": 2,
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
}
OTHER_STEPS = {  # bicubic to the shortest edge, then a center crop
    **VIT_CONFIG,
    "size": {"shortest_edge": 72},
    "resample": 3,
    "do_center_crop": True,
    "crop_size": {"height": 64, "width": 60},
}


def photographs():
    """scikit-image's photographs in its wheel (PNG and JPEG files), converted to RGB by PIL."""
    import skimage
    from PIL import Image

    folder = Path(skimage.__file__).parent / "data"
    files = sorted(folder.glob("*.png")) + sorted(folder.glob("*.jpg"))
    assert len(files) >= 20, files
    return {path.name: Image.open(path).convert("RGB") for path in files}


@pytest.fixture(scope="module")
def photos():
    return photographs()


def _folder(tmp_path_factory, config):
    folder = tmp_path_factory.mktemp("processor")
    (folder / "preprocessor_config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def vit_folder(tmp_path_factory):
    return _folder(tmp_path_factory, VIT_CONFIG)


def _compare(ours, theirs):
    delta = np.abs(ours.astype(np.float64) - theirs)
    return float(delta.max()), float((delta > 1e-6).mean())


@pytest.mark.parametrize("config", [VIT_CONFIG, OTHER_STEPS], ids=["vit-224-bilinear", "bicubic-shortest-edge-crop"])
def test_matches_transformers_on_photographs(config, photos, tmp_path_factory):
    import transformers

    folder = _folder(tmp_path_factory, config)
    theirs = transformers.AutoImageProcessor.from_pretrained(folder)
    ours = tfformers.AutoImageProcessor.from_pretrained(folder)
    worst, differing = 0.0, []
    for name, image in photos.items():
        expected = theirs(image, return_tensors="np")["pixel_values"]
        got = ours(image, return_tensors="np")["pixel_values"]
        assert got.shape == expected.shape and got.dtype == np.float32, name
        delta, fraction = _compare(got, expected)
        worst = max(worst, delta)
        differing.append(fraction)
    print(f"\n{config['resample']=}: max |Δ| {worst:.4f} ({worst / GRAY_LEVEL:.2f} gray levels), "
          f"values differing: at most {max(differing):.5%}")
    assert worst <= 2 * GRAY_LEVEL + 1e-6
    assert max(differing) <= 0.03


def test_predicted_class_is_the_same(photos, vit_folder):
    import torch
    import transformers
    from oracle import torch_model

    config = transformers.ViTConfig(image_size=224, patch_size=16, hidden_size=36, num_hidden_layers=2,
                                    num_attention_heads=3, intermediate_size=37, num_labels=10)
    torch.manual_seed(0)
    pt_model = torch_model("ViTForImageClassification", config)
    theirs = transformers.AutoImageProcessor.from_pretrained(vit_folder)
    ours = tfformers.AutoImageProcessor.from_pretrained(vit_folder)
    images = list(photos.values())
    with torch.no_grad():
        from_theirs = pt_model(pixel_values=torch.as_tensor(theirs(images, return_tensors="np")["pixel_values"]))
        from_ours = pt_model(pixel_values=torch.as_tensor(ours(images, return_tensors="np")["pixel_values"]))
    np.testing.assert_array_equal(from_ours.logits.argmax(-1).numpy(), from_theirs.logits.argmax(-1).numpy())
    print(f"\nlogits max |Δ| {float((from_ours.logits - from_theirs.logits).abs().max()):.2e}")


def test_every_input_form_gives_the_same_pixels(photos, vit_folder):
    from PIL import Image

    processor = tfformers.AutoImageProcessor.from_pretrained(vit_folder)
    image = photos["chelsea.png"]
    hwc = np.asarray(image)
    expected = processor(image, return_tensors="np")["pixel_values"]
    assert expected.shape == (1, 3, 224, 224)
    import io

    png = io.BytesIO()
    image.save(png, format="PNG")
    forms = {
        "numpy HWC uint8": hwc,
        "numpy CHW uint8": hwc.transpose(2, 0, 1),
        "tf tensor": tf.constant(hwc),
        "list": [hwc],
        "4-D batch": hwc[None],
        "PNG bytes": png.getvalue(),
    }
    for form, value in forms.items():
        np.testing.assert_array_equal(processor(value, return_tensors="np")["pixel_values"], expected, err_msg=form)
    # float images are resized in float: within a gray level of the 8-bit route
    as_float = processor(hwc.astype(np.float32), return_tensors="np")["pixel_values"]
    np.testing.assert_allclose(as_float, expected, atol=GRAY_LEVEL)
    # a grayscale image keeps one channel unless the config asks for RGB (transformers refuses it too)
    gray = image.convert("L")
    with pytest.raises(InputError, match=r"1 channel\(s\) cannot be normalized with the config's 3 channel means"):
        processor(gray)
    one_channel = processor(gray, return_tensors="np", image_mean=[0.5], image_std=[0.5])["pixel_values"]
    assert one_channel.shape == (1, 1, 224, 224)
    rgb = processor(gray, return_tensors="np", do_convert_rgb=True)["pixel_values"]
    np.testing.assert_array_equal(rgb[:, 0], rgb[:, 2])
    batch = processor([image, photos["coffee.png"], Image.fromarray(hwc)], return_tensors="tf")["pixel_values"]
    assert isinstance(batch, tf.Tensor) and batch.shape == (3, 3, 224, 224)
    np.testing.assert_array_equal(batch[2].numpy(), expected[0])
    listed = processor([image], return_tensors=None)["pixel_values"]
    assert isinstance(listed, list) and listed[0].shape == (3, 224, 224)


def test_the_keras_layer_takes_images_and_encoded_bytes(photos, vit_folder):
    import io

    processor = tfformers.AutoImageProcessor.from_pretrained(vit_folder)
    names = ["astronaut.png", "coffee.png", "rocket.jpg"]
    encoded, expected = [], []
    for name in names:
        data = io.BytesIO()
        photos[name].save(data, format="PNG")
        encoded.append(data.getvalue())
        expected.append(processor(photos[name], return_tensors="np")["pixel_values"][0])
    layer = processor.as_layer()
    np.testing.assert_array_equal(layer(tf.constant(encoded)).numpy(), np.stack(expected))
    same_size = np.stack([np.asarray(photos[name].resize((128, 96))) for name in names])
    np.testing.assert_array_equal(
        layer(tf.constant(same_size)).numpy(), processor(list(same_size), return_tensors="np")["pixel_values"]
    )
    # in a graph, with the batch size unknown, as a SavedModel signature would run it
    serve = tf.function(layer, input_signature=[tf.TensorSpec([None], tf.string)])
    np.testing.assert_array_equal(serve(tf.constant(encoded)).numpy(), np.stack(expected))
    rebuilt = type(layer).from_config(layer.get_config())
    np.testing.assert_array_equal(rebuilt(tf.constant(encoded[:1])).numpy(), expected[0][None])


def test_save_pretrained_round_trip(vit_folder, tmp_path):
    # 4.x's scripts pass trust_remote_code=False with the hub options; it is not a setting to save
    processor = tfformers.AutoImageProcessor.from_pretrained(vit_folder, revision="main", cache_dir=None, token=None,
                                                            trust_remote_code=False)
    processor.save_pretrained(tmp_path)
    assert "trust_remote_code" not in json.loads((tmp_path / "preprocessor_config.json").read_text())
    again = tfformers.AutoFeatureExtractor.from_pretrained(tmp_path)
    assert again.settings == processor.settings and again.size == {"height": 224, "width": 224}
    with pytest.raises(ConfigError, match=r"trust_remote_code=True for the image processor of .*never runs code"):
        tfformers.AutoImageProcessor.from_pretrained(tmp_path, trust_remote_code=True)


def test_bad_input_and_unsupported_processors_are_named(vit_folder, tmp_path):
    processor = tfformers.AutoImageProcessor.from_pretrained(vit_folder)
    with pytest.raises(InputError, match=r"image 1 \(16 bytes starting b'not an image'\).*JPEG, PNG"):
        processor([np.zeros((8, 8, 3), np.uint8), b"not an image 123"])
    with pytest.raises(InputError, match=r"image 0 has shape \[5, 7, 9\]"):
        processor(np.zeros((5, 7, 9), np.uint8))
    with pytest.raises(InputError, match="image 0 is a dict"):
        processor({"image": 1})
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"image_processor_type": "CLIPImageProcessor"}))
    with pytest.raises(ConfigError, match=r"preprocessor_config.json names the processor 'CLIPImageProcessor'"):
        tfformers.AutoImageProcessor.from_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({**VIT_CONFIG, "resample": 5}))
    with pytest.raises(ConfigError, match=r"resample=5 \(HAMMING\)"):
        tfformers.AutoImageProcessor.from_pretrained(tmp_path)
