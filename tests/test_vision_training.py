"""Training ViT the Keras way on image datasets: `prepare_tf_dataset` batches `pixel_values` computed on the fly
from a 🤗 `Image` column (`dataset.with_transform(processor.transform())`), and a small ViT trained from
scratch on Fashion-MNIST (the Debian package's IDX files) with compile()/fit() and the default loss reaches
85% test accuracy."""

import numpy as np
import pytest
import tensorflow as tf
from assets import fashion_mnist_recipe

import tfformers
from tfformers.errors import InputError


def _tiny_image_dataset(count=10, decode=True):
    import datasets

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (28, 28), dtype=np.uint8) for _ in range(count)]
    features = datasets.Features({"image": datasets.Image(decode=decode), "label": datasets.ClassLabel(num_classes=3)})
    return datasets.Dataset.from_dict({"image": images, "label": [i % 3 for i in range(count)]}, features=features)


def _grayscale_vit(**overrides):
    settings = dict(image_size=28, patch_size=7, num_channels=1, hidden_size=32, num_hidden_layers=1,
                    num_attention_heads=2, intermediate_size=37, num_labels=3)
    return tfformers.TFAutoModelForImageClassification.from_config(tfformers.ViTConfig(**{**settings, **overrides}))


def test_prepare_tf_dataset_applies_the_transform_when_reading():
    import datasets

    processor = tfformers.ViTImageProcessor(do_resize=False, image_mean=[0.5], image_std=[0.5])
    model = _grayscale_vit()
    dataset = _tiny_image_dataset()
    with pytest.raises(InputError, match=r"image column 'image' but no 'pixel_values'.*with_transform"):
        model.prepare_tf_dataset(dataset)

    tf_dataset = model.prepare_tf_dataset(dataset.with_transform(processor.transform()), batch_size=4, shuffle=False)
    inputs_spec, labels_spec = tf_dataset.element_spec
    assert inputs_spec["pixel_values"].shape.as_list() == [None, 1, 28, 28]
    batches = list(tf_dataset)
    assert [len(labels) for _, labels in batches] == [4, 4, 2]
    pixels = np.concatenate([inputs["pixel_values"].numpy() for inputs, _ in batches])
    stored = np.stack([np.asarray(image) for image in dataset["image"]])[:, None]
    np.testing.assert_allclose(pixels, (stored / 255 - 0.5) / 0.5, atol=1e-6)
    np.testing.assert_array_equal(np.concatenate([labels for _, labels in batches]), dataset["label"])

    # encoded images (Image(decode=False)) are decoded by the processor: the same pixels
    undecoded = _tiny_image_dataset(decode=False).with_transform(processor.transform())
    again = model.prepare_tf_dataset(undecoded, batch_size=4, shuffle=False)
    np.testing.assert_array_equal(np.concatenate([x["pixel_values"].numpy() for x, _ in again]), pixels)

    # labels outside the classes are refused naming the dataset's row, as for text (tf.data reports the error)
    bad = _tiny_image_dataset().cast_column("label", datasets.Value("int64"))
    bad = bad.map(lambda row, i: {"label": 7 if i == 5 else row["label"]}, with_indices=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"labels row 5 of the dataset has class label 7"):
        list(model.prepare_tf_dataset(bad.with_transform(processor.transform()), batch_size=4, shuffle=False))


@pytest.mark.slow
def test_fashion_mnist_from_scratch():
    """The recipe of examples/fashion_mnist.py (the demo's vision section): 3 epochs on the 60,000 training
    images reach at least 85% accuracy on the 10,000 test images (85.98% measured)."""
    fashion = fashion_mnist_recipe()
    train, test = fashion.load("train"), fashion.load("t10k")
    model, seconds = fashion.train(train)
    accuracy = float((fashion.predict(model, test) == np.asarray(test["label"])).mean())
    print(f"\nFashion-MNIST: test accuracy {accuracy:.4f} after 3 epochs ({seconds:.0f} s of fit)")
    assert accuracy >= 0.85
