"""Training on video windows for valence/arousal (``task: va`` or ``classification+va``).

The same run folder, checkpoints, exact resume, schedules and history as
:class:`~affectlens.training.loop.Trainer`; what differs is what a step sees and what a model is
scored on:

* a step is a batch of ``sequence.per_batch`` windows of ``sequence.length`` frames from different
  videos (:mod:`affectlens.data.sequences`); a CNN-GRU reads them as sequences, a per-frame CNN
  reads the same frames flattened (the comparison the literature makes);
* the loss is ``1 - CCC`` (plus ``loss.va_mse_weight`` * MSE) over the batch's labelled frames,
  plus, for ``classification+va``, ``1/loss.va_weight``-weighted class loss on the labelled frames;
* validation runs whole videos from their first frame (as the streaming predictor does) and
  reports mean CCC (``val_ccc``, the default selection metric of these runs), per dimension, MSE.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from affectlens.data.batches import SequenceBatchDataset, keep_batch, to_float
from affectlens.data.sequences import SequenceBatchSampler, SequenceWindows
from affectlens.errors import AffectlensError
from affectlens.evaluation import quick_metrics
from affectlens.evaluation.regression import regression_metrics
from affectlens.models.freezing import apply_frozen_bn_eval
from affectlens.models.prediction.head import split_outputs
from affectlens.models.prediction.sequence import is_sequential, predict_videos
from affectlens.runtime.card import SEQUENCE_KEY, VA_ONLY_TASK, VA_TASK, ModelCard
from affectlens.training.loop import Trainer
from affectlens.training.losses import ClassificationLoss, ValenceArousalLoss

log = logging.getLogger(__name__)


class VATaskLoss(torch.nn.Module):
    """``va_weight * (1 - CCC [+ w MSE])`` plus the class loss when the model also has classes."""

    def __init__(self, va_loss: ValenceArousalLoss, class_loss: ClassificationLoss | None, va_weight: float) -> None:
        super().__init__()
        self.va_loss = va_loss
        self.class_loss = class_loss
        self.va_weight = float(va_weight)

    def forward(self, out: torch.Tensor, batch: dict[str, torch.Tensor], num_classes: int) -> torch.Tensor:
        logits, va = split_outputs(out, num_classes)
        loss = self.va_weight * self.va_loss(va, batch["va"])
        labels = batch["label"].reshape(-1)
        if self.class_loss is not None and num_classes and bool((labels >= 0).any()):
            flat = {"label": labels}
            loss = loss + self.class_loss(logits.reshape(-1, num_classes), flat)
        return loss


class SequenceTrainer(Trainer):
    """:class:`Trainer` for valence/arousal tasks on windows of video frames."""

    def __init__(self, cfg, run_dir, data=None) -> None:  # type: ignore[no-untyped-def]
        if cfg.task == "va" and cfg.select_metric in ("val_accuracy", "val_macro_f1"):
            raise AffectlensError(f"select_metric '{cfg.select_metric}' needs classes; a 'va' task selects by "
                                  "val_ccc or val_loss (--set select_metric=val_ccc)")
        if cfg.distill.teacher:
            raise AffectlensError("distill.teacher is for classification; a valence/arousal task cannot use it")
        if cfg.swa.start_epoch:
            raise AffectlensError("swa.start_epoch averages single-image classifiers; valence/arousal runs on video "
                                  "windows cannot use it (set swa.start_epoch=0)")
        if cfg.sampler != "shuffle":
            raise AffectlensError(f"sampler '{cfg.sampler}' draws single images; valence/arousal tasks shuffle windows")
        self._windows: SequenceWindows | None = None
        super().__init__(cfg, run_dir, data)
        self.windows = self._train_windows()
        self.num_classes = len(self.class_names) if cfg.task == "classification+va" else 0
        log.info("%d training windows of %d frames from %d tracks; %d per batch", len(self.windows),
                 cfg.sequence.length, len(set(self.windows.track_of.tolist())), cfg.sequence.per_batch)

    # ------------------------------------------------------------------ setup
    def _train_windows(self) -> SequenceWindows:
        if self._windows is None:
            seq = self.cfg.sequence
            self._windows = SequenceWindows.from_dataset(self.data.train, seq.length, seq.stride or None)
        return self._windows

    def num_outputs(self) -> int:
        classes = len(self.class_names) if self.cfg.task == "classification+va" else 0
        return classes + 2

    def build_loss(self) -> torch.nn.Module:
        class_loss = None
        if self.cfg.task == "classification+va":
            class_loss = ClassificationLoss(self.cfg.loss, self.data.train.class_counts())
        return VATaskLoss(ValenceArousalLoss(self.cfg.loss.va_mse_weight), class_loss, self.cfg.loss.va_weight)

    def _sampler(self) -> SequenceBatchSampler:
        sampler = SequenceBatchSampler(self._train_windows().track_of, self.cfg.sequence.per_batch, self.cfg.seed)
        sampler.set_epoch(getattr(self, "epoch", 0))
        return sampler

    def steps_per_epoch(self) -> int:
        """Batches of the first epoch. Later epochs are cut to it: keeping one length per epoch keeps
        schedules (one-cycle counts steps) and resume positions exact; the few windows a reshuffle
        leaves over (when videos have very different lengths) are seen in other epochs."""
        return len(self._sampler())

    def _loader(self) -> DataLoader:
        batches = self._sampler().batches()[: self.loader_len][self.step_in_epoch :]
        dataset = SequenceBatchDataset(self.data.train, self._train_windows().windows)
        return DataLoader(dataset, batch_sampler=batches, collate_fn=keep_batch, num_workers=self.cfg.num_workers)

    # ------------------------------------------------------------------ training
    def _outputs(self, images: torch.Tensor) -> torch.Tensor:
        """Raw outputs ``(B, T, K + 2)`` of normalised windows ``(B, T, C, H, W)``."""
        if is_sequential(self.model):
            return self.model(images)
        b, t = images.shape[:2]
        return self.model(images.flatten(0, 1)).reshape(b, t, -1)

    def train_one_epoch(self) -> dict:
        self.model.train()
        apply_frozen_bn_eval(self.model)
        norm = self.data.normalization
        bar = tqdm(self._loader(), total=self.loader_len, initial=self.step_in_epoch,
                   desc=f"epoch {self.epoch + 1}/{self.cfg.epochs}", unit="batch", leave=False, dynamic_ncols=True)
        for batch in bar:
            windows = batch["image"].to(self.device, non_blocking=True)
            b, t = windows.shape[:2]
            frames = norm(self.augment(to_float(windows.flatten(0, 1))))
            images = frames.reshape(b, t, *frames.shape[1:])
            with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.use_amp):
                out = self._outputs(images)
                loss = self.loss_fn(out, batch, self.num_classes)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.schedule.after_batch()
            labels = batch["label"].to(self.device).reshape(-1)
            valid = labels >= 0
            self.running["loss"] += float(loss.detach())
            self.running["seen"] += 1  # batches: the loss is a batch statistic (CCC), not a per-frame mean
            if self.num_classes and valid.any():
                predicted = out.reshape(-1, out.shape[-1])[:, : self.num_classes].argmax(1)
                self.running["correct"] += float((predicted[valid] == labels[valid]).float().mean())
            self.step_in_epoch += 1
            bar.set_postfix(loss=f"{self.running['loss'] / max(self.running['seen'], 1):.3f}")
            if self.cfg.checkpoint_every_steps and self.step_in_epoch % self.cfg.checkpoint_every_steps == 0 \
                    and self.step_in_epoch < self.loader_len:
                self.save_checkpoint()
        bar.close()
        seen = max(self.running["seen"], 1)
        result = {"train_loss": self.running["loss"] / seen}
        if self.num_classes:
            result["train_accuracy"] = self.running["correct"] / seen
        return result

    def validate(self, model: torch.nn.Module | None = None) -> dict:
        if self.data.val is None or len(self.data.val) == 0:
            return {}
        judged = self.model if model is None else model
        probs, va = predict_videos(judged, self.data.val, self.data.normalization, self.input_size,
                                   self.num_classes, self.device, self.cfg.sequence.eval_chunk)
        return va_validation_metrics(self.data.val, probs, va, self.num_classes, self.cfg.loss.va_mse_weight)

    # ------------------------------------------------------------------ outputs
    def card(self, metrics: dict) -> ModelCard:
        card = super().card(metrics)
        card.task = VA_TASK if self.num_classes else VA_ONLY_TASK
        if not self.num_classes:
            card.class_names = []
        if is_sequential(self.model):
            layers, hidden = self.model.state_shape
            card.extra[SEQUENCE_KEY] = {"length": self.cfg.sequence.length, "state_shape": [layers, hidden]}
        card.training_data += f"; windows of {self.cfg.sequence.length} frames, {self.cfg.sequence.per_batch} per batch"
        return card

    def final_test(self) -> dict:
        if self.data.test is None or len(self.data.test) == 0:
            return {}
        from affectlens.evaluation.runner import evaluate_weights

        result = evaluate_weights(self.run_dir / "best.safetensors", self.data.test,
                                  self.run_dir / f"eval_{self.cfg.data.test_split}", device=self.device,
                                  chunk=self.cfg.sequence.eval_chunk)
        va = result["valence_arousal"]
        out = {"test_ccc": va["mean_ccc"], "test_mse": va["mean_mse"],
               "test_ccc_valence": va["dimensions"]["valence"]["ccc"],
               "test_ccc_arousal": va["dimensions"]["arousal"]["ccc"]}
        if "accuracy" in result:
            out.update({"test_accuracy": result["accuracy"], "test_macro_f1": result["macro_f1"]})
        return out


def va_validation_metrics(dataset, probs: np.ndarray, va: np.ndarray, num_classes: int,  # type: ignore[no-untyped-def]
                          mse_weight: float = 0.0) -> dict:
    """``val_ccc`` (mean), per-dimension CCC, ``val_mse`` and ``val_loss`` (the training loss on whole
    videos), plus accuracy and macro-F1 when the model has classes."""
    target = np.stack([dataset.valence, dataset.arousal], axis=1)
    metrics = regression_metrics(target, va)
    dims = metrics["dimensions"]
    ccc_v, ccc_a = (dims[d]["ccc"] if dims[d]["ccc"] is not None else 0.0 for d in ("valence", "arousal"))
    mse = metrics["mean_mse"] if metrics["mean_mse"] is not None else float("nan")
    result = {"val_ccc": (ccc_v + ccc_a) / 2, "val_ccc_valence": ccc_v, "val_ccc_arousal": ccc_a, "val_mse": mse,
              "val_loss": 1 - (ccc_v + ccc_a) / 2 + mse_weight * mse}
    labels = dataset.labels
    valid = labels >= 0
    if num_classes and valid.any():
        quick = quick_metrics(labels[valid], probs[valid].argmax(1), num_classes)
        result.update({"val_accuracy": quick["accuracy"], "val_macro_f1": quick["macro_f1"]})
    return result
