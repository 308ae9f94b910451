"""``POST /v1/predict/video``: every face of every analysed frame of a short video."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from affectlens.serve.engine import Engine
from affectlens.serve.limits import Deadline, ServeLimits
from affectlens.serve.routes.common import (
    ERRORS,
    AnnotateQuery,
    EveryQuery,
    ModelQuery,
    SmoothingQuery,
    UploadField,
    read_upload,
)
from affectlens.serve.schemas import VideoAnswer
from affectlens.serve.uploads import require_kind
from affectlens.serve.video_job import VideoAnalysis, analyse_video


def video_router(engine: Engine, limits: ServeLimits, temp_root: str | Path | None = None) -> APIRouter:
    """``temp_root``: where the per-request temporary folders go (None: the system's temporary folder)."""
    router = APIRouter()
    temp = str(temp_root) if temp_root is not None else None

    @router.post("/v1/predict/video", summary="Every face of every analysed frame of a short video",
                 responses={200: {"model": VideoAnswer, "content": {"text/csv": {}, "application/x-ndjson": {}}},
                            **ERRORS})
    async def predict_video(
        file: UploadField,
        model: ModelQuery = None,
        every: EveryQuery = 1,
        smoothing: SmoothingQuery = None,
        annotate: AnnotateQuery = False,
        output_format: Annotated[Literal["json", "csv", "jsonl"], Query(
            alias="format", description="json: the answer below; csv or jsonl: just the CLI's records file.")] = "json",
    ) -> Response:
        """The timeline (one CLI record per analysed frame) and the CLI's CSV, from the same frame loop.

        annotate=true adds the video and plot as data URLs, in one answer at the end: for progress,
        cancelling and separate files use the video jobs (POST /v1/video-jobs) instead.
        """
        deadline = Deadline(limits.timeout_s)
        data, name = await read_upload(file, limits)
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
        return JSONResponse(_answer(analysis, name, model or engine.default, every), headers=headers)

    return router


def _answer(analysis: VideoAnalysis, name: str, model: str, every: int) -> dict:
    """The ``format=json`` answer (:class:`~affectlens.serve.schemas.VideoAnswer`)."""
    return {
        "file": name, "model": model, "fps": analysis.fps, "width": analysis.width,
        "height": analysis.height, "every": every, "frames_analysed": len(analysis.records),
        "tracks": analysis.tracks, "frames": analysis.records, "csv": analysis.csv,
        "annotated_video": _data_url("video/mp4", analysis.annotated_mp4),
        "timeline_png": _data_url("image/png", analysis.timeline_png),
    }


def _data_url(media_type: str, data: bytes | None) -> str | None:
    return None if data is None else f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"
