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


#: label text height as a share of the frame height: a video is watched scaled to its player, so a
#: label sized to the frame keeps its size on the screen (about 11 CSS px for 640x360 on a phone)
VIDEO_LABEL_HEIGHT = 0.05
#: photos are looked at closer (zoomed, full screen) and hold more faces: half the video's share
PHOTO_LABEL_HEIGHT = 0.025
MIN_LABEL_PX = 12
#: the bottom share of a video frame where players draw their controls: no label or bar goes there
CONTROLS_BAND = 0.16

_FONT_PX = 22  # FONT_HERSHEY_SIMPLEX cap height at scale 1


def _scale(image: np.ndarray) -> float:
    """Drawing scale from the frame height (1.0: a 360-line frame), for lines, bars and the fps text."""
    return float(np.clip(image.shape[0] / 360.0, 0.5, 6.0))


def _font_scale(image: np.ndarray, label_height: float) -> float:
    return max(MIN_LABEL_PX, label_height * image.shape[0]) / _FONT_PX


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_label(
    box: tuple[int, int, int, int], size: tuple[int, int], placed: Sequence[tuple[int, int, int, int]],
    frame: tuple[int, int], bottom: int, boxes: Sequence[tuple[int, int, int, int]] = (),
) -> tuple[int, int, int, int]:
    """Where a label of ``size`` (w, h) goes for ``box``: above it, else below, else inside its top,
    the first place inside the frame (above ``bottom``) that overlaps no label ``placed`` so far
    (nor, where one is free, the other faces' ``boxes``); when all collide, the first place moved
    up (or down) until clear."""
    x1, y1, x2, y2 = box
    w, h = size
    width = frame[0]
    left = int(np.clip(x1, 0, max(0, width - w)))
    candidates = [y1 - h, y2, y1]
    fits = [top for top in candidates if top >= 0 and top + h <= bottom]
    for avoid in (list(placed) + list(boxes), placed):  # clear of other faces too if possible
        for top in fits:
            rect = (left, top, left + w, top + h)
            if not any(_overlaps(rect, other) for other in avoid):
                return rect
    top = fits[0] if fits else max(0, min(y1, bottom - h))
    for step in (-1, 1):
        probe = top
        while 0 <= probe and probe + h <= bottom:
            rect = (left, probe, left + w, probe + h)
            if not any(_overlaps(rect, other) for other in placed):
                return rect
            probe += step * max(2, h // 4)
    return (left, top, left + w, top + h)


def draw_faces(bgr: np.ndarray, faces: Sequence[FaceResult], bars: bool = True, landmarks: bool = True,
               keep_clear_bottom: float = 0.0, label_height: float = PHOTO_LABEL_HEIGHT) -> np.ndarray:
    """Draw every face of one image onto ``bgr`` (uint8 ``(H, W, 3)``, modified in place).

    Labels are ``label_height`` of the frame height (:data:`VIDEO_LABEL_HEIGHT` for videos) and
    never cover each other; bars go where they cover no face or label. ``keep_clear_bottom``: the
    share of the height at the bottom where no label or bar goes (a video player's controls,
    :data:`CONTROLS_BAND`).
    """
    import cv2

    if not faces:
        return bgr
    s = _scale(bgr)
    thick = max(1, round(2 * s))
    font = cv2.FONT_HERSHEY_SIMPLEX
    fs = _font_scale(bgr, label_height)
    text_thick = max(1, round(fs * 1.6))
    h, w = bgr.shape[:2]
    bottom = max(1, round(h * (1.0 - keep_clear_bottom)))
    placed: list[tuple[int, int, int, int]] = []
    boxes = [tuple(int(round(v)) for v in face.box) for face in faces]
    for index, face in enumerate(faces):
        others = boxes[:index] + boxes[index + 1:]
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
        (tw, th), base = cv2.getTextSize(text, font, fs, text_thick)
        pad = max(2, th // 5)
        rect = place_label((x1, y1, x2, y2), (tw + 2 * pad, th + base + 2 * pad), placed, (w, h), bottom, others)
        placed.append(rect)
        cv2.rectangle(bgr, rect[:2], (rect[2] - 1, rect[3] - 1), colour, -1)
        cv2.putText(bgr, text, (rect[0] + pad, rect[3] - pad - base), font, fs, text_colour(colour), text_thick,
                    cv2.LINE_AA)
        if bars and names and (panel := _draw_bars(bgr, face, names, (x1, y1, x2, y2), s, bottom,
                                                           placed + boxes)):
            placed.append(panel)
    return bgr


def text_colour(bgr_colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever contrasts more with ``bgr_colour`` (WCAG relative luminance)."""
    def linear(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    b, g, r = bgr_colour
    lum = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
    return (0, 0, 0) if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else (255, 255, 255)


def _draw_bars(
    bgr: np.ndarray, face: FaceResult, names: Sequence[str], box: tuple[int, int, int, int], s: float,
    bottom: int, placed: Sequence[tuple[int, int, int, int]],
) -> tuple[int, int, int, int] | None:
    """A small panel under the box (the neck/body, rarely another face), else beside it: one bar per class.
    Its rectangle, or None when it fits nowhere free."""
    import cv2

    h, w = bgr.shape[:2]
    x1, y1, x2, y2 = box
    row = max(8, round(10 * s))
    panel_w = max(x2 - x1, round(100 * s))
    label_w = round(panel_w * 0.45)
    bar_w = panel_w - label_w - 4
    panel_h = row * len(names) + 4
    spots = [(int(np.clip(x1, 0, max(0, w - panel_w))), y2 + 2), (x2 + 2, y1), (x1 - 2 - panel_w, y1)]
    for px, py in spots:
        rect = (px, py, px + panel_w, py + panel_h)
        if px >= 0 and px + panel_w <= w and py >= 0 and py + panel_h <= bottom and \
                not any(_overlaps(rect, other) for other in placed):
            break
    else:
        return None  # no free place: the label says the most, the bars are left out
    region = bgr[py : py + panel_h, px : px + panel_w]
    region >>= 2  # darken for contrast (in place, no temporary image)
    fs = row / 28
    for k, (name, p) in enumerate(zip(names, face.probabilities, strict=True)):
        y = py + 2 + k * row
        colour = class_colour(name, k)
        cv2.putText(bgr, name[:8], (px + 2, y + row - 2), cv2.FONT_HERSHEY_SIMPLEX, fs, (235, 235, 235), 1,
                    cv2.LINE_AA)
        length = int(round(float(p) * bar_w))
        if length > 0:
            cv2.rectangle(bgr, (px + label_w, y + 2), (px + label_w + length, y + row - 2), colour, -1)
    return (px, py, px + panel_w, py + panel_h)


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
