"""Image preprocessing in TensorFlow ops, configured by a checkpoint's `preprocessor_config.json`.

transformers 5's image processors need PyTorch; these do the same steps as its `ViTImageProcessor` with TF
ops, in transformers' order: resize (the config's `resample`, antialiased as PIL resizes), center crop,
rescale, normalize, channels first. The same steps run in three places:

* `AutoImageProcessor.from_pretrained(path)(images, return_tensors="np"|"tf")`: PIL images, numpy arrays
  (HWC or CHW, uint8 or float), TF tensors, encoded JPEG/PNG bytes, file paths, and lists of them.
* `processor.as_layer()`: a Keras layer from a batch of channels-last images, or of encoded image bytes
  (tf.string), to `pixel_values`; inside a model it goes into a SavedModel, which then takes image files.
* `processor.transform(...)`: a 🤗 `datasets` transform (`dataset.with_transform`) producing `pixel_values`
  from an `Image` column on the fly, which `prepare_tf_dataset` batches (an `Image(decode=False)` column's
  encoded bytes are decoded with TF ops).

8-bit images are resized as PIL resizes them (transformers' processors go through PIL): the result is
rounded back to 8 bits before it is rescaled. Float images are resized in float.
"""

import json
import os
from dataclasses import asdict, dataclass

import keras
import numpy as np
import tensorflow as tf

from tfformers import hub
from tfformers.errors import ConfigError, InputError
from tfformers.fileio import atomic_directory
from tfformers.modeling import refuse_remote_code
from tfformers.outputs import ModelOutput

PROCESSOR_FILE = "preprocessor_config.json"
# transformers' classes whose preprocessor_config.json these steps reproduce
SUPPORTED_PROCESSORS = ("ViTImageProcessor", "ViTImageProcessorFast", "ViTImageProcessorPil", "ViTFeatureExtractor")
# PIL's resampling filters (the config's `resample`) -> tf.image.resize methods
_RESAMPLE = {0: "nearest", 1: "lanczos3", 2: "bilinear", 3: "bicubic"}
_RESAMPLE_NAMES = {0: "NEAREST", 1: "LANCZOS", 2: "BILINEAR", 3: "BICUBIC", 4: "BOX", 5: "HAMMING"}
_CHANNEL_COUNTS = (1, 3, 4)
IMAGENET_STANDARD = (0.5, 0.5, 0.5)


class BatchFeature(ModelOutput):
    """The processor's output: `pixel_values` [batch, channels, height, width] (`out.pixel_values`)."""

    fields = ("pixel_values",)


# ------------------------------------------------------------------------------------------ settings


def _size(size, default_to_square=True):
    """transformers' size forms -> a dict: an int is a square (or the shortest edge), a dict is kept."""
    if size is None:
        return None
    if isinstance(size, int):
        return {"height": size, "width": size} if default_to_square else {"shortest_edge": size}
    if isinstance(size, (list, tuple)):
        return {"height": int(size[0]), "width": int(size[1])}
    return dict(size)


