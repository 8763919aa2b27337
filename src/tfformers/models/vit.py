"""ViT (Dosovitskiy et al., 2020): an image cut into patches, each patch a token, a [CLS] token in front,
learned position embeddings, a stack of pre-norm Transformer encoder blocks, a classifier on [CLS].

Attribute names are the checkpoint's (`vit.encoder.layer.0.attention.attention.query`, the names PyTorch
transformers writes), so the one key rule maps every tensor; the patch projection is a Keras `Conv2D`,
whose kernel the rule permutes into PyTorch's [out, in, kh, kw].

`pixel_values` come as PyTorch and transformers 4.x TF take them, channels first [batch, channels, height,
width], or channels last [batch, height, width, channels] (recognised by where `num_channels` sits).
"""

import keras
import tensorflow as tf
from transformers import ViTConfig

from tfformers import inputs as model_inputs
from tfformers.layers import dense, get_activation, layer_norm
from tfformers.layers.bicubic import bicubic_resize
from tfformers.layers.core import TruncatedNormal
from tfformers.modeling import TFPreTrainedModel
from tfformers.models.bert import BertEncoder, BertIntermediate, BertSelfAttention
from tfformers.outputs import BaseModelOutputWithPooling, SequenceClassifierOutput

# ------------------------------------------------------------------------------------------ embeddings


def _pair(size):
    return tuple(size) if isinstance(size, (list, tuple)) else (size, size)


def channels_last(pixel_values, num_channels):
    """[batch, channels, height, width] or [batch, height, width, channels] -> channels last; the
    layout is read from where `num_channels` sits (channels first when both fit, as transformers 4.x TF)."""
    shape = pixel_values.shape
    if shape[1] == num_channels:
        pixel_values = tf.transpose(pixel_values, [0, 2, 3, 1])
    return pixel_values


class ViTPatchEmbeddings(keras.layers.Layer):
    """Non-overlapping patch_size x patch_size patches, each projected to hidden_size:
    [batch, height, width, channels] -> [batch, patches, hidden]."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = _pair(config.patch_size)
        self.projection = keras.layers.Conv2D(
            config.hidden_size,
            kernel_size=self.patch_size,
            strides=self.patch_size,
            kernel_initializer=TruncatedNormal(stddev=config.initializer_range),
        )

    def call(self, pixel_values):
        patches = self.projection(pixel_values)  # [batch, height / p, width / p, hidden]
        shape = tf.shape(patches)
        return tf.reshape(patches, [shape[0], shape[1] * shape[2], patches.shape[-1]])


class ViTEmbeddings(keras.layers.Layer):
    """[CLS] + patch embeddings, plus position embeddings (bicubically resized to other image sizes when
    asked), then dropout."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.image_size = _pair(config.image_size)
        self.patch_size = _pair(config.patch_size)
        grid = [size // patch for size, patch in zip(self.image_size, self.patch_size)]
        initializer = TruncatedNormal(stddev=config.initializer_range)
        self.cls_token = self.add_weight(shape=(1, 1, config.hidden_size), initializer=initializer, name="cls_token")
        self.position_embeddings = self.add_weight(
            shape=(1, grid[0] * grid[1] + 1, config.hidden_size), initializer=initializer, name="position_embeddings"
        )
        self.patch_embeddings = ViTPatchEmbeddings(config)
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)

    def interpolate_pos_encoding(self, height, width):
        """The position table for a height x width image: the patch rows, laid out on their square grid,
        resized bicubically (PyTorch's `interpolate(mode="bicubic", align_corners=False)`) to the image's
        grid; the [CLS] row unchanged. [1, 1 + patches, hidden]."""
        table = tf.cast(self.position_embeddings, self.compute_dtype)
        num_positions = table.shape[1] - 1
        side = int(num_positions**0.5)
        patch_rows = tf.reshape(table[0, 1:], [side, side, table.shape[-1]])
        resized = bicubic_resize(patch_rows, height // self.patch_size[0], width // self.patch_size[1])
        return tf.concat([table[:, :1], tf.reshape(resized, [1, -1, table.shape[-1]])], axis=1)

    def call(self, pixel_values, interpolate_pos_encoding=False, training=False):
        height, width = pixel_values.shape[1], pixel_values.shape[2]
        patches = self.patch_embeddings(pixel_values)
        cls_tokens = tf.tile(tf.cast(self.cls_token, patches.dtype), [tf.shape(patches)[0], 1, 1])
        embeddings = tf.concat([cls_tokens, patches], axis=1)
        # as transformers: the table is used as it is when the patch count and a square image allow it
        table_fits = patches.shape[1] == self.position_embeddings.shape[1] - 1 and height == width
        if interpolate_pos_encoding and not table_fits:
            if height is None or width is None:
                height, width = tf.shape(pixel_values)[1], tf.shape(pixel_values)[2]
            positions = self.interpolate_pos_encoding(height, width)
        else:
            positions = tf.cast(self.position_embeddings, embeddings.dtype)
        return self.dropout(embeddings + positions, training=training)


# ------------------------------------------------------------------------------------------- attention


class ViTSelfOutput(keras.layers.Layer):
    """The attention's output projection and dropout (the residual is added by the block: pre-norm)."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.dense = dense(config.hidden_size, config)
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)

    def call(self, hidden_states, training=False):
        return self.dropout(self.dense(hidden_states), training=training)


class ViTAttention(keras.layers.Layer):
    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.attention = BertSelfAttention(config)  # the same projections and heads
        self.output_ = ViTSelfOutput(config)

    def call(self, hidden_states, bias=None, training=False):
        context, probs = self.attention(hidden_states, bias, training=training)
        return self.output_(context, training=training), probs


# ----------------------------------------------------------------------------------------------- block


class ViTOutput(keras.layers.Layer):
    """The MLP's second projection, dropout, plus the residual."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.dense = dense(config.hidden_size, config)
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)

    def call(self, hidden_states, residual, training=False):
        return self.dropout(self.dense(hidden_states), training=training) + residual


