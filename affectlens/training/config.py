"""The training configuration: typed sections, loadable from YAML (see configs/)."""

from __future__ import annotations

from dataclasses import dataclass, field

from affectlens.data.augment import AugmentConfig


@dataclass
class DataConfig:
    """Which data, which splits, and how images are presented to the model."""

    kind: str = "fer2013"
    path: str = "../shared/data/fer2013"
    train_splits: list[str] = field(default_factory=lambda: ["Training"])
    val_split: str | None = "PublicTest"
    test_split: str | None = "PrivateTest"
    #: when the data has no validation split: fraction held out (stratified; grouped if ids exist)
    val_fraction: float = 0.1
    image_size: int = 48
    channels: int = 1
    normalization: str = "unit"
    #: "hard" class labels, or "soft" label distributions (FER+ votes) as the training target
    label_mode: str = "hard"
    #: cap on samples per split (stratified), for quick runs and tests; 0 = all
    max_per_split: int = 0
    #: cap on training samples only (stratified), for equal-budget studies on full test splits; 0 = all
    max_train_samples: int = 0
    #: extra options passed to the dataset loader (e.g. class_names, fer2013_csv)
    options: dict = field(default_factory=dict)


@dataclass
class ModelConfig:
    name: str = "vgg_fer_small"
    #: weights to start from (a state_dict .pth or .safetensors; e.g. ImageNet or VGGFace)
    pretrained: str | None = None
    #: with pretrained weights: train only the head and the last N layers (None = all)
    trainable_layers: int | None = None
    options: dict = field(default_factory=dict)


@dataclass
class OptimConfig:
    name: str = "sgd_nesterov"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])


@dataclass
class SchedulerConfig:
    name: str = "plateau"
    #: reduce-on-plateau (paper: factor 0.75, patience 5, monitoring validation accuracy)
    factor: float = 0.75
    patience: int = 5
    #: step: multiply the lr by gamma every step_size epochs
    step_size: int = 30
    gamma: float = 0.1
    #: cosine with warm restarts: first period in epochs and its growth factor
    restart_period: int = 10
    restart_mult: int = 1
    min_lr: float = 0.0
    #: one-cycle: peak learning rate (0 = 10x optim.lr) and warm-up fraction
    max_lr: float = 0.0
    pct_start: float = 0.3


@dataclass
class LossConfig:
    #: cross_entropy | focal (down-weights easy examples) | logit_adjusted (adds tau * log(prior) to the
    #: logits during training, Menon et al. 2021, so rare classes need a larger margin)
    name: str = "cross_entropy"
    label_smoothing: float = 0.0
    #: none | inverse | effective | a list of per-class weights
    class_weights: str | list[float] = "none"
    effective_beta: float = 0.999
    #: focal loss exponent: (1 - p_true) ** gamma scales each sample's loss (0 = cross-entropy)
    focal_gamma: float = 2.0
    #: logit adjustment strength (1 = the Bayes-optimal choice for balanced error)
    logit_tau: float = 1.0


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    epochs: int = 30
    batch_size: int = 128
    #: order of training samples: shuffle (each sample once per epoch) | balanced (classes drawn equally often)
    sampler: str = "shuffle"
    seed: int = 0
    #: auto | cpu | cuda | cuda:N | mps
    device: str = "auto"
    #: mixed precision (used on CUDA only)
    amp: bool = True
    #: stop when the selection metric has not improved for this many epochs (0 = never)
    early_stopping: int = 0
    #: metric that picks the best checkpoint: val_accuracy | val_macro_f1 | val_loss
    select_metric: str = "val_accuracy"
    #: also save a resumable checkpoint every N training steps inside an epoch (0 = only per epoch)
    checkpoint_every_steps: int = 200
    num_workers: int = 0
    #: CPU threads for torch (0 = torch's default)
    threads: int = 0
    #: evaluate the test split with ten-crop at the end of the run
    ten_crop: bool = True
    output_dir: str = "runs"
    run_name: str = ""
    #: weights to initialise from (fine-tuning: continue a run's best weights on train+val)
    init_weights: str | None = None
    #: training-data licence note copied into the weights sidecar
    licence_note: str = "Trained on research-use data; for research and non-commercial evaluation."
