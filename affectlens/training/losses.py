"""Classification losses: cross-entropy with optional class weights, label smoothing and soft targets."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from affectlens.errors import AffectlensError, unknown_name_error
from affectlens.training.config import LossConfig

WEIGHT_MODES = ("none", "inverse", "effective")


def class_weights(counts: np.ndarray, mode: str | list[float], beta: float = 0.999) -> torch.Tensor | None:
    """Per-class loss weights, normalised to mean 1.

    ``inverse``: 1 / frequency. ``effective``: (1 - beta) / (1 - beta^n), the "effective number of
    samples" of Cui et al. 2019, which tempers inverse frequency for very rare classes.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if isinstance(mode, list):
        if len(mode) != len(counts):
            raise AffectlensError(f"loss.class_weights has {len(mode)} values for {len(counts)} classes")
        weights = np.asarray(mode, dtype=np.float64)
    elif mode == "none":
        return None
    elif mode == "inverse":
        weights = 1.0 / np.maximum(counts, 1)
    elif mode == "effective":
        weights = (1.0 - beta) / (1.0 - np.power(beta, np.maximum(counts, 1)))
    else:
        raise unknown_name_error("class weighting", str(mode), WEIGHT_MODES)
    weights = weights / weights.mean()
    return torch.tensor(weights, dtype=torch.float32)


class ClassificationLoss(nn.Module):
    """Cross-entropy on hard labels, or on soft label distributions when the batch has them."""

    def __init__(self, cfg: LossConfig, counts: np.ndarray, use_soft: bool = False) -> None:
        super().__init__()
        weights = class_weights(counts, cfg.class_weights, cfg.effective_beta)
        self.register_buffer("weight", weights if weights is not None else torch.empty(0))
        self.label_smoothing = cfg.label_smoothing
        self.use_soft = use_soft

    def forward(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        weight = self.weight if self.weight.numel() else None
        if self.use_soft and "soft" in batch:
            target = batch["soft"].to(logits.device)
            if self.label_smoothing:
                target = target * (1 - self.label_smoothing) + self.label_smoothing / target.shape[1]
            log_probs = F.log_softmax(logits.float(), dim=1)
            per_sample = -(target * log_probs * (weight if weight is not None else 1.0)).sum(dim=1)
            return per_sample.mean()
        labels = batch["label"].to(logits.device)
        return F.cross_entropy(logits.float(), labels, weight=weight, label_smoothing=self.label_smoothing,
                               ignore_index=-1)
