"""Classification losses: cross-entropy, focal loss and logit-adjusted cross-entropy.

All three take optional class weights, label smoothing and soft targets (FER+ votes). The two
imbalance remedies beyond class weights:

* focal loss (Lin et al. 2017) scales each sample's loss by ``(1 - p_true) ** gamma``, so the many
  easy examples of the common classes stop dominating the gradient;
* logit adjustment (Menon et al. 2021) trains on ``logits + tau * log(prior)``: a rare class must
  win by a margin that grows as its prior shrinks, and the raw logits used at inference then
  approximate a classifier for balanced classes. Nothing changes at inference time.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from affectlens.errors import AffectlensError, unknown_name_error
from affectlens.training.config import LossConfig

WEIGHT_MODES = ("none", "inverse", "effective")
LOSS_NAMES = ("cross_entropy", "focal", "logit_adjusted")


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


def log_prior(counts: np.ndarray) -> torch.Tensor:
    """log of the training class frequencies; an empty class counts as half a sample."""
    counts = np.maximum(np.asarray(counts, dtype=np.float64), 0.5)
    return torch.tensor(np.log(counts / counts.sum()), dtype=torch.float32)


def learned_prior(cfg: LossConfig, counts: np.ndarray, mass: np.ndarray, balanced_sampler: bool) -> list[float]:
    """The class prior a model trained this way carries in its probabilities, for a card's ``class_prior``.

    ``mass`` is what each class weighs in the training data (``counts``, or summed soft labels). A
    balanced sampler shows every class equally often (uniform); class weights scale each class's
    share; logit adjustment trains ``softmax(f + tau log prior)`` on the data, so ``softmax(f)`` carries
    ``prior ** -tau`` on top. Empty when there are no classes (valence/arousal only). Focal loss is
    left out: it reshapes confidence rather than the prior.
    """
    mass = np.asarray(mass, dtype=np.float64)
    if mass.size == 0 or mass.sum() <= 0:
        return []
    prior = np.ones_like(mass) if balanced_sampler else mass / mass.sum()
    weights = class_weights(counts, cfg.class_weights, cfg.effective_beta)
    if weights is not None:
        prior = prior * weights.double().numpy()
    if cfg.name == "logit_adjusted":
        prior = prior * np.exp(-cfg.logit_tau * log_prior(counts).double().numpy())
    return [round(float(v), 6) for v in prior / prior.sum()]


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float, weight: torch.Tensor | None = None,
               labels: torch.Tensor | None = None) -> torch.Tensor:
    """Focal loss on a target distribution ``(B, K)``: ``-sum_k t_k (1 - p_k)^gamma log p_k``.

    With one-hot targets this is Lin et al.'s ``-(1 - p_true)^gamma log p_true``; with
    ``gamma = 0`` it equals cross-entropy, class weights and label smoothing included: the
    weighted sum is divided by the summed weight of the true classes (``labels``) like
    :func:`torch.nn.functional.cross_entropy`, or of the target mass when there are no labels.
    """
    log_p = F.log_softmax(logits.float(), dim=1)
    modulator = (1.0 - log_p.exp()).clamp(min=0.0).pow(gamma)
    per_class = -target * modulator * log_p
    if weight is None:
        return per_class.sum(dim=1).mean()
    norm = weight[labels].sum() if labels is not None else (target * weight).sum()
    return (per_class * weight).sum() / norm.clamp(min=1e-12)


class ClassificationLoss(nn.Module):
    """Cross-entropy, focal or logit-adjusted loss on hard labels, or on soft label distributions
    when the batch has them (``use_soft``); ``cfg.name`` picks the loss."""

    def __init__(self, cfg: LossConfig, counts: np.ndarray, use_soft: bool = False) -> None:
        super().__init__()
        if cfg.name not in LOSS_NAMES:
            raise unknown_name_error("loss", cfg.name, LOSS_NAMES)
        if cfg.name == "focal" and cfg.focal_gamma < 0:
            raise AffectlensError(f"loss.focal_gamma must be >= 0, got {cfg.focal_gamma}")
        weights = class_weights(counts, cfg.class_weights, cfg.effective_beta)
        self.register_buffer("weight", weights if weights is not None else torch.empty(0))
        adjust = cfg.logit_tau * log_prior(counts) if cfg.name == "logit_adjusted" else torch.empty(0)
        self.register_buffer("adjustment", adjust)
        self.name = cfg.name
        self.gamma = cfg.focal_gamma
        self.label_smoothing = cfg.label_smoothing
        self.use_soft = use_soft

    def forward(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        weight = self.weight if self.weight.numel() else None
        logits = logits.float()
        if self.adjustment.numel():
            logits = logits + self.adjustment
        if self.use_soft and "soft" in batch:
            target = batch["soft"].to(logits.device)
            if self.label_smoothing:
                target = target * (1 - self.label_smoothing) + self.label_smoothing / target.shape[1]
            if self.name == "focal":
                return focal_loss(logits, target, self.gamma, weight)
            log_probs = F.log_softmax(logits, dim=1)
            per_sample = -(target * log_probs * (weight if weight is not None else 1.0)).sum(dim=1)
            return per_sample.mean()
        labels = batch["label"].to(logits.device)
        if self.name == "focal":
            valid = labels >= 0
            if not valid.any():
                return logits.sum() * 0.0
            k = logits.shape[1]
            target = F.one_hot(labels[valid], k).float()
            if self.label_smoothing:
                target = target * (1 - self.label_smoothing) + self.label_smoothing / k
            return focal_loss(logits[valid], target, self.gamma, weight, labels[valid])
        return F.cross_entropy(logits, labels, weight=weight, label_smoothing=self.label_smoothing,
                               ignore_index=-1)


# --------------------------------------------------------------------------------------------------
# Valence / arousal
# --------------------------------------------------------------------------------------------------

#: added to the CCC denominator: a batch whose targets and predictions are both (nearly) constant
#: would otherwise divide zero by zero; with it the CCC is 0 there and its gradient stays finite
CCC_EPS = 1e-6


def masked_ccc(pred: torch.Tensor, target: torch.Tensor, eps: float = CCC_EPS) -> torch.Tensor:
    """Lin's CCC per dimension of ``(..., D)`` predictions over every frame whose target is finite.

    All leading axes (sequences, time) are pooled, as in the batch CCC of the valence/arousal
    literature: a batch of sequences from different videos gives the statistics a meaningful
    spread. NaN targets (unlabelled frames, padding after a short video) are masked out of means,
    variances and covariance. Population (1/N) moments, as :func:`affectlens.evaluation.regression.ccc`.
    A dimension with fewer than two labelled frames gets CCC 0 (and no gradient). Returns ``(D,)``.
    """
    pred = pred.float().reshape(-1, pred.shape[-1])
    target = target.float().reshape(-1, target.shape[-1]).to(pred.device)
    mask = torch.isfinite(target)
    weight = mask.float()
    count = weight.sum(dim=0)
    safe_count = count.clamp(min=1.0)
    t = torch.where(mask, target, torch.zeros_like(target))
    p = pred * weight  # masked frames contribute nothing (and receive no gradient)
    mean_t = t.sum(0) / safe_count
    mean_p = p.sum(0) / safe_count
    dt = (t - mean_t) * weight
    dp = (pred - mean_p) * weight
    var_t = (dt * dt).sum(0) / safe_count
    var_p = (dp * dp).sum(0) / safe_count
    cov = (dt * dp).sum(0) / safe_count
    ccc = 2 * cov / (var_t + var_p + (mean_t - mean_p) ** 2 + eps)
    return torch.where(count >= 2, ccc, torch.zeros_like(ccc))


def masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per dimension over the frames whose target is finite; ``(D,)``."""
    pred = pred.float().reshape(-1, pred.shape[-1])
    target = target.float().reshape(-1, target.shape[-1]).to(pred.device)
    mask = torch.isfinite(target)
    err = torch.where(mask, pred - torch.where(mask, target, torch.zeros_like(target)), torch.zeros_like(pred))
    return (err * err).sum(0) / mask.float().sum(0).clamp(min=1.0)


class ValenceArousalLoss(nn.Module):
    """``mean over valence, arousal of (1 - CCC) + mse_weight * MSE`` on tanh outputs in [-1, 1].

    1 - CCC trains what the field reports; CCC alone ignores a batch whose targets are constant
    (no variance: CCC is 0 whatever the prediction), which the MSE term covers.
    """

    def __init__(self, mse_weight: float = 0.0) -> None:
        super().__init__()
        if mse_weight < 0:
            raise AffectlensError(f"loss.va_mse_weight must be >= 0, got {mse_weight}")
        self.mse_weight = float(mse_weight)

    def forward(self, va_pred: torch.Tensor, va_target: torch.Tensor) -> torch.Tensor:
        loss = (1.0 - masked_ccc(va_pred, va_target)).mean()
        if self.mse_weight:
            loss = loss + self.mse_weight * masked_mse(va_pred, va_target).mean()
        return loss
