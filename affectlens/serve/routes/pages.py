"""The page at ``/`` with its static files, ``/health`` and ``/v1/models``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from affectlens import __version__
from affectlens.serve.engine import Engine
from affectlens.serve.limits import ServeLimits
from affectlens.serve.schemas import Health, ModelList

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"


def mount_static(app: FastAPI) -> None:
    """Serve the page's scripts and styles under ``/static``."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def pages_router(engine: Engine, limits: ServeLimits) -> APIRouter:
    router = APIRouter()

    @router.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @router.get("/health", response_model=Health, summary="Liveness and what this process serves")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "models": engine.names, "concurrency": engine.concurrency,
                "limits": {"max_upload_mb": limits.max_upload_mb, "max_pixels": limits.max_pixels,
                           "max_video_frames": limits.max_video_frames, "timeout_s": limits.timeout_s}}

    @router.get("/v1/models", response_model=ModelList, summary="The models this server offers")
    async def models() -> dict[str, Any]:
        return {"default": engine.default, "models": engine.describe()}

    return router
