"""Inference: the Recognizer (detect, align, classify, track), backends, video I/O and outputs.

Submodules import torch/onnxruntime/OpenCV; names here load lazily so that importing the package
stays cheap.
"""

from __future__ import annotations

from affectlens.utils.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "Recognizer": ".recognizer",
        "FaceResult": ".types",
        "ImageResult": ".types",
        "FrameResult": ".types",
        "FaceTracker": ".tracking",
        "OnnxClassifier": "affectlens.runtime.classifiers",
        "TorchClassifier": "affectlens.models.prediction.torch_backend",
        "create_classifier": "affectlens.runtime.factory",
        "export_onnx": ".export",
    },
)
