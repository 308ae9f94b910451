"""OpenCV Haar-cascade face detector: the fallback that needs nothing beyond opencv-python.

It finds only near-frontal faces, misses more than CenterFace (4 of the 5 faces in
multi_face.jpg, per the field notes) and gives no landmarks, so faces are box-cropped instead of
aligned. Haar has no calibrated confidence: every face scores 1.0 and ``threshold`` only matters
at 1.0 exactly; ``min_neighbors`` is the knob that trades misses for false positives.
"""

from __future__ import annotations

import numpy as np

from affectlens.errors import AffectlensError
from affectlens.faces.detection import FaceDetector

CASCADE = "haarcascade_frontalface_default.xml"


class HaarDetector(FaceDetector):
    """``cv2.CascadeClassifier`` with the frontal-face cascade bundled in opencv-python (< 5)."""

    name = "haar"

    def __init__(
        self,
        threshold: float = 0.5,
        min_face_size: float = 0.0,
        max_side: int | None = 640,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
    ) -> None:
        super().__init__(threshold=threshold, min_face_size=min_face_size, max_side=max_side)
        import cv2

        if scale_factor <= 1.0:
            raise AffectlensError(f"scale_factor must be > 1, got {scale_factor}")
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        data = getattr(cv2, "data", None)
        path = (getattr(data, "haarcascades", "") or "") + CASCADE
        classifier = cv2.CascadeClassifier(path) if hasattr(cv2, "CascadeClassifier") else None
        if classifier is None or classifier.empty():
            raise AffectlensError(
                f"Haar cascade {CASCADE} not available in OpenCV {cv2.__version__} "
                "(OpenCV 5 wheels ship none); install opencv-python<5 or use create_detector('centerface')"
            )
        self._classifier = classifier

    def _detect_rgb(self, rgb: np.ndarray, min_size: float) -> tuple[np.ndarray, np.ndarray, None]:
        import cv2

        grey = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        side = max(1, int(min_size))
        rects = self._classifier.detectMultiScale(
            grey, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(side, side)
        )
        rects = np.asarray(rects, dtype=np.float32).reshape(-1, 4)
        boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
        return boxes, np.ones(len(boxes), dtype=np.float32), None