@dataclass(frozen=True)
class ImageProcessingSettings:
    """What `preprocessor_config.json` asks for, with ViTImageProcessor's defaults."""

    do_resize: bool = True
    size: dict = None
    resample: int = 2
    do_center_crop: bool = False
    crop_size: dict = None
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: tuple = IMAGENET_STANDARD
    image_std: tuple = IMAGENET_STANDARD
    do_convert_rgb: bool = None

    @classmethod
    def from_dict(cls, config, source="the image processor config"):
        names = set(cls.__dataclass_fields__)
        settings = {key: value for key, value in config.items() if key in names}
        settings["size"] = _size(settings.get("size", {"height": 224, "width": 224}))
        settings["crop_size"] = _size(settings.get("crop_size"))
        for key in ("image_mean", "image_std"):
            value = settings.get(key, IMAGENET_STANDARD)
            settings[key] = tuple(value) if isinstance(value, (list, tuple)) else (float(value),)
        settings = cls(**settings)
        settings._check(source)
        return settings

    def _check(self, source):
        if self.do_resize and self.resample not in _RESAMPLE:
            name = _RESAMPLE_NAMES.get(self.resample, self.resample)
            raise ConfigError(
                f"{source} asks for resample={self.resample!r} ({name}); tfformers resizes with "
                f"{sorted(f'{k} ({_RESAMPLE_NAMES[k]})' for k in _RESAMPLE)}. Set another resample in the config."
            )
        if self.do_resize and not ({"height", "width"} <= set(self.size) or "shortest_edge" in self.size):
            raise ConfigError(f"{source} has size={self.size!r}; tfformers takes height and width, or shortest_edge.")
        if self.do_center_crop and not (self.crop_size and {"height", "width"} <= set(self.crop_size)):
            raise ConfigError(
                f"{source} asks for a center crop with crop_size={self.crop_size!r}; give height and width."
            )

    @property
    def output_size(self):
        """(height, width) of every processed image, or None when it follows the input's aspect ratio."""
        if self.do_center_crop:
            return self.crop_size["height"], self.crop_size["width"]
        if not self.do_resize or "height" not in self.size:
            return None
        return self.size["height"], self.size["width"]


# --------------------------------------------------------------------------------------------- TF ops


def _resize_target(settings, height, width):
    """The resized (height, width) for an input of (height, width) (scalars or int32 tensors)."""
    if "height" in settings.size:
        return settings.size["height"], settings.size["width"]
    # shortest_edge: the short side becomes it, the long side keeps the ratio (truncated, as transformers)
    edge = tf.constant(settings.size["shortest_edge"], tf.int32)
    short, long = tf.minimum(height, width), tf.maximum(height, width)
    new_long = tf.cast(tf.cast(edge, tf.float64) * tf.cast(long, tf.float64) / tf.cast(short, tf.float64), tf.int32)
    return tf.where(height <= width, edge, new_long), tf.where(height <= width, new_long, edge)


def _resize(pixels, height, width, method, eight_bit):
    """[batch, h, w, c] float -> [batch, height, width, c]. 8-bit images go as PIL resizes them: the width
    first, then the height, each pass rounded and clipped to 8 bits (which matters for filters with negative
    lobes: bicubic, Lanczos)."""
    antialias = method != "nearest"
    if not eight_bit:
        return tf.image.resize(pixels, tf.stack([height, width]), method=method, antialias=antialias)

    def pass_(pixels, size):
        pixels = tf.image.resize(pixels, tf.stack(size), method=method, antialias=antialias)
        return tf.clip_by_value(tf.floor(pixels + 0.5), 0.0, 255.0)  # PIL rounds halves up

    pixels = pass_(pixels, [tf.shape(pixels)[1], width])
    return pass_(pixels, [height, width])


def _center_crop(images, crop_height, crop_width):
    """The centre crop_height x crop_width of [batch, height, width, channels] (top and left rounded down)."""
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    tf.debugging.assert_greater_equal(
        tf.stack([height, width]), tf.constant([crop_height, crop_width]),
        message=f"an image is smaller than the center crop ({crop_height}x{crop_width})",
    )
    top, left = (height - crop_height) // 2, (width - crop_width) // 2
    return images[:, top : top + crop_height, left : left + crop_width]


def preprocess_images(images, settings):
    """[batch, height, width, channels] images of one size (uint8 or float) -> float32 pixel values
    [batch, channels, out_height, out_width], by `settings` (an ImageProcessingSettings)."""
    images = tf.convert_to_tensor(images)
    eight_bit = images.dtype == tf.uint8
    pixels = tf.cast(images, tf.float32)
    if settings.do_resize:
        height, width = _resize_target(settings, tf.shape(pixels)[1], tf.shape(pixels)[2])
        pixels = _resize(pixels, height, width, _RESAMPLE[settings.resample], eight_bit)
    if settings.do_center_crop:
        pixels = _center_crop(pixels, settings.crop_size["height"], settings.crop_size["width"])
    if settings.do_rescale:
        pixels = pixels * settings.rescale_factor
    if settings.do_normalize:
        channels = pixels.shape[-1]
        if channels is not None and len(settings.image_mean) not in (1, channels):
            raise InputError(
                f"images with {channels} channel(s) cannot be normalized with the config's {len(settings.image_mean)} "
                f"channel means {list(settings.image_mean)}; convert them (e.g. do_convert_rgb=True for grayscale)."
            )
        pixels = (pixels - tf.constant(settings.image_mean)) / tf.constant(settings.image_std)
    return tf.transpose(pixels, [0, 3, 1, 2])


