"""Where the runtime meets PyTorch: the torch half of prediction, found by its module name.

Why by name: the runtime (this package) must import and predict with torch absent, so it never
imports ``affectlens.models`` (the torch world) at all; the few paths that need torch (the torch
backend, exporting a ``.safetensors`` model to ONNX in memory, a CNN-GRU without its graphs) ask
for :data:`TORCH_BACKEND` here, and get a one-line error naming what they needed when torch is
not installed.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from affectlens.errors import AffectlensError

#: the module that holds the torch backend (``TorchClassifier``, in-memory ONNX export of weights)
TORCH_BACKEND = "affectlens.models.prediction.torch_backend"


def torch_available() -> bool:
    """Whether PyTorch can be imported (without importing it)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # sys.modules["torch"] = None blocks it on purpose
        return False


def torch_backend(needed_for: str) -> ModuleType:
    """The torch backend module; ``needed_for`` says what asked, for the error when torch is missing."""
    if not torch_available():
        raise AffectlensError(f"{needed_for} needs PyTorch, which is not installed: "
                              "pip install 'affectlens[train]' (or use a model shipped with its .onnx graph)")
    return importlib.import_module(TORCH_BACKEND)
