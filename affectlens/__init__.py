"""affectlens: facial emotion recognition for photos, videos and cameras, and a toolkit to train
and evaluate emotion models on your own data."""

from __future__ import annotations

from affectlens.utils.lazy import lazy_exports

__version__ = "0.1.0"

# Lazy ``Recognizer``: ``import affectlens`` must not pull in torch, OpenCV and ONNX Runtime.
__all__, __getattr__ = lazy_exports(__name__, {"Recognizer": ".inference.recognizer"})
__all__ += ["__version__"]
