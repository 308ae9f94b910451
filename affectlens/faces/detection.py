"""Face-detector interface and the registry of backends.

Every backend shares the same options and the same pre/post-processing, done once here:
input conversion to RGB, downscaling so detection cost does not grow with photo size, mapping
boxes and landmarks back to original pixels, the minimum-face-size filter and the left-to-right
order that gives faces stable ids across a video. Backends only implement :meth:`_detect_rgb`.
"""

from __future__ import annotations

import importlib
import inspect
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from affectlens.errors import AffectlensError, unknown_name_error
from affectlens.faces.types import Face

# name -> "module:Class", imported lazily so that the Haar backend does not load onnxruntime.
#: the detector every command, the Python API and the server use unless told otherwise
DEFAULT_DETECTOR = "centerface"
#: the longer side images are downscaled to for detection (0 or None: full size); lower is faster
DEFAULT_MAX_SIDE = 384
_REGISTRY: dict[str, str] = {
    "centerface": "affectlens.faces.centerface:CenterFaceDetector",
    "haar": "affectlens.faces.haar:HaarDetector",
}


#: refit windows: side in pixels, side in previous-box sides (room for the motion between two
#: frames), and the overlap with the previous box below which a window's face is another face
REFIT_SIZE = 128
REFIT_CONTEXT = 2.0
REFIT_MIN_IOU = 0.3
#: small-face pass, measured with CenterFace on tiled, downscaled group photos: faces of this many
#: detection pixels still raise a sub-threshold response (a hint; 0.33 or more at 8 px, while no
#: test photo without a face there reaches 0.06) ...
CUE_PX = 8
#: ... faces of this many detection pixels are all found (12 px: 180 of 180; 8.5-11 px: 112 of 180) ...
RELIABLE_PX = 12
#: ... and the finer pass puts the smallest wanted face at this many pixels
FINE_PX = 16
#: finer-pass windows: side, overlap margin, and the share of the image above which one pass over
#: the whole finer image is cheaper than the windows
FINE_WINDOW = 224
FINE_MARGIN = 32
WHOLE_IMAGE_SHARE = 0.6
#: two faces overlapping this much are one face
SAME_FACE_IOU = 0.3


