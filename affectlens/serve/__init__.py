"""The web app and REST API (``affectlens serve``); needs the ``serve`` extra (FastAPI, uvicorn).

Names load lazily so that importing the package does not import FastAPI or the models.
"""

from __future__ import annotations

from affectlens.utils.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__, {"ServeLimits": ".limits", "create_app": ".app", "run_server": ".app"}
)
