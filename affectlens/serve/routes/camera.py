"""The ``/v1/camera`` WebSocket (the session itself is :func:`affectlens.serve.live.camera_session`)."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from affectlens.serve.engine import Engine
from affectlens.serve.limits import ServeLimits
from affectlens.serve.live import camera_session


def camera_router(engine: Engine, limits: ServeLimits) -> APIRouter:
    router = APIRouter()

    @router.websocket("/v1/camera")
    async def camera(websocket: WebSocket, model: str | None = None) -> None:
        """Live camera: binary JPEG/PNG frames in, one JSON answer per analysed frame out."""
        await camera_session(websocket, engine, limits, model)

    return router
