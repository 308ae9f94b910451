"""Learning-rate schedulers of the study, by name, with one stepping rule for the loop.

One-cycle steps every batch; the others step once per epoch (reduce-on-plateau with the
monitored validation metric). :class:`LRSchedule` hides that difference from the loop.
"""

from __future__ import annotations

import torch
from torch.optim import lr_scheduler

from affectlens.errors import unknown_name_error
from affectlens.training.config import SchedulerConfig

SCHEDULERS = ("plateau", "cosine", "cosine_restarts", "onecycle", "step", "constant")


class LRSchedule:
    """Wraps a torch scheduler and knows whether it steps per batch or per epoch."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: SchedulerConfig, epochs: int, steps_per_epoch: int,
                 base_lr: float, monitor_mode: str = "max") -> None:
        self.name = cfg.name
        self.per_batch = cfg.name == "onecycle"
        if cfg.name == "plateau":
            self.scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, mode=monitor_mode, factor=cfg.factor,
                                                            patience=cfg.patience, min_lr=cfg.min_lr)
        elif cfg.name == "cosine":
            self.scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1), eta_min=cfg.min_lr)
        elif cfg.name == "cosine_restarts":
            self.scheduler = lr_scheduler.CosineAnnealingWarmRestarts(
                optimizer, T_0=max(cfg.restart_period, 1), T_mult=max(cfg.restart_mult, 1), eta_min=cfg.min_lr)
        elif cfg.name == "onecycle":
            self.scheduler = lr_scheduler.OneCycleLR(
                optimizer, max_lr=cfg.max_lr or base_lr * 10, epochs=max(epochs, 1),
                steps_per_epoch=max(steps_per_epoch, 1), pct_start=cfg.pct_start)
        elif cfg.name == "step":
            self.scheduler = lr_scheduler.StepLR(optimizer, step_size=max(cfg.step_size, 1), gamma=cfg.gamma)
        elif cfg.name == "constant":
            self.scheduler = lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        else:
            raise unknown_name_error("scheduler", cfg.name, SCHEDULERS)

    def after_batch(self) -> None:
        if self.per_batch:
            self.scheduler.step()

    def after_epoch(self, monitored: float | None) -> None:
        if self.per_batch:
            return
        if isinstance(self.scheduler, lr_scheduler.ReduceLROnPlateau):
            if monitored is not None:
                self.scheduler.step(monitored)
        else:
            self.scheduler.step()

    def state_dict(self) -> dict:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Restore the position in the schedule; its length stays the one built from the configured
        epochs, so ``train --resume RUN --epochs N`` can lengthen or shorten a run: one-cycle then
        follows the new curve from the same step, cosine re-times the rest of its curve from the
        current rate to reach its minimum at the new end. (Restoring the saved length made one-cycle
        raise once it passed its old end.) An unchanged run resumes exactly: the lengths are equal."""
        length_keys = {lr_scheduler.OneCycleLR: ("total_steps", "_schedule_phases"),
                       lr_scheduler.CosineAnnealingLR: ("T_max",)}.get(type(self.scheduler), ())
        length = {key: getattr(self.scheduler, key) for key in length_keys}
        self.scheduler.load_state_dict(state)
        self.scheduler.__dict__.update(length)
