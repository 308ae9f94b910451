"""The training configuration: typed sections, loadable from YAML (see configs/).

Each section is a pydantic model, so a config is checked in full when it is loaded: unknown keys,
wrong types, out-of-range or non-finite numbers and unknown names are refused with the key path
and the allowed values (:mod:`affectlens.config_io`) before any data is read or any folder made.
The closed sets of names below must match what the builders accept (``training/optim.py``,
``training/schedulers.py``, ``training/losses.py``, ``data/preprocessing.py``); a test checks it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from affectlens.config_io import (
    ConfigModel,
    Count,
    Integer,
    NonNegative,
    Number,
    Positive,
    PositiveInt,
    Probability,
    Text,
    TextList,
    rule_error,
)
from affectlens.data.augment import AugmentConfig
from affectlens.data.limits import MAX_IMAGE_SIZE
from affectlens.errors import AffectlensError

OptimizerName = Literal["sgd", "sgd_nesterov", "asgd", "adam", "adamw", "amsgrad", "adadelta", "adagrad"]
SchedulerName = Literal["plateau", "cosine", "cosine_restarts", "onecycle", "step", "constant"]
LossName = Literal["cross_entropy", "focal", "logit_adjusted"]
NormalizationMode = Literal["unit", "symmetric", "mean", "standardize"]
LabelMode = Literal["hard", "soft"]
SamplerName = Literal["shuffle", "balanced"]
SelectMetric = Literal["val_accuracy", "val_macro_f1", "val_loss", "val_ccc"]
#: classification | va (valence/arousal only) | classification+va (both, one model)
TaskName = Literal["classification", "va", "classification+va"]
ClassWeighting = Literal["none", "inverse", "effective"]
#: a fraction of something that must keep a part: [0, 1)
Fraction = Annotated[Number, Field(ge=0, lt=1)]


class DataConfig(ConfigModel):
    """Which data, which splits, and how images are presented to the model."""

    kind: Text = "fer2013"
    #: the dataset file or folder; no default (a config, --data or --set data.path=... names it)
    path: Text = ""
    train_splits: Annotated[TextList, Field(min_length=1)] = ["Training"]
    val_split: Text | None = "PublicTest"
    test_split: Text | None = "PrivateTest"
    #: when the data has no validation split: fraction held out (stratified; grouped if ids exist)
    val_fraction: Fraction = 0.1
    image_size: Annotated[Integer, Field(ge=1, le=MAX_IMAGE_SIZE)] = 48
    #: 1 = grey, 3 = RGB
    channels: Literal[1, 3] = 1
    normalization: Annotated[NormalizationMode, Field(title="normalisation")] = "unit"
    #: "hard" class labels, or "soft" label distributions (FER+ votes) as the training target
    label_mode: Annotated[LabelMode, Field(title="label mode")] = "hard"
    #: cap on samples per split (stratified), for quick runs and tests; 0 = all
    max_per_split: Count = 0
    #: cap on training samples only (stratified), for equal-budget studies on full test splits; 0 = all
    max_train_samples: Count = 0
    #: extra options passed to the dataset loader (e.g. class_names, fer2013_csv)
    options: dict[str, Any] = {}

    def require_path(self) -> str:
        """``path``, or a one-line error when no dataset was named (checked before a run folder is made)."""
        if not self.path.strip():
            raise AffectlensError("data.path is not set: name the dataset with --data PATH, --set data.path=PATH "
                                  "or data.path in the config")
        return self.path


class ModelConfig(ConfigModel):
    """Which architecture, and which weights it starts from."""

    name: Text = "vgg_fer_small"
    #: weights to start from (a state_dict .pth or .safetensors; e.g. ImageNet or VGGFace)
    pretrained: Text | None = None
    #: with pretrained weights: train only the head and the last N layers (None = all)
    trainable_layers: Count | None = None
    #: extra keyword arguments of the architecture (e.g. dropout, width)
    options: dict[str, Any] = {}


class OptimConfig(ConfigModel):
    """The optimizer (Khaireddin & Chen compare these eight) and its settings."""

    name: Annotated[OptimizerName, Field(title="optimizer")] = "sgd_nesterov"
    #: > 0: at 0 nothing is learnt, and the run would spend its epochs to return its start weights
    lr: Positive = 0.01
    momentum: Probability = 0.9
    weight_decay: NonNegative = 5e-4
    #: Adam-family moment decay rates, each in [0, 1)
    betas: Annotated[list[Fraction], Field(min_length=2, max_length=2)] = [0.9, 0.999]


class SchedulerConfig(ConfigModel):
    """The learning-rate schedule; each name uses only its own settings below."""

    name: Annotated[SchedulerName, Field(title="scheduler")] = "plateau"
    #: reduce-on-plateau (paper: factor 0.75, patience 5, monitoring validation accuracy)
    factor: Annotated[Number, Field(gt=0, lt=1)] = 0.75
    patience: Count = 5
    #: step: multiply the lr by gamma every step_size epochs
    step_size: PositiveInt = 30
    gamma: Annotated[Number, Field(gt=0)] = 0.1
    #: cosine with warm restarts: first period in epochs and its growth factor
    restart_period: PositiveInt = 10
    restart_mult: PositiveInt = 1
    min_lr: NonNegative = 0.0
    #: one-cycle: peak learning rate (0 = 10x optim.lr) and warm-up fraction
    max_lr: NonNegative = 0.0
    pct_start: Probability = 0.3


class LossConfig(ConfigModel):
    """The training loss and its remedies for class imbalance."""

    #: cross_entropy | focal (down-weights easy examples) | logit_adjusted (adds tau * log(prior) to the
    #: logits during training, Menon et al. 2021, so rare classes need a larger margin)
    name: Annotated[LossName, Field(title="loss")] = "cross_entropy"
    label_smoothing: Probability = 0.0
    #: none | inverse | effective | a list of per-class weights
    class_weights: ClassWeighting | list[NonNegative] = "none"
    effective_beta: Fraction = 0.999
    #: focal loss exponent: (1 - p_true) ** gamma scales each sample's loss (0 = cross-entropy)
    focal_gamma: NonNegative = 2.0
    #: logit adjustment strength (1 = the Bayes-optimal choice for balanced error)
    logit_tau: NonNegative = 1.0
    #: valence/arousal tasks: loss = (1 - CCC) + va_mse_weight * MSE, averaged over valence and arousal
    va_mse_weight: NonNegative = 0.0
    #: classification+va: weight of the valence/arousal loss added to the class loss
    va_weight: NonNegative = 1.0


class SequenceConfig(ConfigModel):
    """Windows of video frames for valence/arousal tasks (``data/sequences.py``).

    A batch holds ``per_batch`` windows of ``length`` frames from different videos (``batch_size``
    is not used by these tasks). Per-frame models train on the same windows, flattened.
    """

    length: PositiveInt = 80
    #: frames between window starts (0 = length: windows do not overlap)
    stride: Count = 0
    per_batch: PositiveInt = 4
    #: frames per CNN forward when validating or evaluating whole videos (bounds memory)
    eval_chunk: PositiveInt = 256


class DistillConfig(ConfigModel):
    """Knowledge distillation: a trained teacher (one model or several, averaged) guides the student.

    The loss becomes ``(1 - alpha) * label loss + alpha * T^2 * KL(teacher_T || student_T)``, the
    teacher seeing the same augmented training batch as the student (Training images only).
    """

    #: teacher models: shipped names, run folders or .safetensors files (empty = no distillation)
    teacher: TextList = []
    temperature: Annotated[Number, Field(gt=0, le=100)] = 4.0
    alpha: Probability = 0.5
    #: the teacher also answers for the mirrored batch and averages (flip-invariant targets, twice its cost)
    mirror: bool = False


class AveragingConfig(ConfigModel):
    """Stochastic weight averaging: validate, select and ship the mean of the last epochs' weights.

    From epoch ``start_epoch`` (1-based; 0 = off) the weights at the end of every epoch join a
    running mean whose BatchNorm statistics are recomputed on the training images; validation,
    ``best`` and ``last`` then use the averaged network. ``lr`` (0 = keep the scheduler) holds the
    learning rate constant over the averaged epochs, as SWA does.
    """

    start_epoch: Count = 0
    lr: NonNegative = 0.0


class TrainConfig(ConfigModel):
    """One training run: the sections above plus the loop's own settings."""

    data: DataConfig = Field(default_factory=DataConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    swa: AveragingConfig = Field(default_factory=AveragingConfig)
    #: classification | va (valence/arousal from video windows) | classification+va (both)
    task: Annotated[TaskName, Field(title="task")] = "classification"
    sequence: SequenceConfig = Field(default_factory=SequenceConfig)
    epochs: PositiveInt = 30
    #: the global batch: samples per optimizer step over all processes (under torchrun each process
    #: takes batch_size / processes of it, so the same config trains alike on 1 or N processes)
    batch_size: PositiveInt = 128
    #: order of training samples: shuffle (each sample once per epoch) | balanced (classes drawn equally often)
    sampler: Annotated[SamplerName, Field(title="sampler")] = "shuffle"
    #: random seed of Python, NumPy and torch (torch takes at most 2**64 - 1)
    seed: Annotated[Integer, Field(ge=0, le=2**64 - 1)] = 0
    #: auto | cpu | cuda | cuda:N | mps
    device: Text = "auto"
    #: mixed precision (used on CUDA only)
    amp: bool = True
    #: stop when the selection metric has not improved for this many epochs (0 = never)
    early_stopping: Count = 0
    #: metric that picks the best checkpoint: val_accuracy | val_macro_f1 | val_loss | val_ccc (mean valence/arousal
    #: CCC; valence/arousal tasks without classes must use val_ccc or val_loss)
    select_metric: Annotated[SelectMetric, Field(title="selection metric")] = "val_accuracy"
    #: also save a resumable checkpoint every N training steps inside an epoch (0 = only per epoch)
    checkpoint_every_steps: Count = 200
    num_workers: Count = 0
    #: with several CUDA processes: BatchNorm statistics over the global batch (SyncBatchNorm)
    #: instead of each process's share; GPUs only
    sync_batchnorm: bool = False
    #: CPU threads for torch (0 = torch's default)
    threads: Count = 0
    #: evaluate the test split with ten-crop at the end of the run
    ten_crop: bool = True
    output_dir: Text = "runs"
    run_name: Text = ""
    #: weights to initialise from (fine-tuning: continue a run's best weights on train+val)
    init_weights: Text | None = None
    #: training-data licence note copied into the weights sidecar
    licence_note: Text = "Trained on research-use data; for research and non-commercial evaluation."

    @model_validator(mode="after")
    def _options_fit_together(self) -> Self:
        """Options that are each valid but mean nothing together would otherwise be ignored mid-run."""
        if self.select_metric == "val_ccc" and self.task == "classification":
            # a classification run never computes val_ccc: every epoch would count as the best
            raise rule_error("select_metric", "val_ccc (valence/arousal CCC) needs a valence/arousal task; a "
                             "classification run selects by val_accuracy, val_macro_f1 or val_loss (or set "
                             "task=classification+va)")
        if self.model.trainable_layers is not None and not self.model.pretrained and not self.init_weights:
            raise rule_error("model.trainable_layers", "freezes all but the last layers of weights to start from, "
                             "and none are given: add model.pretrained (--pretrained FILE) or init_weights "
                             "(--model WEIGHTS), or leave model.trainable_layers (--trainable-layers) out")
        return self
