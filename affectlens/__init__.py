"""affectlens: facial emotion recognition for photos, videos and cameras, and a toolkit to train
and evaluate emotion models on your own data."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["Recognizer", "__version__"]


def __getattr__(name: str) -> Any:
    """Lazy ``Recognizer``: ``import affectlens`` must not pull in torch, OpenCV and ONNX Runtime."""
    if name == "Recognizer":
        from affectlens.inference.recognizer import Recognizer

        return Recognizer
    raise AttributeError(f"module 'affectlens' has no attribute '{name}'")
