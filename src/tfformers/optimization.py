"""transformers 4.x's TensorFlow optimization helpers on Keras 3: `create_optimizer`, `WarmUp`, `AdamWeightDecay`.

`create_optimizer(init_lr, num_train_steps, num_warmup_steps, ...)` returns `(optimizer, lr_schedule)` as
transformers 4.x's `optimization_tf.create_optimizer` did: the learning rate rises linearly (`power` 1) from 0 to
`init_lr` over `num_warmup_steps`, then falls polynomially to `init_lr * min_lr_ratio` at `num_train_steps`;
with `weight_decay_rate > 0` the optimizer is `AdamWeightDecay`, which leaves biases and normalization weights
undecayed, otherwise a plain Keras `Adam`.

`AdamWeightDecay` is Keras 3's `Adam` with decoupled weight decay (each step, before the Adam update,
`w -= lr * weight_decay_rate * w`, as 4.x did and as Keras' own `weight_decay=` does), applied to the variables
chosen by regular expressions searched in each variable's `path` (4.x searched the TF-Keras 2 variable name):
a variable matching `include_in_weight_decay` is decayed, else one matching `exclude_from_weight_decay` is not,
else it is. tfformers' layers carry Keras names (`.../bert_output/layer_normalization_1/gamma`,
`.../dense_3/bias`), so 4.x's default exclusions `"layer_norm"` and `"bias"` still find LayerNorm weights and
biases; `create_optimizer` also excludes `"rms_norm"` (Llama, Mistral and Qwen2's normalization), which 4.x's
list did not catch.
"""

import re

import keras
import tensorflow as tf

__all__ = ["AdamWeightDecay", "DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY", "WarmUp", "create_optimizer"]

# What 4.x's create_optimizer excluded, plus tfformers' RMS norm layers.
DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY = ("LayerNorm", "layer_norm", "bias", "rms_norm")


@keras.saving.register_keras_serializable(package="tfformers")
class WarmUp(keras.optimizers.schedules.LearningRateSchedule):
    """`initial_learning_rate * (step / warmup_steps) ** power` for `step < warmup_steps`, then
    `decay_schedule_fn(step - warmup_steps)`."""

    def __init__(self, initial_learning_rate, decay_schedule_fn, warmup_steps, power=1.0, name=None):
        super().__init__()
        self.initial_learning_rate = initial_learning_rate
        self.warmup_steps = warmup_steps
        self.power = power
        self.decay_schedule_fn = decay_schedule_fn
        self.name = name

    def __call__(self, step):
        with tf.name_scope(self.name or "WarmUp") as name:
            step_float = tf.cast(step, tf.float32)
            warmup_steps_float = tf.cast(self.warmup_steps, tf.float32)
            warmup_percent_done = step_float / warmup_steps_float
            warmup_learning_rate = self.initial_learning_rate * tf.math.pow(warmup_percent_done, self.power)
            return tf.cond(
                step_float < warmup_steps_float,
                lambda: tf.cast(warmup_learning_rate, tf.float32),
                lambda: tf.cast(self.decay_schedule_fn(step - self.warmup_steps), tf.float32),
                name=name,
            )

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_schedule_fn": keras.saving.serialize_keras_object(self.decay_schedule_fn),
            "warmup_steps": self.warmup_steps,
            "power": self.power,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        decay = config["decay_schedule_fn"]
        if isinstance(decay, dict):
            config["decay_schedule_fn"] = keras.saving.deserialize_keras_object(decay)
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfformers")
class AdamWeightDecay(keras.optimizers.Adam):
    """Adam with decoupled weight decay on the variables the regular expressions choose (see the module doc).

    Takes 4.x's arguments (`weight_decay_rate`, `include_in_weight_decay`, `exclude_from_weight_decay`, Adam's
    `beta_1`/`beta_2`/`epsilon`/`amsgrad`, and Keras' `clipnorm`, `global_clipnorm`, ...). Keras' own
    `optimizer.exclude_from_weight_decay(var_list=..., var_names=...)` method keeps working and is applied too.
    """

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        amsgrad=False,
        weight_decay_rate=0.0,
        include_in_weight_decay=None,
        exclude_from_weight_decay=None,
        name="AdamWeightDecay",
        **kwargs,
    ):
        if kwargs.get("weight_decay") is not None:
            raise ValueError("AdamWeightDecay takes weight_decay_rate=, not weight_decay=.")
        kwargs.pop("weight_decay", None)
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=amsgrad,
            weight_decay=weight_decay_rate if weight_decay_rate else None,
            name=name,
            **kwargs,
        )
        self.weight_decay_rate = weight_decay_rate
        self._include_patterns = list(include_in_weight_decay) if include_in_weight_decay else None
        self._exclude_patterns = list(exclude_from_weight_decay) if exclude_from_weight_decay else None
        self._paths = {}

    def build(self, var_list):
        super().build(var_list)
        # the optimizer sees tf.Variables when it decays (and mirrored ones under a strategy): by key to the path
        self._paths = {self._var_key(variable): variable.path for variable in var_list}

    def _variable_path(self, variable):
        path = self._paths.get(self._var_key(variable))
        if path is None:
            path = getattr(variable, "path", None) or variable.name.split(":")[0]
        return path

    def _do_use_weight_decay(self, param_name):
        """4.x's rule: include patterns first, then exclude patterns, else decay."""
        if self.weight_decay_rate == 0:
            return False
        if self._include_patterns:
            for pattern in self._include_patterns:
                if re.search(pattern, param_name) is not None:
                    return True
        if self._exclude_patterns:
            for pattern in self._exclude_patterns:
                if re.search(pattern, param_name) is not None:
                    return False
        return True

    def _use_weight_decay(self, variable):
        return super()._use_weight_decay(variable) and self._do_use_weight_decay(self._variable_path(variable))

    def get_config(self):
        config = super().get_config()
        config.pop("weight_decay", None)
        config.update(
            weight_decay_rate=self.weight_decay_rate,
            include_in_weight_decay=self._include_patterns,
            exclude_from_weight_decay=self._exclude_patterns,
        )
        return config


