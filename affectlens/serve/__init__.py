"""The web app and REST API (``affectlens serve``); needs the ``serve`` extra (FastAPI, uvicorn).

Names load lazily so that importing the package does not import FastAPI or the models.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServeLimits", "create_app", "run_server"]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "run_server"):
        from affectlens.serve import app

        return getattr(app, name)
    if name == "ServeLimits":
        from affectlens.serve.limits import ServeLimits

        return ServeLimits
    raise AttributeError(f"module 'affectlens.serve' has no attribute '{name}'")