def check_image(image: np.ndarray) -> np.ndarray:
    """Validate a uint8 grey/RGB/RGBA image and return it as ``(H, W, C)`` (a view, no copy)."""
    if not isinstance(image, np.ndarray):
        raise AffectlensError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise AffectlensError(f"image must be uint8, got {image.dtype}")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise AffectlensError(f"image must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise AffectlensError(f"image is empty: shape {image.shape}")
    return image


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Return uint8 ``(H, W, 3)`` RGB for grey ``(H, W)``/``(H, W, 1)``, RGB or RGBA (alpha dropped) input."""
    image = check_image(image)
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.shape[2] == 4:
        return np.ascontiguousarray(image[..., :3])
    return image


class FaceDetector(ABC):
    """Finds faces in one uint8 image.

    Options common to all backends:

    - ``threshold``: minimum confidence (backend-specific scale; documented per backend).
    - ``min_face_size``: faces whose box is narrower or shorter than this many ORIGINAL-image
      pixels are dropped (0 keeps all).
    - ``max_side``: the image is downscaled so its longer side is at most this many pixels
      before detection (``None`` or 0: never), which bounds the cost on large photos.
    - ``small_faces``: faces this many ORIGINAL pixels wide should still be found in large photos
      (0: no such promise). Backends that report sub-threshold responses (``hint_threshold``)
      then keep the first pass fine enough for such faces to leave a response, and look again
      at a finer scale only in windows around responses (see :meth:`detect`).
    """

    name: str = ""
    #: sub-threshold score that marks "maybe a face too small for this scale" (None: no such scores)
    hint_threshold: float | None = None

    def __init__(self, threshold: float, min_face_size: float = 0.0, max_side: int | None = DEFAULT_MAX_SIDE,
                 small_faces: float = 24.0) -> None:
        if not 0.0 <= float(threshold) <= 1.0:
            raise AffectlensError(f"face detector threshold must be in [0, 1], got {threshold}")
        if min_face_size < 0:
            raise AffectlensError(f"min_face_size must be >= 0, got {min_face_size}")
        if max_side is not None and max_side != 0 and max_side < 32:
            raise AffectlensError(f"max_side must be >= 32 (or None for no downscaling), got {max_side}")
        if small_faces < 0:
            raise AffectlensError(f"small_faces must be >= 0, got {small_faces}")
        self.threshold = float(threshold)
        self.min_face_size = float(min_face_size)
        self.max_side = int(max_side) if max_side else None
        self.small_faces = float(small_faces)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(threshold={self.threshold}, min_face_size={self.min_face_size}, "
            f"max_side={self.max_side}, small_faces={self.small_faces})"
        )

    @abstractmethod
    def _detect_rgb(
        self, rgb: np.ndarray, min_size: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Detect on a (possibly downscaled) RGB image.

        ``min_size`` is ``min_face_size`` in this image's pixels (a hint backends may use to skip
        work). Returns ``boxes`` (N, 4) float, ``scores`` (N,) and ``landmarks`` (N, 5, 2) or None,
        all in the coordinates of ``rgb``.
        """

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in ``image`` (uint8 grey, RGB or RGBA), in original pixels, sorted by box x1.

        One coarse pass at ``max_side``; then, for backends that report sub-threshold responses
        (:attr:`hint_threshold`), a finer pass only in windows around such responses when the
        coarse pass was too coarse to find faces of ``small_faces`` pixels itself.
        """
        image = check_image(image)
        h, w = image.shape[:2]
        scale = self._coarse_scale(max(h, w))
        small = _scaled_rgb(image, scale)
        sx, sy = small.shape[1] / w, small.shape[0] / h
        found = self._mapped(self._detect_rgb(small, self.min_face_size * min(sx, sy)), sx, sy, 0.0, 0.0, w, h)
        faces = [face for face in found if face.score >= self.threshold]
        hints = [face for face in found if face.score < self.threshold and not _inside_any(face, faces)]
        if hints and 0 < self.small_faces * scale < RELIABLE_PX:
            faces = _merge(faces, self._small_face_pass(image, hints))
        faces.sort(key=lambda face: (face.box[0], face.box[1]))
        return faces

    def _coarse_scale(self, longest: int) -> float:
        """Scale of the first pass: ``max_side``, but fine enough that small faces leave a hint."""
        scale = 1.0 if self.max_side is None else min(1.0, self.max_side / longest)
        if self.small_faces and self.hint_threshold is not None:
            scale = max(scale, min(1.0, CUE_PX / self.small_faces))
        return scale

    def _small_face_pass(self, image: np.ndarray, hints: list[Face]) -> list[Face]:
        """Detect at the scale where ``small_faces`` px faces are reliable, only around ``hints``."""
        h, w = image.shape[:2]
        scale = min(1.0, FINE_PX / self.small_faces)
        fine = _scaled_rgb(image, scale)
        fh, fw = fine.shape[:2]
        sx, sy = fw / w, fh / h
        size, core = FINE_WINDOW, FINE_WINDOW // 2 - FINE_MARGIN
        origins: list[tuple[int, int]] = []
        for face in sorted(hints, key=lambda f: -f.score):
            cx, cy = face.center[0] * sx, face.center[1] * sy
            if any(abs(cx - (x0 + size / 2)) < core and abs(cy - (y0 + size / 2)) < core for x0, y0 in origins):
                continue
            origins.append((int(np.clip(round(cx - size / 2), 0, max(0, fw - size))),
                            int(np.clip(round(cy - size / 2), 0, max(0, fh - size)))))
        if len(origins) * size * size >= WHOLE_IMAGE_SHARE * fw * fh:  # windows would cost as much as all of it
            return [f for f in self._mapped(self._detect_rgb(fine, 0.0), sx, sy, 0.0, 0.0, w, h)
                    if f.score >= self.threshold]
        windows = np.zeros((len(origins), size, size, 3), np.uint8)
        for i, (x0, y0) in enumerate(origins):
            part = fine[y0 : y0 + size, x0 : x0 + size]
            windows[i, : part.shape[0], : part.shape[1]] = part
        out: list[Face] = []
        for (x0, y0), found in zip(origins, self._detect_windows(windows), strict=True):
            mapped = self._mapped(found, sx, sy, x0 / sx, y0 / sy, w, h)
            out = _merge(out, [f for f in mapped if f.score >= self.threshold])
        return out

    def _mapped(
        self, found: tuple[np.ndarray, np.ndarray, np.ndarray | None], sx: float, sy: float,
        ox: float, oy: float, w: int, h: int,
    ) -> list[Face]:
        """Detections of a scaled image (or a window at ``ox, oy`` of it) as faces in original pixels."""
        boxes, scores, landmarks = found
        faces: list[Face] = []
        for i in range(len(boxes)):
            x1, y1, x2, y2 = (float(v) for v in boxes[i])
            x1, x2 = max(0.0, ox + x1 / sx), min(float(w), ox + x2 / sx)
            y1, y2 = max(0.0, oy + y1 / sy), min(float(h), oy + y2 / sy)
            if x2 - x1 < max(self.min_face_size, 1.0) or y2 - y1 < max(self.min_face_size, 1.0):
                continue
            lms = None
            if landmarks is not None:
                lms = (landmarks[i] / np.array([sx, sy]) + np.array([ox, oy])).astype(np.float32)
            faces.append(Face(box=(x1, y1, x2, y2), landmarks=lms, score=float(scores[i])))
        return faces

    __call__ = detect

    def refit(self, image: np.ndarray, boxes: np.ndarray, size: int = REFIT_SIZE) -> list[Face | None]:
        """Re-detect each face of ``boxes`` inside a small window around it: the cheap video step.

        Between full detections a face moves little, so a square window of :data:`REFIT_CONTEXT`
        box sides around its previous box, scaled to ``size`` pixels, holds it at a size the
        detector finds reliably; the detector then returns fresh box and landmarks at a cost
        independent of the frame size (a 128 px window is about 1/15 of a 640x360 frame). For each
        box: the window's face that overlaps the previous box most, or ``None`` when none does (the
        face left, turned away or was covered: the caller runs a full detection).
        """
        image = as_rgb(image)
        h, w = image.shape[:2]
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        windows = np.zeros((len(boxes), size, size, 3), np.uint8)
        # per window: frame x, y of window pixel (0, 0), and frame pixels per window pixel in x, y
        placements = np.zeros((len(boxes), 4))
        for i, box in enumerate(boxes):
            placements[i] = _paste_refit_window(image, box, windows[i])
        found = self._detect_windows(windows)
        out: list[Face | None] = []
        for i, window_found in enumerate(found):
            ox, oy, kx, ky = placements[i]
            candidates = [] if kx == 0 else [
                f for f in self._mapped(window_found, 1.0 / kx, 1.0 / ky, ox, oy, w, h) if f.score >= self.threshold
            ]
            overlaps = [_iou(np.array(f.box), boxes[i]) for f in candidates]
            best = candidates[int(np.argmax(overlaps))] if overlaps and max(overlaps) >= REFIT_MIN_IOU else None
            out.append(best)
        return out

    def _detect_windows(
        self, windows: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """Detections in each of ``windows`` (N, S, S, 3); backends that can batch override this."""
        return [self._detect_rgb(window, 0.0) for window in windows]


def _paste_refit_window(image: np.ndarray, box: np.ndarray, window: np.ndarray) -> tuple[float, float, float, float]:
    """Draw the frame region around ``box`` into ``window`` (S, S, 3); return where it came from.

    The region is a square of :data:`REFIT_CONTEXT` box sides centred on the box. Near a frame
    edge only its part inside the frame is copied, at its place in the window (the rest stays
    black), so the window pixels used are whole and inside ``[0, S)`` whatever the box: a region
    overhanging the top-left edge by a fraction of a window pixel, a face smaller than the window
    (upscaled) or one larger (area-averaged). Returns ``(x, y, kx, ky)``: the frame position of
    window pixel (0, 0) and the frame pixels per window pixel along x and y; ``kx == 0`` when
    nothing of the region lies in the frame (the window stays black).
    """
    import cv2

    h, w = image.shape[:2]
    size = window.shape[0]
    x1, y1, x2, y2 = (float(v) for v in box)
    if not all(np.isfinite((x1, y1, x2, y2))):
        return 0.0, 0.0, 0.0, 0.0
    side = max(x2 - x1, y2 - y1, 1.0) * REFIT_CONTEXT
    x0, y0 = (x1 + x2 - side) / 2.0, (y1 + y2 - side) / 2.0
    scale = side / size  # frame pixels per window pixel, before clipping
    src_x = _clipped_span(x0, side, w)
    src_y = _clipped_span(y0, side, h)
    if src_x is None or src_y is None:
        return 0.0, 0.0, 0.0, 0.0
    dst_x = _window_span(src_x, x0, scale, size)
    dst_y = _window_span(src_y, y0, scale, size)
    (cx0, cx1), (cy0, cy1), (dx0, dx1), (dy0, dy1) = src_x, src_y, dst_x, dst_y
    kx, ky = (cx1 - cx0) / (dx1 - dx0), (cy1 - cy0) / (dy1 - dy0)
    interpolation = cv2.INTER_AREA if max(kx, ky) > 1.0 else cv2.INTER_LINEAR
    window[dy0:dy1, dx0:dx1] = cv2.resize(image[cy0:cy1, cx0:cx1], (dx1 - dx0, dy1 - dy0), interpolation=interpolation)
    return cx0 - dx0 * kx, cy0 - dy0 * ky, kx, ky


def _clipped_span(start: float, length: float, limit: int) -> tuple[int, int] | None:
    """Whole frame pixels of ``[start, start + length)`` inside ``[0, limit)``; None below 2 pixels."""
    lo = min(max(0, int(np.floor(start))), limit)
    hi = max(min(limit, int(np.ceil(start + length))), 0)
    return (lo, hi) if hi - lo >= 2 else None


def _window_span(src: tuple[int, int], start: float, scale: float, size: int) -> tuple[int, int]:
    """Window pixels ``[lo, hi)`` that frame pixels ``src`` land on: at least one, all inside ``[0, size)``."""
    lo = int(np.clip(round((src[0] - start) / scale), 0, size - 1))
    hi = int(np.clip(round((src[1] - start) / scale), lo + 1, size))
    return lo, hi


def _scaled_rgb(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` resized by ``scale`` (area averaging) as RGB; grey is resized before it is tripled."""
    import cv2

    if scale < 1.0:
        h, w = image.shape[:2]
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return as_rgb(image)


def _inside_any(face: Face, faces: list[Face]) -> bool:
    cx, cy = face.center
    return any(f.box[0] <= cx <= f.box[2] and f.box[1] <= cy <= f.box[3] for f in faces)


def _merge(faces: list[Face], more: list[Face]) -> list[Face]:
    """``faces`` plus those of ``more`` that are not already in it (greedy by score within ``more``)."""
    out = list(faces)
    for face in sorted(more, key=lambda f: -f.score):
        if all(_iou(np.array(face.box), np.array(f.box)) < SAME_FACE_IOU for f in out):
            out.append(face)
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def list_detectors() -> list[str]:
    """Names accepted by :func:`create_detector`."""
    return sorted(_REGISTRY)


def create_detector(name: str = DEFAULT_DETECTOR, **options: Any) -> FaceDetector:
    """Build a detector by name; ``options`` are the backend's keyword arguments."""
    if name not in _REGISTRY:
        raise unknown_name_error("face detector", name, list_detectors())
    module_name, class_name = _REGISTRY[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    for key in options:
        if key not in accepted:
            raise unknown_name_error(f"face detector '{name}' option", key, accepted)
    return cls(**options)
