"""A run's entry points: start, resume and fine-tune, each with the trainer of the configured task.

Why a module of its own: choosing between :class:`~affectlens.training.loop.Trainer` (images,
classification) and :class:`~affectlens.training.sequence_loop.SequenceTrainer` (video windows,
valence/arousal), which builds on it, belongs above both; kept in ``loop.py`` it made the two
modules import each other.
"""

from __future__ import annotations

from pathlib import Path

from affectlens.config_io import load_config
from affectlens.errors import AffectlensError
from affectlens.models.torch_files import check_torch_file
from affectlens.training.config import TrainConfig
from affectlens.training.data_setup import PreparedData
from affectlens.training.loop import CHECKPOINT, Trainer, new_run_dir
from affectlens.training.sequence_loop import SequenceTrainer


def make_trainer(cfg: TrainConfig, run_dir: Path, data: PreparedData | None = None) -> Trainer:
    """The trainer of the configured task: images for classification, video windows for valence/arousal."""
    if cfg.task == "classification":
        return Trainer(cfg, run_dir, data)


    return SequenceTrainer(cfg, run_dir, data)


def train(cfg: TrainConfig) -> dict:
    """Start a new run from a config."""
    run_dir = new_run_dir(cfg)
    return make_trainer(cfg, run_dir).fit()


def resume(run_dir: str | Path, extra_epochs: int | None = None, device: str | None = None) -> dict:
    """Continue a run from its last checkpoint (optionally with a new total number of epochs, or on
    another device: a run started on a GPU may go on on a CPU)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise AffectlensError(f"{run_dir}: not a run folder (no config.yaml)")
    cfg = load_config(TrainConfig, run_dir / "config.yaml")
    if (run_dir / CHECKPOINT).exists():  # an empty or cut-off checkpoint is refused before the data is read
        check_torch_file(run_dir / CHECKPOINT)
    if extra_epochs:
        cfg.epochs = extra_epochs
    if device:
        cfg.device = device
    trainer = make_trainer(cfg, run_dir)
    trainer.load_checkpoint()
    return trainer.fit()


def finetune(run_dir: str | Path, epochs: int = 10, lr: float = 1e-4, run_name: str = "",
             overrides: list[str] | None = None) -> dict:
    """Khaireddin & Chen's last step: continue the best weights on train + validation with cosine
    annealing at a small learning rate; the test split stays untouched."""
    run_dir = Path(run_dir)
    if not (run_dir / "best.safetensors").exists():
        raise AffectlensError(f"{run_dir}: no best.safetensors to fine-tune from")
    cfg = load_config(TrainConfig, run_dir / "config.yaml", overrides)
    cfg = cfg.replace(epochs=epochs, init_weights=str(run_dir / "best.safetensors"),
                      run_name=run_name or f"{run_dir.name}-finetune", output_dir=str(run_dir.parent),
                      select_metric="val_ccc" if cfg.task == "va" else "val_accuracy")
    cfg.optim = cfg.optim.replace(lr=lr)
    cfg.scheduler = cfg.scheduler.replace(name="cosine")
    if cfg.model.pretrained:
        cfg.model = cfg.model.replace(pretrained=None)
    if cfg.data.val_split:
        # the validation split joins the training data; nothing is held out any more
        cfg.data = cfg.data.replace(train_splits=[*cfg.data.train_splits, cfg.data.val_split], val_split=None)
    new_dir = new_run_dir(cfg)
    return make_trainer(cfg, new_dir).fit()
