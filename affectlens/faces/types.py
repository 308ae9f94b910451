"""The detected-face record shared by every detector backend and the predictor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")
"""Order of the 5 landmarks; "left/right" as seen in the image (left eye has the smaller x)."""


@dataclass(frozen=True, eq=False)
class Face:
    """One face in ORIGINAL image pixels.

    ``box`` is ``(x1, y1, x2, y2)``; ``landmarks`` is a ``(5, 2)`` float32 array of (x, y) in
    :data:`LANDMARK_NAMES` order, or ``None`` for detectors without landmarks (Haar), in which
    case alignment falls back to a box crop. ``eq=False``: faces compare by identity because an
    ndarray field has no single truth value.
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray | None
    score: float

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2.0, (self.box[1] + self.box[3]) / 2.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: plain floats and lists (``landmarks`` is a list of 5 [x, y] or None)."""
        return {
            "box": [round(float(v), 2) for v in self.box],
            "landmarks": None
            if self.landmarks is None
            else [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
            "score": round(float(self.score), 4),
        }
