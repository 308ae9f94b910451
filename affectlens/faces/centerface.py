"""CenterFace: the default face detector (boxes + 5 landmarks), run with ONNX Runtime on CPU.

The 7 MB ONNX model ships inside this package (``faces/weights/centerface.onnx``, MIT; origin and
licence in ``faces/weights/NOTICE.txt``), so nothing is downloaded at run time and no other
package is needed for it. The model is a CenterNet-style network: for an RGB input of 0..255
floats whose sides are multiples of 32 it returns, at stride 4, a face-centre heatmap, log box
sizes, sub-pixel centre offsets and the 5 landmarks relative to the box. The shipped graph has
symbolic batch/height/width (the original was fixed at 10x3x32x32), so any image size runs without
the ``onnx`` package at run time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectlens.errors import AffectlensError
from affectlens.faces.detection import DEFAULT_MAX_SIDE, FaceDetector
from affectlens.utils.onnx_session import create_session

STRIDE = 4  # output map resolution relative to the input
_ALIGN = 32  # input sides must be multiples of this (5 down-samplings)
_INPUT = "input.1"
_OUTPUTS = ("537", "538", "539", "540")  # heatmap, log-scale (h, w), offset (y, x), landmarks (y, x)*5


def model_path() -> Path:
    """Location of the shipped ``centerface.onnx``."""
    path = Path(__file__).resolve().parent / "weights" / "centerface.onnx"
    if not path.is_file():
        raise AffectlensError(
            f"CenterFace model missing at {path}: the affectlens install is incomplete; reinstall it "
            "(or use create_detector('haar'))"
        )
    return path


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression (OpenCV's); the indices kept, best score first.

    ``boxes`` are (x1, y1, x2, y2); OpenCV wants (x, y, width, height). Every score passed in is
    already above the detector's threshold (>= 0), so OpenCV's own filter (score > 0) keeps them all.
    """
    import cv2

    if len(boxes) == 0:
        return np.zeros((0,), dtype=np.int64)
    xywh = np.asarray(boxes, dtype=np.float64).copy()
    xywh[:, 2:] -= xywh[:, :2]
    keep = cv2.dnn.NMSBoxes(xywh, np.asarray(scores, dtype=np.float32), 0.0, float(iou_threshold))
    return np.asarray(keep, dtype=np.int64).reshape(-1)


#: heatmap peaks of at least this (below ``threshold``) hint at a face too small for the scale; measured:
#: 24-40 px faces of tiled group photos at 8-13 detection px peak at 0.33 or more, no face-free test
#: photo reaches 0.06 and face-free video frames 0.17 (next to a face)
HINT_THRESHOLD = 0.1


class CenterFaceDetector(FaceDetector):
    """CenterFace on ONNX Runtime (CPU). Scores are heatmap peaks in [0, 1].

    ``num_threads`` is ONNX Runtime's intra-op pool; the default uses up to 4 cores, since the
    model is small and more threads mostly add synchronisation cost and steal cores from the
    emotion classifier and video decoding running beside it. Threads do not spin-wait.

    Defaults, measured on the test media: ``threshold`` 0.4 sits between the weakest true face
    (0.53-0.69 depending on scale) and the strongest false peak (0.23); ``max_side`` 640 keeps a
    640x360 frame at full resolution and bounds the cost of large photos; it also finds the
    profile face of the 2560 px grey photo, which the model misses when run at 1280 px or at
    full resolution.
    """

    name = "centerface"
    hint_threshold = HINT_THRESHOLD

    def __init__(
        self,
        threshold: float = 0.4,
        min_face_size: float = 0.0,
        max_side: int | None = DEFAULT_MAX_SIDE,
        nms_iou: float = 0.3,
        num_threads: int | None = None,
        small_faces: float = 24.0,
    ) -> None:
        super().__init__(threshold=threshold, min_face_size=min_face_size, max_side=max_side, small_faces=small_faces)
        self.nms_iou = float(nms_iou)
        path = model_path()
        self._session = create_session(path, source=path, num_threads=num_threads)

    def _detect_rgb(
        self, rgb: np.ndarray, min_size: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        h, w = rgb.shape[:2]
        ph, pw = -(-h // _ALIGN) * _ALIGN, -(-w // _ALIGN) * _ALIGN
        # Zero padding at the bottom/right keeps the image geometry: no rescale to undo.
        blob = np.zeros((1, 3, ph, pw), dtype=np.float32)
        blob[0, :, :h, :w] = rgb.transpose(2, 0, 1)
        heatmap, scale, offset, lms = self._session.run(list(_OUTPUTS), {_INPUT: blob})
        # Sub-threshold peaks come back too: detect() treats them as hints of faces too small here.
        return self._decode(heatmap[0, 0], scale[0], offset[0], lms[0], min(self.threshold, HINT_THRESHOLD))

    def _detect_windows(
        self, windows: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """All refit windows in one session call (the graph's batch size is symbolic)."""
        if len(windows) == 0:
            return []
        n, h, w = windows.shape[:3]
        ph, pw = -(-h // _ALIGN) * _ALIGN, -(-w // _ALIGN) * _ALIGN
        blob = np.zeros((n, 3, ph, pw), dtype=np.float32)
        blob[:, :, :h, :w] = windows.transpose(0, 3, 1, 2)
        heatmap, scale, offset, lms = self._session.run(list(_OUTPUTS), {_INPUT: blob})
        return [self._decode(heatmap[i, 0], scale[i], offset[i], lms[i], self.threshold) for i in range(n)]

    def _decode(
        self, heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray, lms: np.ndarray, threshold: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ys, xs = np.nonzero(heatmap > threshold)
        if ys.size == 0:
            return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32)
        scores = heatmap[ys, xs]
        bh = np.exp(scale[0, ys, xs]) * STRIDE
        bw = np.exp(scale[1, ys, xs]) * STRIDE
        cy = (ys + offset[0, ys, xs] + 0.5) * STRIDE
        cx = (xs + offset[1, ys, xs] + 0.5) * STRIDE
        x1, y1 = cx - bw / 2, cy - bh / 2
        boxes = np.stack([x1, y1, x1 + bw, y1 + bh], axis=1)
        # Landmarks are (y, x) pairs as fractions of the box size from its top-left corner.
        rel = lms[:, ys, xs].T.reshape(-1, 5, 2)
        points = np.stack(
            [x1[:, None] + rel[:, :, 1] * bw[:, None], y1[:, None] + rel[:, :, 0] * bh[:, None]], 2
        )
        keep = nms(boxes, scores, self.nms_iou)
        return (
            boxes[keep].astype(np.float32),
            scores[keep].astype(np.float32),
            points[keep].astype(np.float32),
        )
