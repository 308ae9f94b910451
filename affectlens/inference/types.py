"""Typed prediction results: what :class:`~affectlens.inference.recognizer.Recognizer` returns.

Plain dataclasses with ``to_dict`` so that the same record feeds the JSON Lines writer, the CSV
writer, the web API and user code without any of them re-deriving field names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


def _r(value: float, digits: int) -> float:
    return round(float(value), digits)


@dataclass(eq=False)
class FaceResult:
    """One face: where it is (original pixels), how sure the detector was, and the emotion.

    ``probabilities`` is ``(K,)`` float32 in the order of ``class_names`` (after temporal
    smoothing when the face comes from a smoothed video track); ``valence``/``arousal`` are
    ``None`` unless the model predicts them; ``face_id`` is the track id in a video and the
    left-to-right index in a still image.
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray | None
    score: float
    label: str
    probabilities: np.ndarray
    class_names: tuple[str, ...]
    face_id: int = 0
    valence: float | None = None
    arousal: float | None = None

    @property
    def confidence(self) -> float:
        """Probability of the predicted label."""
        return float(self.probabilities.max()) if self.probabilities.size else 0.0

    def probability_dict(self) -> dict[str, float]:
        return {name: _r(p, 5) for name, p in zip(self.class_names, self.probabilities, strict=True)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: plain floats and lists, probabilities keyed by class name."""
        out: dict[str, Any] = {
            "face_id": int(self.face_id),
            "box": [_r(v, 2) for v in self.box],
            "landmarks": None
            if self.landmarks is None
            else [[_r(x, 2), _r(y, 2)] for x, y in np.asarray(self.landmarks)],
            "score": _r(self.score, 4),
            "label": self.label,
            "probabilities": self.probability_dict(),
        }
        if self.valence is not None:
            out["valence"] = _r(self.valence, 5)
        if self.arousal is not None:
            out["arousal"] = _r(self.arousal, 5)
        return out


@dataclass(eq=False)
class ImageResult:
    """All faces of one still image (``source`` is the file path, or ``""`` for an array)."""

    source: str
    width: int
    height: int
    faces: list[FaceResult] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.faces)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.source,
            "frame": None,
            "time": None,
            "width": self.width,
            "height": self.height,
            "faces": [face.to_dict() for face in self.faces],
        }


@dataclass(eq=False)
class FrameResult(ImageResult):
    """All faces of one processed video frame; ``frame`` is the index in the source video.

    ``detected`` says whether a full face detection ran on this frame; ``False``: the faces were
    re-fitted in windows around the previous frame's faces (see :mod:`affectlens.inference.keyframes`).
    """

    frame: int = 0
    time: float = 0.0
    detected: bool = True

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["frame"] = int(self.frame)
        out["time"] = _r(self.time, 3)
        out["detected"] = bool(self.detected)
        return out
