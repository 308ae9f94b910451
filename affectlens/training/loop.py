"""The training loop: one run = one folder with its config, metrics, plots, checkpoints and weights.

Resumability is the design constraint: a checkpoint (model, optimizer, scheduler, scaler, RNG
state, position inside the epoch, metric history) is written every epoch and every
``checkpoint_every_steps`` steps, and the epoch's sample order is a pure function of
(seed, epoch), so ``--resume RUN_DIR`` continues a killed run from the step it last saved.

The same loop runs in one process or, under ``torchrun``, in several
(:mod:`affectlens.training.distributed`): ``batch_size`` is the global batch, each process trains
on its share of every global batch, and only rank 0 writes the run folder.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from affectlens.config_io import save_config
from affectlens.data.augment import build_train_augmentation
from affectlens.data.batches import BatchDataset, keep_batch, to_float
from affectlens.data.preprocessing import Normalization
from affectlens.data.resolve import refuse_output_in_dataset
from affectlens.data.sampling import ClassBalancedSampler, ShardedBatches, batch_share
from affectlens.errors import AffectlensError, unknown_name_error
from affectlens.evaluation import plot_training_curves, quick_metrics
from affectlens.models import create_model
from affectlens.models.freezing import apply_frozen_bn_eval
from affectlens.models.prediction.head import predict_probabilities
from affectlens.models.torch_files import load_torch_file
from affectlens.models.weights import ModelCard, read_card, save_weights
from affectlens.training.averaging import WeightAverage
from affectlens.training.config import TrainConfig
from affectlens.training.data_setup import PreparedData, prepare_data
from affectlens.training.distributed import (
    launch_environment,
    start_process_group,
    stop_process_group,
    wrap_model,
)
from affectlens.training.losses import ClassificationLoss, learned_prior
from affectlens.training.optim import build_optimizer
from affectlens.training.schedulers import LRSchedule

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
#: what :meth:`Trainer.load_checkpoint` needs of a checkpoint
CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "scaler", "epoch", "step_in_epoch", "running", "history",
                   "best_value", "best_epoch", "stale_epochs", "torch_rng", "normalization")
SELECT_METRICS = ("val_accuracy", "val_macro_f1", "val_loss", "val_ccc")


def choose_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise AffectlensError(f"unknown device '{name}'; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AffectlensError("device 'cuda' requested but no CUDA GPU is available")
    return device


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class EpochOrder(Sampler[int]):
    """The epoch's shuffled order, a function of (seed, epoch), starting at ``start``."""

    def __init__(self, n: int, seed: int, epoch: int, start: int = 0) -> None:
        self.order = np.random.default_rng([seed, epoch]).permutation(n)[start:]

    def __iter__(self):
        return iter(self.order.tolist())

    def __len__(self) -> int:
        return len(self.order)


def new_run_dir(cfg: TrainConfig) -> Path:
    """The folder a new run will write to; refuses to overwrite an existing run."""
    name = cfg.run_name or f"{datetime.now():%Y%m%d-%H%M%S}-{cfg.model.name}-{cfg.data.kind}"
    base = Path(cfg.output_dir).expanduser()
    # checked now, not when the first epoch is saved: after the data is read, or hours later
    file = next((folder for folder in (base, *base.parents) if folder.exists() and not folder.is_dir()), None)
    if file is not None:
        where = "is an existing file" if file == base else f"lies under {file}, an existing file"
        raise AffectlensError(f"--out (output_dir) {base}: {where}, not a folder; choose a folder for the runs")
    refuse_output_in_dataset(base, cfg.data.require_path(), "--out (output_dir)")
    run_dir = base / name
    if (run_dir / CHECKPOINT).exists():
        raise AffectlensError(f"{run_dir}: a run already exists there; use --resume {run_dir} or another name")
    return run_dir  # created by Trainer.fit, so a config error leaves no empty run folder behind


