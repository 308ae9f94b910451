"""Inference: the Recognizer (detect, align, classify, track), backends, video I/O and outputs.

Submodules import torch/onnxruntime/OpenCV; names here load lazily so that importing the package
stays cheap.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "Recognizer": "affectlens.inference.recognizer",
    "FaceResult": "affectlens.inference.types",
    "ImageResult": "affectlens.inference.types",
    "FrameResult": "affectlens.inference.types",
    "FaceTracker": "affectlens.inference.tracking",
    "OnnxClassifier": "affectlens.models.prediction.backends",
    "TorchClassifier": "affectlens.models.prediction.backends",
    "create_classifier": "affectlens.models.prediction.backends",
    "export_onnx": "affectlens.inference.export",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'affectlens.inference' has no attribute '{name}'")