class ViTLayer(keras.layers.Layer):
    """Pre-norm block: x + attention(LayerNorm(x)), then x + MLP(LayerNorm(x)). `bias`: an additive
    attention bias, None for images (every patch attends to every patch)."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.attention = ViTAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output_ = ViTOutput(config)
        self.layernorm_before = layer_norm(config.layer_norm_eps)
        self.layernorm_after = layer_norm(config.layer_norm_eps)

    def call(self, hidden_states, bias=None, training=False):
        attention_output, probs = self.attention(self.layernorm_before(hidden_states), bias, training=training)
        hidden_states = attention_output + hidden_states
        mlp_hidden = self.intermediate(self.layernorm_after(hidden_states))
        return self.output_(mlp_hidden, hidden_states, training=training), probs


# ----------------------------------------------------------------------------------------------- stack


class ViTEncoder(BertEncoder):
    """BERT's loop over the blocks, with ViT's blocks (no attention mask: every patch sees every patch)."""

    layer_class = ViTLayer


class ViTPooler(keras.layers.Layer):
    """activation(dense([CLS])), with the config's pooler_output_size and pooler_act."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        size = getattr(config, "pooler_output_size", None) or config.hidden_size
        self.dense = dense(size, config, activation=get_activation(getattr(config, "pooler_act", "tanh")))

    def call(self, hidden_states):
        return self.dense(hidden_states[:, 0])


class ViTMainLayer(keras.layers.Layer):
    """The backbone (PyTorch's ViTModel): embeddings, encoder, final LayerNorm and the optional pooler.
    The hidden states returned are the embeddings and each block's output, before the final LayerNorm."""

    def __init__(self, config, add_pooling_layer=True, **kwargs):
        super().__init__(**kwargs)
        self.num_channels = config.num_channels
        self.embeddings = ViTEmbeddings(config)
        self.encoder = ViTEncoder(config)
        self.layernorm = layer_norm(config.layer_norm_eps)
        self.pooler = ViTPooler(config) if add_pooling_layer else None

    def call(
        self,
        pixel_values,
        interpolate_pos_encoding=False,
        training=False,
        output_attentions=False,
        output_hidden_states=False,
    ):
        pixel_values = tf.cast(channels_last(pixel_values, self.num_channels), self.compute_dtype)
        embeddings = self.embeddings(
            pixel_values, interpolate_pos_encoding=interpolate_pos_encoding, training=training
        )
        hidden_states, hidden, attentions = self.encoder(
            embeddings,
            bias=None,
            training=training,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        sequence_output = self.layernorm(hidden_states)
        return BaseModelOutputWithPooling(
            last_hidden_state=sequence_output,
            pooler_output=self.pooler(sequence_output) if self.pooler is not None else None,
            hidden_states=hidden,
            attentions=attentions,
        )


# ----------------------------------------------------------------------------------------------- models


class TFViTPreTrainedModel(TFPreTrainedModel):
    config_class = ViTConfig
    base_model_prefix = "vit"
    main_input_name = "pixel_values"
    input_names = ("pixel_values",)
    call_options = ("interpolate_pos_encoding",)

    def input_limits(self):
        config = self.config
        return model_inputs.Limits(
            model=type(self).__name__,
            input_names=self.input_names,
            label_names=self.label_names,
            main_input_name=self.main_input_name,
            ranges=model_inputs.label_ranges(self.task, config),
            image=model_inputs.ImageLimits(
                num_channels=config.num_channels,
                image_size=_pair(config.image_size),
                patch_size=_pair(config.patch_size),
            ),
        )

    @property
    def dummy_inputs(self):
        """Two random images in the config's size, channels first."""
        height, width = _pair(self.config.image_size)
        shape = [2, self.config.num_channels, height, width]
        return {"pixel_values": tf.random.stateless_uniform(shape, seed=[0, 0], minval=-1.0, maxval=1.0)}

    @property
    def input_signature(self):
        """Channels-first float32 images of the config's size (transformers 4.x's serving signature)."""
        height, width = _pair(self.config.image_size)
        shape = [None, self.config.num_channels, height, width]
        return {"pixel_values": tf.TensorSpec(shape, tf.float32, name="pixel_values")}

    def get_input_embeddings(self):
        return getattr(self, self.base_model_prefix).embeddings.patch_embeddings


class TFViTModel(TFViTPreTrainedModel):
    is_base_model = True

    def __init__(self, config, add_pooling_layer=True, **kwargs):
        super().__init__(config, **kwargs)
        self.vit = ViTMainLayer(config, add_pooling_layer=add_pooling_layer)

    def get_config(self):
        return {**super().get_config(), "add_pooling_layer": self.vit.pooler is not None}


class TFViTForImageClassification(TFViTPreTrainedModel):
    """A linear classifier on the final [CLS] hidden state (no pooler)."""

    task = "image-classification"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.vit = ViTMainLayer(config, add_pooling_layer=False)
        self.classifier = dense(config.num_labels, config) if config.num_labels > 0 else None

    def forward(self, inputs, training, output_attentions, output_hidden_states, interpolate_pos_encoding=False):
        out = self.backbone(
            inputs, training, output_attentions, output_hidden_states, interpolate_pos_encoding=interpolate_pos_encoding
        )
        cls_state = out.last_hidden_state[:, 0]
        return SequenceClassifierOutput(
            logits=self.classifier(cls_state) if self.classifier is not None else cls_state,
            hidden_states=out.hidden_states,
            attentions=out.attentions,
        )