def create_optimizer(
    init_lr,
    num_train_steps,
    num_warmup_steps,
    min_lr_ratio=0.0,
    adam_beta1=0.9,
    adam_beta2=0.999,
    adam_epsilon=1e-8,
    adam_clipnorm=None,
    adam_global_clipnorm=None,
    weight_decay_rate=0.0,
    power=1.0,
    include_in_weight_decay=None,
):
    """(optimizer, lr_schedule): warm-up then polynomial decay; AdamWeightDecay when `weight_decay_rate > 0`,
    Keras `Adam` otherwise. As transformers 4.x's `create_optimizer`."""
    lr_schedule = keras.optimizers.schedules.PolynomialDecay(
        initial_learning_rate=init_lr,
        decay_steps=num_train_steps - num_warmup_steps,
        end_learning_rate=init_lr * min_lr_ratio,
        power=power,
    )
    if num_warmup_steps:
        lr_schedule = WarmUp(initial_learning_rate=init_lr, decay_schedule_fn=lr_schedule,
                             warmup_steps=num_warmup_steps)
    if weight_decay_rate > 0.0:
        optimizer = AdamWeightDecay(
            learning_rate=lr_schedule,
            weight_decay_rate=weight_decay_rate,
            beta_1=adam_beta1,
            beta_2=adam_beta2,
            epsilon=adam_epsilon,
            clipnorm=adam_clipnorm,
            global_clipnorm=adam_global_clipnorm,
            exclude_from_weight_decay=list(DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY),
            include_in_weight_decay=include_in_weight_decay,
        )
    else:
        optimizer = keras.optimizers.Adam(
            learning_rate=lr_schedule,
            beta_1=adam_beta1,
            beta_2=adam_beta2,
            epsilon=adam_epsilon,
            clipnorm=adam_clipnorm,
            global_clipnorm=adam_global_clipnorm,
        )
    # 4.x returned the schedule so scripts can log or plot it
    return optimizer, lr_schedule
