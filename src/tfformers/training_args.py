"""`TFTrainingArguments`: the training options of transformers 4.x's TensorFlow example scripts.

A dataclass that `HfArgumentParser` turns into command-line options (`--per_device_train_batch_size 8`) or
reads from a JSON file, with 4.46's `TFTrainingArguments` properties: `strategy` (a `tf.distribute` strategy),
`n_replicas`, `train_batch_size` (per device x replicas) and `eval_batch_size`.

transformers 5's `TrainingArguments` needs PyTorch and accelerate to be created, so this is not a subclass of
it: it has the fields the ten 4.46 TensorFlow example scripts and `create_optimizer` read, with 4.x's names,
defaults and help, and 4.x's TF-only fields (`tpu_name`, `tpu_zone`, `gcp_project`, `poly_power`, `xla`). The
options of PyTorch's Trainer (DeepSpeed, FSDP, dataloader workers, ...) are not here: a script passing one
fails at parsing with argparse's "unrecognized arguments".
"""

import dataclasses
import json
import logging
import os
import socket
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Optional

__all__ = ["TFTrainingArguments"]

logger = logging.getLogger("tfformers")

_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR,
               "critical": logging.CRITICAL, "passive": -1}
_SECRETS = ("hub_token", "push_to_hub_token")


def _default_logdir():
    """4.x's `runs/<date>_<host>` under the output folder."""
    return os.path.join("runs", datetime.now().strftime("%b%d_%H-%M-%S") + "_" + socket.gethostname())


