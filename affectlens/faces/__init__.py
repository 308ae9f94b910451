"""Face detection (CenterFace by default, Haar fallback) and 5-point alignment."""

from affectlens.faces.alignment import (
    CANONICAL_5PT,
    TEMPLATES,
    align_face,
    align_faces,
    crop_face,
    estimate_transform,
)
from affectlens.faces.detection import FaceDetector, create_detector, list_detectors
from affectlens.faces.types import Face

__all__ = [
    "CANONICAL_5PT",
    "TEMPLATES",
    "Face",
    "FaceDetector",
    "align_face",
    "align_faces",
    "create_detector",
    "crop_face",
    "estimate_transform",
    "list_detectors",
]