def as_rgb(image):
    """[height, width, channels] -> 3 channels: grayscale repeated, an alpha channel dropped."""
    channels = image.shape[-1]
    if channels == 1:
        return tf.repeat(image, 3, axis=-1)
    return image[..., :3] if channels == 4 else image


def decode_image(data, channels=0):
    """Encoded JPEG, PNG, GIF (first frame) or BMP bytes -> [height, width, channels] uint8."""
    return tf.io.decode_image(data, channels=channels, expand_animations=False)


class ImagePreprocessing(keras.layers.Layer):
    """The processor's steps as a Keras layer: [batch, height, width, channels] images (uint8 or float, one
    size) or a [batch] tf.string tensor of encoded images (any sizes) -> [batch, channels, H, W] float32.
    Encoded images are decoded with `num_channels` channels; they need a fixed output size (a crop, or a
    resize to height x width)."""

    def __init__(self, settings, num_channels=3, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(settings, ImageProcessingSettings):  # from get_config()
            settings = ImageProcessingSettings(**settings)
        self.settings = settings
        self.num_channels = num_channels

    def call(self, images):
        if images.dtype != tf.string:
            return preprocess_images(images, self.settings)
        size = self.settings.output_size
        if size is None:
            raise ConfigError(
                "Encoded images of any size need a fixed output size (a center crop, or a resize to height and "
                f"width); this processor's size is {self.settings.size!r}."
            )
        spec = tf.TensorSpec([self.num_channels, *size], tf.float32)

        def one(data):
            return preprocess_images(decode_image(data, self.num_channels)[None], self.settings)[0]

        return tf.map_fn(one, tf.reshape(images, [-1]), fn_output_signature=spec)

    def get_config(self):
        settings = asdict(self.settings)
        return {**super().get_config(), "settings": settings, "num_channels": self.num_channels}


# ----------------------------------------------------------------------------------- Python inputs


def _channel_layout(shape, where):
    """'first' or 'last' for a 3-D image shape, as transformers infers it (channels first when both fit)."""
    if shape[0] in _CHANNEL_COUNTS:
        return "first"
    if shape[-1] in _CHANNEL_COUNTS:
        return "last"
    raise InputError(
        f"{where} has shape {list(shape)}: neither its first nor its last axis is a channel axis of "
        f"{_CHANNEL_COUNTS} channels. Pass [height, width], [height, width, channels] or [channels, height, width]."
    )


def _undecodable(where, data, error):
    head = bytes(data[:12])
    return InputError(
        f"{where} ({len(data)} bytes starting {head!r}) is not a JPEG, PNG, GIF or BMP image that TensorFlow can "
        f"decode ({error.message if hasattr(error, 'message') else error})."
    )


def _read(image, where):
    """One image as a [height, width, channels] array or eager tensor (uint8 or float)."""
    if isinstance(image, dict) and ("bytes" in image or "path" in image):  # datasets' Image(decode=False)
        image = image.get("bytes") or image["path"]
    if isinstance(image, (str, os.PathLike)):
        with open(image, "rb") as file:
            image = file.read()
    if isinstance(image, (bytes, bytearray)):
        try:
            return decode_image(bytes(image))
        except tf.errors.InvalidArgumentError as error:
            raise _undecodable(where, image, error) from None
    if type(image).__module__.startswith("PIL."):
        image = np.asarray(image.convert("RGB") if image.mode not in ("L", "RGB", "RGBA") else image)
    if not isinstance(image, (np.ndarray, tf.Tensor)):
        raise InputError(
            f"{where} is a {type(image).__name__}; pass PIL images, numpy arrays, TF tensors, encoded image bytes "
            "or file paths (or a list of them)."
        )
    dtype = tf.as_dtype(image.dtype)
    if not (dtype.is_floating or dtype.is_integer):
        raise InputError(f"{where} holds {dtype.name} values; images hold numbers.")
    if image.ndim == 2:
        return image[..., None]
    if image.ndim != 3:
        raise InputError(f"{where} has shape {list(image.shape)}; an image is [height, width(, channels)].")
    if _channel_layout(image.shape, where) == "first":
        return np.moveaxis(image, 0, -1) if isinstance(image, np.ndarray) else tf.transpose(image, [1, 2, 0])
    return image


def _as_list(images):
    """A batch (list, tuple, 4-D array or tensor) or one image -> a list of single images."""
    if isinstance(images, (list, tuple)):
        return list(images)
    if isinstance(images, (np.ndarray, tf.Tensor)) and images.ndim == 4:
        return list(images)
    if isinstance(images, tf.Tensor) and images.dtype == tf.string:
        return [data.numpy() for data in tf.reshape(images, [-1])]
    return [images]


# ------------------------------------------------------------------------------------------- processor


class ViTImageProcessor:
    """transformers' ViTImageProcessor, computed with TF ops. Attributes are the settings
    (`processor.size`, `processor.image_mean`, ...)."""

    model_input_names = ("pixel_values",)

    def __init__(self, **config):
        self.config = {"image_processor_type": type(self).__name__, **config}
        self.settings = ImageProcessingSettings.from_dict(config)

    def __getattr__(self, name):
        settings = self.__dict__.get("settings")
        if settings is not None and name in ImageProcessingSettings.__dataclass_fields__:
            return getattr(settings, name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __call__(self, images, return_tensors=None, **overrides):
        """Pixel values for `images` (see the module docstring for what is accepted): a BatchFeature whose
        `pixel_values` are a numpy array ("np"), a tf.Tensor ("tf"), or a list of arrays (None)."""
        settings = self.settings
        if overrides:
            settings = ImageProcessingSettings.from_dict({**asdict(settings), **overrides})
        images = [self._prepared(_read(image, f"image {i}"), settings) for i, image in enumerate(_as_list(images))]
        if not images:
            raise InputError("no images were given.")
        pixels = self._processed(images, settings)
        if isinstance(pixels, tf.Tensor):  # one batch of equal images: no split and re-stack
            if return_tensors not in ("np", "tf", None):
                raise ValueError(f"return_tensors={return_tensors!r}: use 'np', 'tf' or None.")
            arrays = pixels if return_tensors == "tf" else pixels.numpy()
            return BatchFeature(pixel_values=list(arrays) if return_tensors is None else arrays)
        if return_tensors == "tf":
            return BatchFeature(pixel_values=tf.stack(pixels) if _same_shapes(pixels) else _ragged_error(pixels))
        arrays = [pixel.numpy() for pixel in pixels]
        if return_tensors == "np":
            return BatchFeature(pixel_values=np.stack(arrays) if _same_shapes(arrays) else _ragged_error(arrays))
        if return_tensors is not None:
            raise ValueError(f"return_tensors={return_tensors!r}: use 'np', 'tf' or None.")
        return BatchFeature(pixel_values=arrays)

    preprocess = __call__

    @staticmethod
    def _prepared(image, settings):
        return as_rgb(tf.convert_to_tensor(image)) if settings.do_convert_rgb else image

    @staticmethod
    def _processed(images, settings):
        """Each image's pixel values, processed as one batch per shape and dtype: a list of tensors, or one
        [batch, ...] tensor when all images are alike."""
        groups = {}
        for index, image in enumerate(images):
            groups.setdefault((tuple(image.shape), str(image.dtype)), []).append(index)
        if len(groups) == 1:
            return preprocess_images(_stacked(images), settings)
        pixels = [None] * len(images)
        for indices in groups.values():
            batch = preprocess_images(_stacked([images[i] for i in indices]), settings)
            for i, pixel in zip(indices, tf.unstack(batch)):
                pixels[i] = pixel
        return pixels

    def as_layer(self, num_channels=3, **kwargs):
        """These steps as a Keras layer (`ImagePreprocessing`), to put inside a model."""
        return ImagePreprocessing(self.settings, num_channels=num_channels, **kwargs)

    def transform(self, image_column="image", keep_columns=("label", "labels")):
        """A 🤗 datasets transform (`dataset.with_transform(processor.transform())`): a batch of rows with
        an `Image` column -> `pixel_values` (numpy) plus the label columns, computed when rows are read."""

        def apply(batch):
            if image_column not in batch:
                raise InputError(f"the dataset has no column {image_column!r}; it has {sorted(batch)}.")
            out = {"pixel_values": self(batch[image_column], return_tensors="np")["pixel_values"]}
            out.update({name: batch[name] for name in keep_columns if name in batch})
            return out

        return apply

    def to_dict(self):
        return dict(self.config)

    def save_pretrained(self, save_directory):
        """Writes `preprocessor_config.json` (the settings this processor was made with), atomically as model
        saves are (`fileio.atomic_directory`): a failed save leaves the previous file."""
        with atomic_directory(save_directory, last=(PROCESSOR_FILE,)) as staging:
            with open(os.path.join(staging, PROCESSOR_FILE), "w", encoding="utf-8") as file:
                json.dump(self.to_dict(), file, indent=2, sort_keys=True)
        return [os.path.join(save_directory, PROCESSOR_FILE)]

    def __repr__(self):
        return f"{type(self).__name__}({json.dumps(self.to_dict(), sort_keys=True)})"


def _stacked(images):
    """Equal images (arrays or tensors) -> one [batch, ...] tensor of their dtype (tf.stack of numpy uint8
    arrays would give int32; numpy stacks them in one copy)."""
    if all(isinstance(image, np.ndarray) for image in images):
        return tf.convert_to_tensor(np.stack(images))
    return tf.stack([tf.convert_to_tensor(image) for image in images])


def _same_shapes(arrays):
    return len({tuple(array.shape) for array in arrays}) == 1


def _ragged_error(arrays):
    shapes = sorted({tuple(int(d) for d in array.shape) for array in arrays})
    raise InputError(
        f"the processed images have different shapes {shapes} (the config resizes by shortest_edge without a "
        "crop), so they cannot be stacked; use return_tensors=None for a list, or set a crop_size."
    )


class AutoImageProcessor:
    """Reads `preprocessor_config.json` from a folder or the Hub and returns the matching processor."""

    def __init__(self):
        raise TypeError("AutoImageProcessor is created with from_pretrained().")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *, revision=None, cache_dir=None, token=None,
                        local_files_only=False, subfolder="", trust_remote_code=False, **overrides):
        """The processor for a checkpoint; keyword arguments override its settings (e.g. size=...).
        `trust_remote_code=True` is refused, as for models: only tfformers' own processors are built."""
        refuse_remote_code(trust_remote_code, f"the image processor of {pretrained_model_name_or_path}")
        path = hub.resolve_file(pretrained_model_name_or_path, PROCESSOR_FILE, revision=revision,
                                cache_dir=cache_dir, token=token, local_files_only=local_files_only,
                                subfolder=subfolder)
        try:
            with open(path, encoding="utf-8") as file:
                config = json.load(file)
        except (OSError, ValueError) as error:
            raise ConfigError(f"{path} is not a readable JSON file: {error}") from None
        kind = config.get("image_processor_type") or config.get("feature_extractor_type")
        if kind not in SUPPORTED_PROCESSORS:
            raise ConfigError(
                f"{path} names the processor {kind!r}, which tfformers does not implement; supported: "
                f"{list(SUPPORTED_PROCESSORS)}. Preprocess the images yourself into pixel_values, or write the "
                "config of a supported processor with the same steps."
            )
        config = {key: value for key, value in config.items() if key not in ("image_processor_type",
                                                                            "feature_extractor_type")}
        return ViTImageProcessor(**{**config, **overrides})


class AutoFeatureExtractor(AutoImageProcessor):
    """transformers 4.x's name for image processors (`ViTFeatureExtractor` configs): the same loader."""