@dataclass(repr=False)
class TFTrainingArguments:
    framework = "tf"

    output_dir: str = field(
        metadata={"help": "The output directory where the model predictions and checkpoints will be written."}
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Overwrite the content of the output directory."}
    )
    do_train: bool = field(default=False, metadata={"help": "Whether to run training."})
    do_eval: bool = field(default=False, metadata={"help": "Whether to run eval on the dev set."})
    do_predict: bool = field(default=False, metadata={"help": "Whether to run predictions on the test set."})
    eval_strategy: str = field(default="no", metadata={"help": "The evaluation strategy to use."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Batch size per device for training."})
    per_device_eval_batch_size: int = field(default=8, metadata={"help": "Batch size per device for evaluation."})
    per_gpu_train_batch_size: Optional[int] = field(
        default=None, metadata={"help": "Deprecated: use --per_device_train_batch_size."}
    )
    per_gpu_eval_batch_size: Optional[int] = field(
        default=None, metadata={"help": "Deprecated: use --per_device_eval_batch_size."}
    )
    gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "Number of updates steps to accumulate before performing a backward/update pass."}
    )
    learning_rate: float = field(default=5e-5, metadata={"help": "The initial learning rate for Adam."})
    weight_decay: float = field(default=0.0, metadata={"help": "Weight decay for AdamW if we apply some."})
    adam_beta1: float = field(default=0.9, metadata={"help": "Beta1 for Adam optimizer"})
    adam_beta2: float = field(default=0.999, metadata={"help": "Beta2 for Adam optimizer"})
    adam_epsilon: float = field(default=1e-8, metadata={"help": "Epsilon for Adam optimizer."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Max gradient norm."})
    num_train_epochs: float = field(default=3.0, metadata={"help": "Total number of training epochs to perform."})
    max_steps: int = field(
        default=-1,
        metadata={"help": "If > 0: set total number of training steps to perform. Override num_train_epochs."},
    )
    lr_scheduler_type: str = field(default="linear", metadata={"help": "The scheduler type to use."})
    warmup_ratio: float = field(
        default=0.0, metadata={"help": "Linear warmup over warmup_ratio fraction of total steps."}
    )
    warmup_steps: int = field(default=0, metadata={"help": "Linear warmup over warmup_steps."})
    log_level: str = field(
        default="passive",
        metadata={"help": "Logger log level to use on the main node: debug, info, warning, error, critical, passive."},
    )
    log_level_replica: str = field(default="warning", metadata={"help": "Logger log level to use on replicas."})
    logging_dir: Optional[str] = field(default=None, metadata={"help": "Tensorboard log dir."})
    logging_strategy: str = field(default="steps", metadata={"help": "The logging strategy to use."})
    logging_first_step: bool = field(default=False, metadata={"help": "Log the first global_step"})
    logging_steps: float = field(default=500, metadata={"help": "Log every X updates steps."})
    save_strategy: str = field(default="steps", metadata={"help": "The checkpoint save strategy to use."})
    save_steps: float = field(default=500, metadata={"help": "Save checkpoint every X updates steps."})
    save_total_limit: Optional[int] = field(
        default=None, metadata={"help": "If a value is passed, will limit the total amount of checkpoints."}
    )
    use_cpu: bool = field(default=False, metadata={"help": "Whether or not to use cpu."})
    no_cuda: bool = field(default=False, metadata={"help": "Deprecated: use --use_cpu."})
    seed: int = field(default=42, metadata={"help": "Random seed that will be set at the beginning of training."})
    fp16: bool = field(
        default=False,
        metadata={"help": "Whether to use mixed precision (mixed_float16 policy; mixed_bfloat16 on TPU)."},
    )
    local_rank: int = field(default=-1, metadata={"help": "For distributed training: local_rank"})
    tpu_num_cores: Optional[int] = field(default=None, metadata={"help": "TPU: Number of TPU cores."})
    debug: str = field(default="", metadata={"help": "Whether or not to enable debug mode."})
    dataloader_drop_last: bool = field(
        default=False, metadata={"help": "Drop the last incomplete batch if it is not divisible by the batch size."}
    )
    eval_steps: Optional[float] = field(default=None, metadata={"help": "Run an evaluation every X steps."})
    run_name: Optional[str] = field(default=None, metadata={"help": "An optional descriptor for the run."})
    disable_tqdm: Optional[bool] = field(default=None, metadata={"help": "Whether or not to disable the tqdm bars."})
    label_smoothing_factor: float = field(
        default=0.0, metadata={"help": "The label smoothing epsilon to apply (zero means no label smoothing)."}
    )
    report_to: Optional[list[str]] = field(
        default=None, metadata={"help": "The list of integrations to report the results and logs to."}
    )
    resume_from_checkpoint: Optional[str] = field(
        default=None, metadata={"help": "The path to a folder with a valid checkpoint for your model."}
    )
    push_to_hub: bool = field(
        default=False, metadata={"help": "Whether or not to upload the trained model to the model hub after training."}
    )
    hub_model_id: Optional[str] = field(
        default=None, metadata={"help": "The name of the repository to keep in sync with the local `output_dir`."}
    )
    hub_strategy: str = field(default="every_save", metadata={"help": "The hub strategy to use."})
    hub_token: Optional[str] = field(default=None, metadata={"help": "The token to use to push to the Model Hub."})
    hub_private_repo: bool = field(default=False, metadata={"help": "Whether the model repository is private."})
    push_to_hub_model_id: Optional[str] = field(
        default=None, metadata={"help": "Deprecated: use --hub_model_id."}
    )
    push_to_hub_organization: Optional[str] = field(
        default=None, metadata={"help": "Deprecated: use --hub_model_id."}
    )
    push_to_hub_token: Optional[str] = field(default=None, metadata={"help": "Deprecated: use --hub_token."})
    # 4.x's TFTrainingArguments
    tpu_name: Optional[str] = field(default=None, metadata={"help": "Name of TPU"})
    tpu_zone: Optional[str] = field(default=None, metadata={"help": "Zone of TPU"})
    gcp_project: Optional[str] = field(default=None, metadata={"help": "Name of Cloud TPU-enabled project"})
    poly_power: float = field(default=1.0, metadata={"help": "Power for the Polynomial decay LR scheduler."})
    xla: bool = field(default=False, metadata={"help": "Whether to activate the XLA compilation or not"})

    def __post_init__(self):
        if self.output_dir is not None:
            self.output_dir = os.path.expanduser(os.fspath(self.output_dir))
        if self.logging_dir is None and self.output_dir is not None:
            self.logging_dir = os.path.join(self.output_dir, _default_logdir())
        if self.logging_dir is not None:
            self.logging_dir = os.path.expanduser(self.logging_dir)
        if self.run_name is None:
            self.run_name = self.output_dir
        if not 0.0 <= self.warmup_ratio <= 1.0:
            raise ValueError(f"warmup_ratio must lie in range [0,1], got {self.warmup_ratio}.")
        for name in ("log_level", "log_level_replica"):
            if getattr(self, name) not in _LOG_LEVELS:
                raise ValueError(f"{name} must be one of {sorted(_LOG_LEVELS)}, got {getattr(self, name)!r}.")
        if self.no_cuda:
            warnings.warn("`no_cuda` is deprecated; use `use_cpu`.", FutureWarning, stacklevel=2)
            self.use_cpu = True
        if self.push_to_hub_token is not None:
            warnings.warn("`push_to_hub_token` is deprecated; use `hub_token`.", FutureWarning, stacklevel=2)
            self.hub_token = self.push_to_hub_token
        if self.push_to_hub_model_id is not None and self.hub_model_id is None:
            warnings.warn("`push_to_hub_model_id` is deprecated; use `hub_model_id`.", FutureWarning, stacklevel=2)
            owner = f"{self.push_to_hub_organization}/" if self.push_to_hub_organization else ""
            self.hub_model_id = owner + self.push_to_hub_model_id
        if self.disable_tqdm is None:
            self.disable_tqdm = logger.getEffectiveLevel() > logging.WARNING

    # ------------------------------------------------------------------------------------ distribution

    @cached_property
    def _setup_strategy(self):
        """4.x's choice: CPU when `use_cpu`; a TPU when one is named (or `TPU_NAME` is set); one GPU; all GPUs
        mirrored; else the CPU. `fp16` sets the mixed_float16 policy (mixed_bfloat16 on TPU)."""
        import keras
        import tensorflow as tf

        logger.info("TensorFlow: setting up strategy")
        if self.fp16:
            keras.mixed_precision.set_global_policy("mixed_float16")
        if self.use_cpu:
            return tf.distribute.OneDeviceStrategy(device="/cpu:0")
        tpu = self._tpu_resolver()
        if tpu is not None:
            if self.fp16:
                keras.mixed_precision.set_global_policy("mixed_bfloat16")
            tf.config.experimental_connect_to_cluster(tpu)
            tf.tpu.experimental.initialize_tpu_system(tpu)
            return tf.distribute.TPUStrategy(tpu)
        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return tf.distribute.OneDeviceStrategy(device="/cpu:0")
        if len(gpus) == 1:
            return tf.distribute.OneDeviceStrategy(device="/gpu:0")
        # a subset of the GPUs: CUDA_VISIBLE_DEVICES
        return tf.distribute.MirroredStrategy()

    def _tpu_resolver(self):
        """The TPU cluster resolver, when a TPU is named (`tpu_name` or `TPU_NAME`); None otherwise (4.x also
        probed for an unnamed TPU, which on a machine without one may wait on the cloud metadata server)."""
        import tensorflow as tf

        if not (self.tpu_name or os.environ.get("TPU_NAME")):
            return None
        try:
            return tf.distribute.cluster_resolver.TPUClusterResolver(
                self.tpu_name, zone=self.tpu_zone, project=self.gcp_project
            )
        except ValueError as error:
            raise RuntimeError(f"Couldn't connect to TPU {self.tpu_name or os.environ['TPU_NAME']}!") from error

    @property
    def strategy(self):
        """The `tf.distribute.Strategy` to build and train the model under (`with args.strategy.scope():`)."""
        return self._setup_strategy

    @property
    def n_replicas(self):
        return self._setup_strategy.num_replicas_in_sync

    @property
    def n_gpu(self):
        warnings.warn("`n_gpu` is deprecated; use `n_replicas`.", FutureWarning, stacklevel=2)
        return self.n_replicas

    @property
    def train_batch_size(self):
        """The global training batch size: per device x replicas."""
        if self.per_gpu_train_batch_size:
            logger.warning("`--per_gpu_train_batch_size` is deprecated; use `--per_device_train_batch_size`.")
        return (self.per_gpu_train_batch_size or self.per_device_train_batch_size) * self.n_replicas

    @property
    def eval_batch_size(self):
        """The global evaluation batch size: per device x replicas."""
        if self.per_gpu_eval_batch_size:
            logger.warning("`--per_gpu_eval_batch_size` is deprecated; use `--per_device_eval_batch_size`.")
        return (self.per_gpu_eval_batch_size or self.per_device_eval_batch_size) * self.n_replicas

    # -------------------------------------------------------------------------------------- logging

    @property
    def should_log(self):
        """False, as 4.x's TFTrainingArguments: Keras, not a Trainer, logs training."""
        return False

    @property
    def should_save(self):
        return True

    @property
    def process_index(self):
        return 0

    @property
    def world_size(self):
        return 1

    def get_process_log_level(self):
        """4.x's rule: `log_level` on the main process, `log_level_replica` elsewhere; as `should_log` is False
        for TensorFlow, that is `log_level_replica` (WARNING unless set); "passive" keeps tfformers' level."""
        from tfformers.utils import logging as tfformers_logging

        level = _LOG_LEVELS[self.log_level if self.should_log else self.log_level_replica]
        return tfformers_logging.get_verbosity() if level == -1 else level

    def get_warmup_steps(self, num_training_steps):
        """`warmup_steps` if set, else `warmup_ratio` of the training steps, rounded up."""
        import math

        return self.warmup_steps if self.warmup_steps > 0 else math.ceil(num_training_steps * self.warmup_ratio)

    # ------------------------------------------------------------------------------------- printing

    def to_dict(self):
        """The fields as a dict, tokens replaced by `<HUB_TOKEN>`-style placeholders (as 4.x)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        for name in _SECRETS:
            if values.get(name) is not None:
                values[name] = f"<{name.upper()}>"
        return values

    def to_json_string(self):
        return json.dumps(self.to_dict(), indent=2)

    def __repr__(self):
        fields = ",\n".join(f"{name}={value!r}" for name, value in sorted(self.to_dict().items()))
        return f"{type(self).__name__}(\n{fields},\n)"

    __str__ = __repr__

