"""Confidence that means something: temperature scaling and the expected calibration error.

A network trained with cross-entropy is usually over- or under-confident: among the faces it
calls Happy at 90%, far fewer or more than 90% are happy. Temperature scaling (Guo et al., "On
Calibration of Modern Neural Networks", ICML 2017) fixes this with one number fitted on
validation data: ``p'(c) ∝ p(c) ** (1 / T)``, which is ``softmax(logits / T)`` for one network
(the log-sum-exp shift cancels) and the same monotone map for an ensemble's averaged
probabilities. It never changes which class wins, so accuracy is untouched; it changes only how
sure the answer says it is.

The expected calibration error (ECE) measures the gap: faces are put in 15 equal-width bins by
their top probability, and ECE is the mean |accuracy - confidence| over bins weighted by their
share of faces. The reliability diagram draws the same bins. Where one temperature leaves gaps that
change sign from bin to bin, a card may add a top-label confidence map after it
(:mod:`.confidence_map`); :func:`apply_calibration` applies both, in that order.

NumPy only: prediction applies the card's calibration without torch.
"""

from __future__ import annotations

import numpy as np

from affectlens.errors import AffectlensError
from affectlens.runtime.classifiers import AdjustedClassifier, Classifier
from affectlens.runtime.confidence_map import ConfidenceMap

#: bins of the expected calibration error and the reliability diagram (Guo et al. use 15)
ECE_BINS = 15
#: temperatures outside this range mean the fit went wrong (or the model answers constants)
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 20.0


def check_temperature(temperature: float, source: str = "model") -> float:
    value = float(temperature)
    if not np.isfinite(value) or not MIN_TEMPERATURE <= value <= MAX_TEMPERATURE:
        raise AffectlensError(
            f"{source}: temperature must be in [{MIN_TEMPERATURE:g}, {MAX_TEMPERATURE:g}], got {temperature!r}"
        )
    return value


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``probs ** (1 / T)`` renormalised per row (float32); unchanged at T = 1."""
    if temperature == 1.0:
        return probs
    logp = np.log(np.clip(np.asarray(probs, np.float64), 1e-12, None)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    scaled = np.exp(logp)
    return (scaled / scaled.sum(axis=1, keepdims=True)).astype(np.float32)


def apply_calibration(probs: np.ndarray, temperature: float = 1.0,
                      confidence_map: ConfidenceMap | None = None) -> np.ndarray:
    """A card's whole calibration: its temperature, then its confidence map if it has one."""
    scaled = apply_temperature(probs, temperature)
    return confidence_map(scaled) if confidence_map is not None else scaled


def reliability_bins(y_true: np.ndarray, probs: np.ndarray, bins: int = ECE_BINS) -> list[dict[str, float]]:
    """Per equal-width confidence bin: its range, face count, mean confidence and accuracy."""
    p = np.asarray(probs, np.float64)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == np.asarray(y_true)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # a confidence of exactly 1.0 belongs to the last bin; 1/K (the least possible) to the first
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    out = []
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        out.append({
            "low": float(edges[b]), "high": float(edges[b + 1]), "count": count,
            "confidence": float(confidence[members].mean()) if count else 0.0,
            "accuracy": float(correct[members].mean()) if count else 0.0,
        })
    return out


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, bins: int = ECE_BINS) -> float:
    """Mean |accuracy - confidence| over confidence bins, weighted by the share of faces in each."""
    table = reliability_bins(y_true, probs, bins)
    n = sum(row["count"] for row in table)
    if n == 0:
        return 0.0
    return float(sum(row["count"] * abs(row["accuracy"] - row["confidence"]) for row in table) / n)


def negative_log_likelihood(y_true: np.ndarray, probs: np.ndarray, temperature: float) -> float:
    scaled = apply_temperature(np.asarray(probs, np.float64), temperature)
    picked = np.asarray(scaled, np.float64)[np.arange(len(scaled)), np.asarray(y_true)]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, None))))


def fit_temperature(y_true: np.ndarray, probs: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of ``y_true`` (validation data only).

    The likelihood is convex in ``1 / T`` (logits scaled by a constant), so a golden-section search
    over ``log T`` in the allowed range finds its minimum; no optimiser library is needed.
    """
    y = np.asarray(y_true)
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or len(y) != len(p) or len(y) == 0:
        raise AffectlensError(f"fit_temperature needs (N, K) probabilities and N labels, got {p.shape} and {y.shape}")
    lo, hi = np.log(MIN_TEMPERATURE), np.log(MAX_TEMPERATURE)
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = negative_log_likelihood(y, p, np.exp(a)), negative_log_likelihood(y, p, np.exp(b))
    while hi - lo > 1e-4:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = negative_log_likelihood(y, p, np.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = negative_log_likelihood(y, p, np.exp(b))
    return float(round(np.exp((lo + hi) / 2.0), 4))


class CalibratedClassifier(AdjustedClassifier):
    """Any classifier (network or ensemble) answering with calibrated probabilities: temperature-scaled,
    then top-label mapped when a confidence map is given.

    Valence and arousal, when the model predicts them, pass through unchanged.
    """

    def __init__(self, inner: Classifier, temperature: float, confidence_map: ConfidenceMap | None = None) -> None:
        super().__init__(inner)
        self.temperature = check_temperature(temperature, str(inner.source))
        self.confidence_map = confidence_map

    def __repr__(self) -> str:
        mapped = " and a top-label confidence map" if self.confidence_map is not None else ""
        return f"{self.inner!r} at temperature {self.temperature:g}{mapped}"

    def adjust(self, probs: np.ndarray) -> np.ndarray:
        return apply_calibration(probs, self.temperature, self.confidence_map)
