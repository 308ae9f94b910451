"""The web app: the page at ``/``, the REST API under ``/v1``, and the camera WebSocket.

``create_app`` loads the models and the face detector once (:class:`Engine`) and builds a FastAPI
app around them; ``run_server`` runs it with uvicorn. With several workers each process builds
its own app (uvicorn's factory mode, the settings passed in an environment variable), since
ONNX Runtime sessions cannot cross a fork.

Request handling keeps the event loop free: uploads are read asynchronously, the CPU work runs
in a worker thread holding one of the engine's inference slots, and every answer, error or not,
is JSON from :mod:`affectlens.serve.errors`.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from affectlens import __version__
from affectlens.errors import AffectlensError
from affectlens.faces import FaceDetector
from affectlens.inference.options import DEFAULTS
from affectlens.serve.body_limit import MULTIPART_OVERHEAD, BodyLimitMiddleware
from affectlens.serve.docs import offline_docs_app
from affectlens.serve.engine import Engine
from affectlens.serve.errors import install_error_handlers
from affectlens.serve.jobs import JobStore
from affectlens.serve.limits import ServeLimits
from affectlens.serve.routes.camera import camera_router
from affectlens.serve.routes.pages import STATIC_DIR as STATIC_DIR  # where it was before the routes moved
from affectlens.serve.routes.pages import mount_static, pages_router
from affectlens.serve.routes.photo import photo_router
from affectlens.serve.routes.video import video_router
from affectlens.serve.routes.video_jobs import video_jobs_router

log = logging.getLogger(__name__)

#: how ``run_server`` hands its settings to worker processes
SETTINGS_ENV = "AFFECTLENS_SERVE_SETTINGS"


def create_app(
    model: str | Path = DEFAULTS.model,
    detector: str | FaceDetector = DEFAULTS.detector,
    limits: ServeLimits | None = None,
    *,
    extra_models: Sequence[str] | None = None,
    recognizer_options: dict[str, Any] | None = None,
    temp_root: str | Path | None = None,
) -> FastAPI:
    """Load the models once and return the app.

    ``extra_models``: more model names offered beside ``model`` (None: ``default`` and ``fast``
    when installed). ``recognizer_options``: keyword arguments for every
    :class:`~affectlens.Recognizer` (backend, threshold, max_side, ...). ``temp_root``: where the
    per-request temporary folders go (default: the system's temporary folder).
    """
    limits = limits or ServeLimits()
    engine = Engine(model, detector, extra_models, limits.concurrency, recognizer_options)
    app = offline_docs_app(
        title="affectlens",
        version=__version__,
        description="Facial emotion recognition: every face in a photo, a video or a live camera, with its emotion.",
    )
    jobs = JobStore()
    app.state.engine = engine
    app.state.jobs = jobs
    app.state.limits = limits
    app.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_upload_bytes)
    install_error_handlers(app)
    mount_static(app)
    app.include_router(pages_router(engine, limits))
    app.include_router(photo_router(engine, limits))
    app.include_router(video_router(engine, limits, temp_root))
    app.include_router(video_jobs_router(engine, limits, jobs, temp_root))
    app.include_router(camera_router(engine, limits))
    return app


def app_from_environment() -> FastAPI:
    """uvicorn factory for worker processes: the settings ``run_server`` put in ``SETTINGS_ENV``."""
    text = os.environ.get(SETTINGS_ENV)
    if not text:
        raise AffectlensError(f"{SETTINGS_ENV} is not set; start the server with `affectlens serve`")
    settings = json.loads(text)
    return create_app(settings["model"], settings["detector"], ServeLimits(**settings["limits"]),
                      extra_models=settings["extra_models"], recognizer_options=settings["recognizer_options"])


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_server(
    host: str = "127.0.0.1",
    port: int = 8000,
    model: str = DEFAULTS.model,
    workers: int = 1,
    *,
    detector: str = DEFAULTS.detector,
    limits: ServeLimits | None = None,
    extra_models: Sequence[str] | None = None,
    recognizer_options: dict[str, Any] | None = None,
    log_level: str = "info",
    on_listening: Callable[[], None] | None = None,
) -> None:
    """Serve the app with uvicorn until interrupted; models load before the port opens.

    ``on_listening`` is called once the address is known to be free and the models are loaded,
    just before uvicorn starts (the command prints its "serving on" line there, never before a
    failure).

    The default host is loopback: the API has no authentication, so exposing it on a network
    (``host="0.0.0.0"``) is a deliberate choice, and it is logged as one.
    """
    import uvicorn

    if not 0 <= int(port) <= 65535:
        raise AffectlensError(f"--port must be in 0..65535, got {port}")
    if int(workers) < 1:
        raise AffectlensError(f"--workers must be >= 1, got {workers}")
    limits = limits or ServeLimits()
    check_can_listen(host, int(port))
    if not is_loopback(host):
        log.warning("serving on %s: reachable from the network, with no authentication", host)
    common = {"host": host, "port": int(port), "log_level": log_level,
              "ws_max_size": limits.max_upload_bytes + MULTIPART_OVERHEAD}
    if int(workers) == 1:
        app = create_app(model, detector, limits, extra_models=extra_models, recognizer_options=recognizer_options)
        if on_listening is not None:
            on_listening()
        _run_uvicorn(uvicorn, app, host, int(port), common)
        return
    # Fail fast on a bad model in this process, before workers start and each fail on their own.
    create_app(model, detector, limits, extra_models=extra_models, recognizer_options=recognizer_options)
    os.environ[SETTINGS_ENV] = json.dumps({
        "model": str(model), "detector": detector, "limits": json.loads(limits.to_json()),
        "extra_models": None if extra_models is None else list(extra_models),
        "recognizer_options": recognizer_options or {},
    })
    if on_listening is not None:
        on_listening()
    _run_uvicorn(uvicorn, "affectlens.serve.app:app_from_environment", host, int(port), common,
                 factory=True, workers=int(workers))


def check_can_listen(host: str, port: int) -> None:
    """Bind ``host:port`` once and let go, so a busy port or a bad address is one line before models load."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise AffectlensError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            busy = " (another server is using it?)" if exc.errno == errno.EADDRINUSE else ""
            raise AffectlensError(f"--port {port}: cannot listen on {host}:{port}: {exc.strerror}{busy}") from None


def _run_uvicorn(uvicorn, app: Any, host: str, port: int, common: dict[str, Any], **options: Any) -> None:
    """uvicorn.run, with its startup failure (exit 3: the port was taken since the check) as one line."""
    try:
        uvicorn.run(app, **common, **options)
    except SystemExit as exc:
        if exc.code == 3:
            raise AffectlensError(f"--port {port}: the server could not start on {host}:{port} (port taken?)") from None
        raise
