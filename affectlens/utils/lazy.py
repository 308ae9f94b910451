"""Lazy package exports (PEP 562): a package names what it offers without importing it yet.

Why: the prediction install has no torch, and even where torch is installed, ``import affectlens``
or reading a model card must not pay for torch, ONNX Runtime or FastAPI. Each package maps its
public names to the submodule that defines them; the submodule is imported on first access.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[list[str], Callable[[str], Any]]:
    """``(__all__, __getattr__)`` for ``package``; ``exports`` maps a name to its module.

    A module name starting with "." is relative to ``package``. Use it as
    ``__all__, __getattr__ = lazy_exports(__name__, {"Name": ".module", ...})``.
    """
    table = dict(exports)

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module-level hook PEP 562 calls
        if name not in table:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        return getattr(importlib.import_module(table[name], package), name)

    return sorted(table), __getattr__
