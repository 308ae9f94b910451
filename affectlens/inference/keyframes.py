"""Which video frames get a full face detection, and how faces are followed in between.

A full-frame detection is most of the cost of a video frame (about 80% at 640x360 with the
default model), yet between two frames a face moves a few pixels. So the full detection runs on
every ``detect_every``-th frame only; on the frames between, each face found before is re-fitted
inside a small window around its last box (:meth:`~affectlens.faces.FaceDetector.refit`: the
same detector, fresh box and landmarks, at about 1/15 of the cost). A full detection runs at
once, on the same frame, whenever a face cannot be re-fitted (it left, turned away, was covered)
or its re-fit score falls near the threshold; new faces entering the picture are found at the
next scheduled detection, at most ``detect_every - 1`` frames late. ``detect_every=1`` is the
old behaviour: a full detection on every frame.
"""

from __future__ import annotations

import numpy as np

from affectlens.errors import AffectlensError
from affectlens.faces import FaceDetector
from affectlens.faces.types import Face

#: a re-fitted face whose score is below ``threshold + UNCERTAIN_MARGIN`` is double-checked by a
#: full detection on the next frame rather than followed further
UNCERTAIN_MARGIN = 0.1
#: two re-fitted faces overlapping this much are one face
DUPLICATE_IOU = 0.5


class KeyframeDetector:
    """Full detection on key frames, window re-fits in between; one instance per video stream."""

    def __init__(self, detector: FaceDetector, detect_every: int = 5) -> None:
        if detect_every < 1:
            raise AffectlensError(f"detect_every must be >= 1, got {detect_every}")
        self.detector = detector
        self.detect_every = int(detect_every)
        self._faces: list[Face] = []
        self._since_detection = self.detect_every  # the first frame is always a key frame
        self._check_next = False

    def faces(self, rgb: np.ndarray) -> tuple[list[Face], bool]:
        """The faces of this frame, and whether a full detection found them (else: re-fitted)."""
        if self._since_detection + 1 >= self.detect_every or self._check_next:
            return self._detect(rgb), True
        if not self._faces:  # nothing to follow; a face that enters waits for the next key frame
            self._since_detection += 1
            return [], False
        boxes = np.array([face.box for face in self._faces], np.float64)
        refitted = self.detector.refit(rgb, boxes)
        if any(face is None for face in refitted):
            return self._detect(rgb), True
        faces = _distinct([face for face in refitted if face is not None])
        self._check_next = any(face.score < self.detector.threshold + UNCERTAIN_MARGIN for face in faces)
        self._since_detection += 1
        self._faces = faces
        return faces, False

    def _detect(self, rgb: np.ndarray) -> list[Face]:
        self._faces = self.detector.detect(rgb)
        self._since_detection = 0
        self._check_next = False
        return self._faces


def _distinct(faces: list[Face]) -> list[Face]:
    """Left-to-right like a detection, and two windows that locked onto one face give it once."""
    from affectlens.inference.tracking import iou_matrix

    faces = sorted(faces, key=lambda face: -face.score)
    kept: list[Face] = []
    for face in faces:
        if not kept or iou_matrix(np.array([face.box]), np.array([k.box for k in kept])).max() < DUPLICATE_IOU:
            kept.append(face)
    return sorted(kept, key=lambda face: (face.box[0], face.box[1]))
