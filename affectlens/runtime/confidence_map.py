"""Top-label confidence map: the second calibration step, for miscalibration that one temperature cannot fix.

A temperature rescales every confidence the same way. Some models are over-confident in the
middle (faces answered at 60% are right 55% of the time) and under-confident at the top (answered
at 90%, right 95%): per-bin gaps that change sign, which no single temperature removes. A
confidence map fixes the top-label confidence directly (top-label calibration, Gupta & Ramdas,
ICLR 2022): a monotone piecewise-linear map from the winning class's probability to how often
faces answered with that probability were right on validation data (fitted by logistic or
isotonic regression, :mod:`affectlens.evaluation.calibration`). The other classes share the rest
of the probability mass in their old proportions.

The winner never changes: the mapped confidence is held just above the point where the runner-up
would overtake it, so accuracy stays what it was, as with a temperature. NumPy only: it is stored
as knots in the card and applied on every prediction path without torch or scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from affectlens.errors import AffectlensError

#: the winner keeps at least this margin over the runner-up after the map (so argmax is unchanged)
_WINNER_MARGIN = 1e-6


@dataclass(frozen=True)
class ConfidenceMap:
    """Knots of a non-decreasing map from top-label confidence to calibrated confidence.

    Between knots the map is linear; below the first and above the last it is constant (the
    isotonic fit's own extrapolation).
    """

    confidence: tuple[float, ...]
    calibrated: tuple[float, ...]
    method: str = "isotonic"

    def __post_init__(self) -> None:
        x, y = np.asarray(self.confidence, np.float64), np.asarray(self.calibrated, np.float64)
        if x.ndim != 1 or x.shape != y.shape or len(x) < 2:
            raise AffectlensError(f"a confidence map needs two equally long lists of at least 2 knots, got "
                                  f"{len(self.confidence)} and {len(self.calibrated)}")
        if not (np.isfinite(x).all() and np.isfinite(y).all()) or x.min() < 0 or x.max() > 1 or y.min() < 0 \
                or y.max() > 1:
            raise AffectlensError("confidence map knots must be finite and within [0, 1]")
        if np.any(np.diff(x) < 0) or np.any(np.diff(y) < 0):
            raise AffectlensError("confidence map knots must be non-decreasing (a calibration map is monotone)")

    @classmethod
    def from_record(cls, record: dict[str, Any], source: str = "") -> ConfidenceMap:
        """Read the card's ``calibration.confidence_map``; a malformed one fails with one line (naming ``source``)."""
        prefix = f"{source}: " if source else ""
        try:
            return cls(tuple(float(v) for v in record["confidence"]), tuple(float(v) for v in record["calibrated"]),
                       str(record.get("method", "isotonic")))
        except (KeyError, TypeError, ValueError) as exc:
            raise AffectlensError(f"{prefix}calibration.confidence_map needs 'confidence' and 'calibrated' lists "
                                  f"of numbers ({exc})") from None
        except AffectlensError as exc:
            raise AffectlensError(f"{prefix}{exc}") from None

    def to_record(self) -> dict[str, Any]:
        return {"method": self.method, "confidence": list(self.confidence), "calibrated": list(self.calibrated)}

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        """``probs`` (N, K) with each row's top probability mapped and the others rescaled to sum to 1 (float32)."""
        p = np.asarray(probs, np.float64)
        if p.ndim != 2 or p.shape[1] < 2 or len(p) == 0:
            return np.asarray(probs, np.float32)
        rows = np.arange(len(p))
        winner = p.argmax(axis=1)
        top = p[rows, winner]
        runner_up = np.partition(p, -2, axis=1)[:, -2]
        rest = p.sum(axis=1) - top  # the others' mass as given (rows of float32 sums are not exactly 1)
        mapped = np.interp(top, self.confidence, self.calibrated)
        # the smallest top value that keeps the winner ahead once the rest is rescaled to 1 - mapped
        floor = runner_up / np.maximum(rest + runner_up, 1e-12) + _WINNER_MARGIN
        mapped = np.clip(np.maximum(mapped, floor), 0.0, 1.0)
        movable = rest > 1e-9  # a row that is all winner has no mass to share out: it stays as it is
        mapped = np.where(movable, mapped, top)
        scale = np.where(movable, (1.0 - mapped) / np.maximum(rest, 1e-12), 1.0)
        out = p * scale[:, None]
        out[rows, winner] = mapped
        return out.astype(np.float32)
