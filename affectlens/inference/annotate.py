"""Drawing results onto images: a box per face, its label, and a probability bar per class.

Everything is drawn with OpenCV onto the BGR frame in place (video frames are fresh buffers, so
no copy is needed); sizes scale with the image so labels stay readable on 4K photos and small
webcam frames alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from affectlens.inference.types import FaceResult

# BGR colours for the usual emotion names; other classes take the fallback palette by index.
_NAMED = {
    "angry": (40, 40, 220),
    "anger": (40, 40, 220),
    "disgust": (40, 140, 40),
    "fear": (160, 60, 160),
    "happy": (60, 200, 60),
    "happiness": (60, 200, 60),
    "sad": (200, 120, 40),
    "sadness": (200, 120, 40),
    "surprise": (0, 200, 240),
    "neutral": (180, 180, 180),
    "contempt": (120, 80, 200),
}
_PALETTE = [(230, 160, 60), (60, 160, 230), (160, 230, 60), (200, 60, 160), (60, 230, 200), (140, 140, 240)]


def class_colour(name: str, index: int) -> tuple[int, int, int]:
    return _NAMED.get(name.lower(), _PALETTE[index % len(_PALETTE)])


def _scale(image: np.ndarray) -> float:
    return float(np.clip(min(image.shape[:2]) / 720.0, 0.45, 2.5))


def draw_faces(bgr: np.ndarray, faces: Sequence[FaceResult], bars: bool = True, landmarks: bool = True) -> np.ndarray:
    """Draw every face of one image onto ``bgr`` (uint8 ``(H, W, 3)``, modified in place)."""
    import cv2

    if not faces:
        return bgr
    s = _scale(bgr)
    thick = max(1, round(2 * s))
    font = cv2.FONT_HERSHEY_SIMPLEX
    fs = 0.5 * s
    h, w = bgr.shape[:2]
    for face in faces:
        names = face.class_names
        top = int(np.argmax(face.probabilities)) if face.probabilities.size else 0
        colour = class_colour(face.label, top)
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        cv2.rectangle(bgr, (x1, y1), (x2, y2), colour, thick, cv2.LINE_AA)
        if landmarks and face.landmarks is not None:
            for x, y in np.asarray(face.landmarks):
                cv2.circle(bgr, (int(round(x)), int(round(y))), max(1, thick), (255, 255, 255), -1, cv2.LINE_AA)
        text = f"#{face.face_id} {face.label} {face.confidence:.0%}" if names else f"#{face.face_id}"
        if face.valence is not None and face.arousal is not None:
            text += f" v{face.valence:+.2f} a{face.arousal:+.2f}"
        (tw, th), base = cv2.getTextSize(text, font, fs, max(1, thick // 2))
        ty = y1 - base - 2 if y1 - th - base - 4 >= 0 else min(h - 1, y2 + th + 4)
        cv2.rectangle(bgr, (x1, ty - th - 2), (x1 + tw + 4, ty + base), colour, -1)
        cv2.putText(bgr, text, (x1 + 2, ty), font, fs, (0, 0, 0), max(1, thick // 2), cv2.LINE_AA)
        if bars and names:
            _draw_bars(bgr, face, names, (x1, y1, x2, y2), s)
    return bgr


def _draw_bars(
    bgr: np.ndarray, face: FaceResult, names: Sequence[str], box: tuple[int, int, int, int], s: float
) -> None:
    """A small panel under the box (the neck/body, rarely another face): one bar per class."""
    import cv2

    h, w = bgr.shape[:2]
    x1, y1, x2, y2 = box
    row = max(8, round(12 * s))
    panel_w = max(x2 - x1, round(110 * s))
    label_w = round(panel_w * 0.45)
    bar_w = panel_w - label_w - 4
    panel_h = row * len(names) + 4
    px = int(np.clip(x1, 0, max(0, w - panel_w)))
    py = y2 + 2 if y2 + 2 + panel_h <= h else max(0, y1 - 2 - panel_h)
    region = bgr[py : py + panel_h, px : px + panel_w]
    region >>= 2  # darken for contrast (in place, no temporary image)
    fs = 0.34 * s
    for k, (name, p) in enumerate(zip(names, face.probabilities, strict=True)):
        y = py + 2 + k * row
        colour = class_colour(name, k)
        cv2.putText(bgr, name[:8], (px + 2, y + row - 2), cv2.FONT_HERSHEY_SIMPLEX, fs, (235, 235, 235), 1,
                    cv2.LINE_AA)
        length = int(round(float(p) * bar_w))
        if length > 0:
            cv2.rectangle(bgr, (px + label_w, y + 2), (px + label_w + length, y + row - 2), colour, -1)


def draw_fps(bgr: np.ndarray, fps: float) -> np.ndarray:
    """Frame rate in the top-left corner (camera window and headless camera video)."""
    import cv2

    s = _scale(bgr)
    text = f"{fps:5.1f} fps"
    cv2.putText(bgr, text, (8, round(24 * s)), cv2.FONT_HERSHEY_SIMPLEX, 0.7 * s, (0, 0, 0), max(2, round(4 * s)),
                cv2.LINE_AA)
    cv2.putText(bgr, text, (8, round(24 * s)), cv2.FONT_HERSHEY_SIMPLEX, 0.7 * s, (255, 255, 255),
                max(1, round(2 * s)), cv2.LINE_AA)
    return bgr