class Trainer:
    """Trains one model as configured; ``fit()`` returns the final metrics dict."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, data: PreparedData | None = None) -> None:
        if cfg.select_metric not in SELECT_METRICS:
            raise AffectlensError(f"unknown select_metric '{cfg.select_metric}'; valid: {', '.join(SELECT_METRICS)}")
        self.cfg = cfg
        self.run_dir = run_dir
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        seed_everything(cfg.seed)
        batch_share(cfg.batch_size, launch_environment().world_size)  # refused before any process waits for another
        self.dist, self.device = start_process_group(choose_device(cfg.device))
        self.run_dir = Path(self.dist.broadcast(str(run_dir)))  # one folder, named by rank 0
        init_card = read_card(cfg.init_weights) if cfg.init_weights else None
        normalization = Normalization.from_dict(init_card.normalization) if init_card else None
        self.data = data or prepare_data(cfg.data, cfg.seed, normalization, task=cfg.task)
        self.class_names = self.data.class_names
        self.model = create_model(cfg.model.name, num_classes=self.num_outputs(), in_channels=cfg.data.channels,
                                  pretrained=cfg.model.pretrained, trainable_layers=cfg.model.trainable_layers,
                                  **cfg.model.options)
        if init_card is not None:
            self._load_init_weights(Path(cfg.init_weights))  # type: ignore[arg-type]
        # the network sees what training feeds it: the crop when cropping, else the whole image
        crop = cfg.augment.crop_size
        self.input_size = crop if 0 < crop < cfg.data.image_size else cfg.data.image_size
        self.model.to(self.device)
        if self.device.type == "cpu":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model, self.train_model = wrap_model(self.model, self.dist, self.device, cfg.sync_batchnorm)
        if self.dist.active:  # the same start weights everywhere (DDP), but each process its own augmentation draws
            seed_everything(int(np.random.SeedSequence([cfg.seed, self.dist.rank]).generate_state(1)[0]))
        self.augment = build_train_augmentation(cfg.augment, cfg.data.image_size).to(self.device)
        self.loss_fn = self.build_loss().to(self.device)
        self.teacher = None
        if cfg.distill.teacher:
            from affectlens.training.distillation import Teacher, check_teacher_classes

            self.teacher = Teacher.from_specs(list(cfg.distill.teacher), device=self.device,
                                              mirror=cfg.distill.mirror)
            check_teacher_classes(self.teacher, list(self.class_names))
        self.optimizer = build_optimizer(self.model.parameters(), cfg.optim)
        self.averaging = WeightAverage(self.model, cfg.swa.start_epoch) if cfg.swa.start_epoch else None
        self.loader_len = self.steps_per_epoch()
        monitor_mode = "min" if cfg.select_metric == "val_loss" else "max"
        self.schedule = LRSchedule(self.optimizer, cfg.scheduler, cfg.epochs, self.loader_len, cfg.optim.lr,
                                   monitor_mode)
        self.use_amp = cfg.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.epoch = 0
        self.step_in_epoch = 0
        self.running = {"loss": 0.0, "correct": 0.0, "seen": 0.0}
        self.history: list[dict] = []
        self.best_value: float | None = None
        self.best_epoch = -1
        self.stale_epochs = 0

    # ------------------------------------------------------------------ setup helpers
    def num_outputs(self) -> int:
        """Outputs of the model's last layer: one logit per class."""
        return len(self.class_names)

    def build_loss(self) -> torch.nn.Module:
        return ClassificationLoss(self.cfg.loss, self.data.train.class_counts(),
                                  use_soft=self.cfg.data.label_mode == "soft")

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.data.train) / self.cfg.batch_size)

    def _load_init_weights(self, path: Path) -> None:
        from safetensors.torch import load_file

        state = load_file(str(path.with_suffix(".safetensors")))
        try:
            self.model.load_state_dict(state)
        except RuntimeError as exc:
            raise AffectlensError(f"{path}: weights do not fit {self.cfg.model.name} ({str(exc).splitlines()[0]})") \
                from None

    # ------------------------------------------------------------------ checkpointing
    def save_checkpoint(self) -> None:
        """Rank 0 writes the checkpoint (every process's RNG state in it); the others wait until it is on disk."""
        rng = self.dist.gather(self._rng_state())
        if not self.dist.is_main:
            self.dist.barrier()
            return
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "running": dict(self.running),
            "history": self.history,
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "stale_epochs": self.stale_epochs,
            "torch_rng": torch.get_rng_state(),
            "normalization": self.data.normalization.to_dict(),
        }
        if self.averaging is not None:
            state["swa"] = self.averaging.state_dict()
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        if self.dist.active:
            state["process_rng"] = rng
        tmp = self.run_dir / (CHECKPOINT + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.run_dir / CHECKPOINT)
        self.dist.barrier()

    def _rng_state(self) -> dict[str, torch.Tensor]:
        """This process's random state (augmentation, dropout): one per process in a distributed checkpoint."""
        state = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_checkpoint(self) -> None:
        path = self.run_dir / CHECKPOINT
        if not path.exists():
            raise AffectlensError(f"{self.run_dir}: no {CHECKPOINT} to resume from")
        state = load_torch_file(path, "checkpoint", map_location=self.device)
        missing = [key for key in CHECKPOINT_KEYS if not isinstance(state, dict) or key not in state]
        if missing:
            raise AffectlensError(f"{path}: not a checkpoint of an affectlens run (no {', '.join(missing)})")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch = state["epoch"]
        self.step_in_epoch = state["step_in_epoch"]
        self.running = state["running"]
        self.history = state["history"]
        self.best_value = state["best_value"]
        self.best_epoch = state["best_epoch"]
        self.stale_epochs = state["stale_epochs"]
        self.data.normalization = Normalization.from_dict(state["normalization"])
        if self.averaging is not None and "swa" in state:
            self.averaging.load_state_dict(state["swa"])
        processes = state.get("process_rng", [])
        if self.dist.active and len(processes) == self.dist.world_size:
            mine = processes[self.dist.rank]
            torch.set_rng_state(mine["torch"].cpu())
            if "cuda" in mine and self.device.type == "cuda":
                torch.cuda.set_rng_state(mine["cuda"].cpu(), self.device)
        elif self.dist.active or processes:
            # another number of processes: the global sample stream continues exactly (it depends on
            # (seed, epoch) and the global batch only); the augmentation draws start afresh per process
            log.warning("%s: resumed on %d process(es) a run checkpointed on %d: the sample order continues "
                        "exactly, the augmentation draws do not", self.run_dir, self.dist.world_size,
                        max(len(processes), 1))
        else:
            torch.set_rng_state(state["torch_rng"].cpu())
            if "cuda_rng" in state and torch.cuda.is_available():
                torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
        log.info("resumed %s at epoch %d step %d", self.run_dir, self.epoch + 1, self.step_in_epoch)

    # ------------------------------------------------------------------ training
    def _loader(self) -> DataLoader:
        """The epoch's batches from where the run stands; the order depends on (seed, epoch) only.

        The global batches are the same for 1 or N processes; this process takes its share of each.
        """
        sampler: Sampler[int]
        if self.cfg.sampler == "shuffle":
            sampler = EpochOrder(len(self.data.train), self.cfg.seed, self.epoch)
        elif self.cfg.sampler == "balanced":
            sampler = ClassBalancedSampler(self.data.train.labels, self.cfg.seed, self.epoch)
        else:
            raise unknown_name_error("sampler", self.cfg.sampler, ("shuffle", "balanced"))
        batches = ShardedBatches(sampler, self.cfg.batch_size, self.dist.rank, self.dist.world_size,
                                 start_batch=self.step_in_epoch)
        # a private generator: creating the loader must not draw from the global RNG, whose state the
        # checkpoint restores, or a resumed run would augment differently from an uninterrupted one
        generator = torch.Generator().manual_seed(self.cfg.seed + self.epoch)
        return DataLoader(BatchDataset(self.data.train), batch_sampler=batches, collate_fn=keep_batch,
                          num_workers=self.cfg.num_workers, generator=generator)

    def train_one_epoch(self) -> dict:
        self.train_model.train()  # DDP passes it on to the model
        apply_frozen_bn_eval(self.model)
        norm = self.data.normalization
        self._hold_averaging_lr()
        bar = tqdm(self._loader(), total=self.loader_len, initial=self.step_in_epoch,
                   desc=f"epoch {self.epoch + 1}/{self.cfg.epochs}", unit="batch", leave=False, dynamic_ncols=True,
                   disable=not self.dist.is_main)
        for batch in bar:
            images = to_float(batch["image"].to(self.device, non_blocking=True))
            augmented = self.augment(images)
            teacher_probs = None
            if self.teacher is not None:  # the teacher sees the very view the student sees
                teacher_probs = self.teacher(augmented, self.cfg.distill.temperature)
            images = norm(augmented)
            if self.device.type == "cpu":
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.use_amp):
                logits = self.train_model(images)
                loss = self.loss_fn(logits, batch)
                if teacher_probs is not None:
                    from affectlens.training.distillation import distillation_loss

                    alpha = self.cfg.distill.alpha
                    loss = (1 - alpha) * loss + alpha * distillation_loss(logits, teacher_probs,
                                                                          self.cfg.distill.temperature)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.schedule.after_batch()
            self._hold_averaging_lr()
            labels = batch["label"].to(self.device)
            valid = labels >= 0
            n = int(valid.sum())
            step = [float(loss.detach()) * max(n, 1), float((logits.argmax(1)[valid] == labels[valid]).sum()), n]
            for key, value in zip(("loss", "correct", "seen"), self.dist.all_sum(step, self.device), strict=True):
                self.running[key] += value  # sums over every process: the checkpoint holds the whole batch's
            self.step_in_epoch += 1
            seen = max(self.running["seen"], 1)
            bar.set_postfix(loss=f"{self.running['loss'] / seen:.3f}", acc=f"{self.running['correct'] / seen:.3f}")
            if self.cfg.checkpoint_every_steps and self.step_in_epoch % self.cfg.checkpoint_every_steps == 0 \
                    and self.step_in_epoch < self.loader_len:
                self.save_checkpoint()
        bar.close()
        seen = max(self.running["seen"], 1)
        return {"train_loss": self.running["loss"] / seen, "train_accuracy": self.running["correct"] / seen}

    def _hold_averaging_lr(self) -> None:
        """During the averaged epochs, ``swa.lr`` (when set) replaces whatever the scheduler set."""
        swa = self.cfg.swa
        if self.averaging is not None and swa.lr > 0 and self.averaging.applies_to(self.epoch + 1):
            for group in self.optimizer.param_groups:
                group["lr"] = swa.lr

    def _average_weights(self) -> torch.nn.Module:
        """The network this epoch is judged and saved by: the running average once averaging has begun."""
        if self.averaging is None or not self.averaging.applies_to(self.epoch + 1):
            return self.model
        self.averaging.update(self.model, self.data.train, self.data.normalization, self.input_size, self.device)
        return self.averaging.model

    def validate(self, model: torch.nn.Module | None = None) -> dict:
        """Metrics of ``model`` (the trained one by default) on the validation split.

        With several processes each predicts a share and all compute the metrics from the gathered
        predictions (the same numbers as one process, on every process, so the scheduler and early
        stopping decide alike everywhere)."""
        if self.data.val is None or len(self.data.val) == 0:
            return {}
        share = self.data.val.subset(np.asarray(self.dist.shard(len(self.data.val)))) if self.dist.active \
            else self.data.val
        judged = self.model if model is None else model
        probs = predict_probabilities(judged, share, self.data.normalization, self.input_size, batch_size=512,
                                      device=self.device)
        if self.dist.active:  # in rank order = validation order; a share may be empty with tiny splits
            probs = np.concatenate([part for part in self.dist.gather(probs) if len(part)])
        labels = self.data.val.labels
        valid = labels >= 0
        eps = 1e-7
        loss = float(-np.log(probs[valid, labels[valid]] + eps).mean())
        quick = quick_metrics(labels[valid], probs[valid].argmax(1), len(self.class_names))
        result = {"val_loss": loss, "val_accuracy": quick["accuracy"], "val_macro_f1": quick["macro_f1"]}
        for name, recall in zip(self.class_names, quick["per_class_recall"], strict=False):
            result[f"val_recall_{name}"] = recall
        return result

    def _improved(self, value: float) -> bool:
        if self.best_value is None:
            return True
        return value < self.best_value if self.cfg.select_metric == "val_loss" else value > self.best_value

    def card(self, metrics: dict) -> ModelCard:
        cfg = self.cfg
        return ModelCard(
            architecture=cfg.model.name,
            class_names=list(self.class_names),
            in_channels=cfg.data.channels,
            image_size=cfg.data.image_size,
            input_size=self.input_size,
            normalization=self.data.normalization.to_dict(),
            model_options=dict(cfg.model.options),
            training_data=f"{self.data.train.name} ({', '.join(cfg.data.train_splits)}; {len(self.data.train)} images)"
            + (f", label mode {cfg.data.label_mode}" if cfg.data.label_mode != "hard" else ""),
            metrics=metrics,
            licence=cfg.licence_note,
            class_prior=learned_prior(cfg.loss, self.data.train.class_counts(),
                                      self.data.train.label_mass(soft=cfg.data.label_mode == "soft"),
                                      balanced_sampler=cfg.sampler == "balanced"),
            extra={"run": self.run_dir.name, "epochs": self.epoch, "optimizer": cfg.optim.name,
                   "scheduler": cfg.scheduler.name, **self._averaging_note(),
                   **({"init_weights": cfg.init_weights} if cfg.init_weights else {})},
        )

    def _averaging_note(self) -> dict:
        if self.averaging is None or not self.averaging.count:
            return {}
        return {"weight_averaging": {"method": "swa", "start_epoch": self.averaging.start_epoch,
                                     "epochs_averaged": self.averaging.count, "lr": self.cfg.swa.lr or None}}

    def fit(self) -> dict:
        """Train to the configured epochs; only rank 0 writes the run folder (the others return the same
        summary without the test metrics, which rank 0 computes alone after training)."""
        try:
            summary = self._fit()
            # the other ranks wait here while rank 0 writes and tests; leaving the group together,
            # with the DDP wrapper (which holds the group) released first, lets gloo shut its
            # threads down cleanly instead of aborting a rank that left early
            self.dist.barrier()
            self.train_model = self.model
            return summary
        finally:
            stop_process_group()

    def _fit(self) -> dict:
        cfg = self.cfg
        main = self.dist.is_main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.run_dir / "config.yaml")
            log.info("run %s on %s x %d: %s", self.run_dir, self.device, self.dist.world_size, self.data.summary())
        started = time.time()
        while self.epoch < cfg.epochs:
            epoch_start = time.time()
            train_metrics = self.train_one_epoch()
            judged = self._average_weights()
            val_metrics = self.validate(judged)
            row = {"epoch": self.epoch + 1, **train_metrics, **val_metrics,
                   "lr": self.optimizer.param_groups[0]["lr"], "seconds": round(time.time() - epoch_start, 1)}
            if judged is not self.model:
                row["epochs_averaged"] = self.averaging.count  # type: ignore[union-attr]
            self.history.append(row)
            monitored = val_metrics.get(cfg.select_metric)
            self.schedule.after_epoch(monitored)
            self.epoch += 1
            self.step_in_epoch = 0
            self.running = {"loss": 0.0, "correct": 0.0, "seen": 0.0}
            if main:
                save_weights(judged, self.card(row), self.run_dir / "last.safetensors")
            if monitored is None or self._improved(monitored):
                self.best_value = monitored
                self.best_epoch = self.epoch
                self.stale_epochs = 0
                if main:
                    save_weights(judged, self.card(row), self.run_dir / "best.safetensors")
            else:
                self.stale_epochs += 1
            self.save_checkpoint()
            if main:
                self.write_history()
                tqdm.write(_epoch_line(row))
            if cfg.early_stopping and self.stale_epochs >= cfg.early_stopping:
                if main:
                    tqdm.write(f"early stopping: {cfg.select_metric} did not improve for {self.stale_epochs} epochs")
                break
        summary = {"run_dir": str(self.run_dir), "best_epoch": self.best_epoch, "epochs": self.epoch,
                   "select_metric": cfg.select_metric, "best_value": self.best_value,
                   "train_seconds": round(time.time() - started, 1), "processes": self.dist.world_size}
        if not main:
            return summary
        summary.update(self.final_test())
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary

    def final_test(self) -> dict:
        """Evaluate the best weights on the test split (if any) and store the report in the run."""
        if self.data.test is None or len(self.data.test) == 0:
            return {}
        from affectlens.evaluation.runner import evaluate_weights

        result = evaluate_weights(self.run_dir / "best.safetensors", self.data.test,
                                  self.run_dir / f"eval_{self.cfg.data.test_split}", ten_crop=False,
                                  device=self.device)
        out = {"test_accuracy": result["accuracy"], "test_macro_f1": result["macro_f1"]}
        if self.cfg.ten_crop and self.input_size < self.cfg.data.image_size:
            tc = evaluate_weights(self.run_dir / "best.safetensors", self.data.test,
                                  self.run_dir / f"eval_{self.cfg.data.test_split}_tencrop", ten_crop=True,
                                  device=self.device)
            out.update({"test_accuracy_tencrop": tc["accuracy"], "test_macro_f1_tencrop": tc["macro_f1"]})
        return out

    def write_history(self) -> None:
        (self.run_dir / "metrics.json").write_text(json.dumps(self.history, indent=2) + "\n")
        keys: list[str] = []
        for row in self.history:
            keys += [k for k in row if k not in keys]
        with open(self.run_dir / "metrics.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.history)
        plot_training_curves(self.history, self.run_dir / "curves.png")


def _epoch_line(row: dict) -> str:
    train = f"train loss {row['train_loss']:.4f}"
    if "train_accuracy" in row:
        train += f" acc {row['train_accuracy']:.4f}"
    parts = [f"epoch {row['epoch']}", train]
    if "val_accuracy" in row:
        parts.append(f"val loss {row['val_loss']:.4f} acc {row['val_accuracy']:.4f} macro-F1 {row['val_macro_f1']:.4f}")
    if "val_ccc" in row:
        parts.append(f"val CCC {row['val_ccc']:.4f} (valence {row['val_ccc_valence']:.4f}, "
                     f"arousal {row['val_ccc_arousal']:.4f}) MSE {row['val_mse']:.4f}")
    parts.append(f"lr {row['lr']:.2e}")
    parts.append(f"{row['seconds']:.0f}s")
    return " | ".join(parts)
