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

import base64
import errno
import ipaddress
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import FastAPI, File, Query, UploadFile, WebSocket
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from affectlens import __version__
from affectlens.errors import AffectlensError
from affectlens.faces import FaceDetector
from affectlens.inference.options import DEFAULTS
from affectlens.serve.body_limit import MULTIPART_OVERHEAD, BodyLimitMiddleware
from affectlens.serve.engine import Engine
from affectlens.serve.errors import ServeError, install_error_handlers
from affectlens.serve.limits import Deadline, ServeLimits
from affectlens.serve.live import camera_session
from affectlens.serve.schemas import ErrorBody, Health, ImageRecord, ModelList, VideoAnswer
from affectlens.serve.uploads import decode_image, display_name, require_kind
from affectlens.serve.video_job import analyse_video

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: how ``run_server`` hands its settings to worker processes
SETTINGS_ENV = "AFFECTLENS_SERVE_SETTINGS"

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        413: "Upload, image or video over the server's limits.",
        415: "Not an image (or not a video) by its content.",
        422: "Undecodable file, unknown model or invalid parameter.",
        503: "No inference slot became free within the time limit.",
        504: "The work ran past the per-request time limit.",
    }.items()
}

UploadField = Annotated[UploadFile, File(description="The file; its type is read from its content, not its name.")]
ModelQuery = Annotated[str | None, Query(description="A name from GET /v1/models (default: the server's model).")]


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
    temp = str(temp_root) if temp_root is not None else None
    app = FastAPI(
        title="affectlens",
        version=__version__,
        description="Facial emotion recognition: every face in a photo, a video or a live camera, with its emotion.",
    )
    app.state.engine = engine
    app.state.limits = limits
    app.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_upload_bytes)
    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    async def read_upload(file: UploadFile) -> tuple[bytes, str]:
        data = await file.read()
        name = display_name(file.filename, "upload")
        if len(data) > limits.max_upload_bytes:
            raise ServeError(413, f"{name}: upload larger than the {limits.max_upload_mb:g} MB limit")
        if not data:
            raise ServeError(422, f"{name}: the file is empty")
        return data, name

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/health", response_model=Health, summary="Liveness and what this process serves")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "models": engine.names, "concurrency": engine.concurrency,
                "limits": {"max_upload_mb": limits.max_upload_mb, "max_pixels": limits.max_pixels,
                           "max_video_frames": limits.max_video_frames, "timeout_s": limits.timeout_s}}

    @app.get("/v1/models", response_model=ModelList, summary="The models this server offers")
    async def models() -> dict[str, Any]:
        return {"default": engine.default, "models": engine.describe()}

    @app.post("/v1/predict", summary="Every face of one photo with its emotion",
              responses={200: {"model": ImageRecord}, **_ERRORS})
    async def predict(file: UploadField, model: ModelQuery = None) -> JSONResponse:
        """The answer is the CLI's JSON Lines record for the photo (``file`` is the upload's name)."""
        deadline = Deadline(limits.timeout_s)
        data, name = await read_upload(file)
        require_kind(data, name, "image")
        recognizer = engine.get(model)

        def work() -> tuple[dict[str, Any], list[str]]:
            with engine.slot(deadline):
                decoded = decode_image(data, name, limits.max_pixels)
                result = recognizer.predict(decoded.pixels)
            result.source = name
            return result.to_dict(), decoded.notices

        record, notices = await anyio.to_thread.run_sync(work)
        headers = {"X-Affectlens-Model": model or engine.default}
        if notices:
            headers["X-Affectlens-Notice"] = "; ".join(notices)
        return JSONResponse(record, headers=headers)

    @app.post("/v1/predict/video", summary="Every face of every analysed frame of a short video",
              responses={200: {"model": VideoAnswer, "content": {"text/csv": {}, "application/x-ndjson": {}}},
                         **_ERRORS})
    async def predict_video(
        file: UploadField,
        model: ModelQuery = None,
        every: Annotated[int, Query(ge=1, le=1000, description="Analyse every n-th frame.")] = 1,
        smoothing: Annotated[float | None, Query(ge=0.0, lt=1.0, description="Per-face moving average "
                                                 "weight of the past (default: the model's).")] = None,
        annotate: Annotated[bool, Query(description="Also return the annotated H.264 video and the "
                                                     "timeline plot (as data URLs).")] = False,
        output_format: Annotated[Literal["json", "csv", "jsonl"], Query(
            alias="format", description="json: the answer below; csv or jsonl: just the CLI's records file.")] = "json",
    ) -> Response:
        """The timeline (one CLI record per analysed frame) and the CLI's CSV, from the same frame loop."""
        deadline = Deadline(limits.timeout_s)
        data, name = await read_upload(file)
        kind = require_kind(data, name, "video")
        recognizer = engine.get(model)

        def work():
            with engine.slot(deadline):
                return analyse_video(recognizer, data, name, kind[1], every=every, smoothing=smoothing,
                                     annotate=annotate and output_format == "json", max_pixels=limits.max_pixels,
                                     max_frames=limits.max_video_frames, deadline=deadline, temp_root=temp)

        analysis = await anyio.to_thread.run_sync(work)
        headers = {"X-Affectlens-Model": model or engine.default}
        if output_format == "csv":
            return Response(analysis.csv, media_type="text/csv", headers=headers)
        if output_format == "jsonl":
            return Response(analysis.jsonl, media_type="application/x-ndjson", headers=headers)
        answer = {
            "file": name, "model": model or engine.default, "fps": analysis.fps, "width": analysis.width,
            "height": analysis.height, "every": every, "frames_analysed": len(analysis.records),
            "tracks": analysis.tracks, "frames": analysis.records, "csv": analysis.csv,
            "annotated_video": _data_url("video/mp4", analysis.annotated_mp4),
            "timeline_png": _data_url("image/png", analysis.timeline_png),
        }
        return JSONResponse(answer, headers=headers)

    @app.websocket("/v1/camera")
    async def camera(websocket: WebSocket, model: str | None = None) -> None:
        """Live camera: binary JPEG/PNG frames in, one JSON answer per analysed frame out."""
        await camera_session(websocket, engine, limits, model)

    return app


def _data_url(media_type: str, data: bytes | None) -> str | None:
    return None if data is None else f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


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
