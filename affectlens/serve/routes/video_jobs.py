"""``/v1/video-jobs``: a video analysed in the background with progress, cancel and separate files.

``POST`` creates a job from an upload (202, with its status and ``Location``), ``GET /{id}`` tells
its progress and time left, ``DELETE /{id}`` cancels and forgets it, ``GET /{id}/result`` is the
timeline with links to the annotated video, the plot and the record files, each fetched on its
own (the video with range support, so a player can seek). See :mod:`affectlens.serve.jobs`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from affectlens.serve.engine import Engine
from affectlens.serve.errors import ServeError
from affectlens.serve.jobs import JobStore, VideoJob
from affectlens.serve.limits import Deadline, ServeLimits
from affectlens.serve.ranges import ranged_response
from affectlens.serve.routes.common import (
    ERRORS,
    AnnotateQuery,
    EveryQuery,
    ModelQuery,
    SmoothingQuery,
    UploadField,
    read_upload,
)
from affectlens.serve.schemas import ErrorBody, VideoJobResult, VideoJobStatus
from affectlens.serve.uploads import require_kind
from affectlens.serve.video_job import VideoProgress, analyse_video

PREFIX = "/v1/video-jobs"
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "No such job (or expired)."}}
_NOT_READY: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "The job has not finished, or it failed or was cancelled."}}


def video_jobs_router(engine: Engine, limits: ServeLimits, jobs: JobStore,
                      temp_root: str | Path | None = None) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["video jobs"])
    temp = str(temp_root) if temp_root is not None else None

    @router.post("", status_code=202, summary="Start analysing a video in the background",
                 responses={202: {"model": VideoJobStatus}, **ERRORS})
    async def create_job(file: UploadField, model: ModelQuery = None, every: EveryQuery = 1,
                         smoothing: SmoothingQuery = None, annotate: AnnotateQuery = False) -> JSONResponse:
        """Checked like POST /v1/predict/video (type, model, size), then analysed while you poll."""
        deadline = Deadline(limits.timeout_s)
        data, name = await read_upload(file, limits)
        kind = require_kind(data, name, "video")
        recognizer = engine.get(model)

        def work(progress: VideoProgress):
            with engine.slot(deadline):
                return analyse_video(recognizer, data, name, kind[1], every=every, smoothing=smoothing,
                                     annotate=annotate, max_pixels=limits.max_pixels,
                                     max_frames=limits.max_video_frames, deadline=deadline, temp_root=temp,
                                     progress=progress)

        job = jobs.create(name, model or engine.default, every, annotate, work)
        return JSONResponse(job.status(), status_code=202, headers={"Location": f"{PREFIX}/{job.id}"})

    @router.get("/{job_id}", response_model=VideoJobStatus, summary="A video job's progress and time left",
                responses=_NOT_FOUND)
    async def job_status(job_id: str) -> dict[str, Any]:
        return jobs.get(job_id).status()

    @router.delete("/{job_id}", response_model=VideoJobStatus, summary="Cancel a video job and free its result",
                   responses=_NOT_FOUND)
    async def delete_job(job_id: str) -> dict[str, Any]:
        return jobs.delete(job_id).status()

    @router.get("/{job_id}/result", response_model=VideoJobResult, summary="A finished job's timeline and links",
                responses={**_NOT_FOUND, **_NOT_READY})
    async def job_result(job_id: str) -> dict[str, Any]:
        job = _finished(jobs, job_id)
        analysis = job.analysis
        base = f"{PREFIX}/{job.id}"
        return {
            "file": job.file, "model": job.model, "fps": analysis.fps, "width": analysis.width,
            "height": analysis.height, "every": job.every, "frames_analysed": len(analysis.records),
            "tracks": analysis.tracks, "frames": analysis.records,
            "csv_url": f"{base}/predictions.csv", "jsonl_url": f"{base}/predictions.jsonl",
            "annotated_video_url": f"{base}/annotated.mp4" if analysis.annotated_mp4 else None,
            "timeline_url": f"{base}/timeline.png" if analysis.timeline_png else None,
        }

    @router.get("/{job_id}/annotated.mp4", summary="The annotated H.264 video", response_class=Response,
                responses={200: {"content": {"video/mp4": {}}}, **_NOT_FOUND, **_NOT_READY})
    async def job_video(job_id: str, request: Request) -> Response:
        job = _finished(jobs, job_id)
        if job.analysis.annotated_mp4 is None:
            raise ServeError(404, f"{job.file}: no annotated video (annotate=false, or no frame was read)")
        return ranged_response(job.analysis.annotated_mp4, "video/mp4", request.headers.get("range"))

    @router.get("/{job_id}/timeline.png", summary="The timeline plot", response_class=Response,
                responses={200: {"content": {"image/png": {}}}, **_NOT_FOUND, **_NOT_READY})
    async def job_timeline(job_id: str) -> Response:
        job = _finished(jobs, job_id)
        if job.analysis.timeline_png is None:
            raise ServeError(404, f"{job.file}: no timeline (annotate=false, or no face was found)")
        return Response(job.analysis.timeline_png, media_type="image/png")

    @router.get("/{job_id}/predictions.csv", summary="The CLI's predictions.csv", response_class=Response,
                responses={200: {"content": {"text/csv": {}}}, **_NOT_FOUND, **_NOT_READY})
    async def job_csv(job_id: str) -> Response:
        job = _finished(jobs, job_id)
        return Response(job.analysis.csv, media_type="text/csv", headers=_attachment(job, "csv"))

    @router.get("/{job_id}/predictions.jsonl", summary="The CLI's predictions.jsonl", response_class=Response,
                responses={200: {"content": {"application/x-ndjson": {}}}, **_NOT_FOUND, **_NOT_READY})
    async def job_jsonl(job_id: str) -> Response:
        job = _finished(jobs, job_id)
        return Response(job.analysis.jsonl, media_type="application/x-ndjson", headers=_attachment(job, "jsonl"))

    return router


def _finished(jobs: JobStore, job_id: str) -> VideoJob:
    """The job when it is done; its own error when it failed, 409 while it runs or once cancelled."""
    job = jobs.get(job_id)
    if job.state == "failed":
        raise ServeError(job.error_status or 422, job.error or "the analysis failed")
    if job.state != "done" or job.analysis is None:
        raise ServeError(409, f"{job.file}: the job is {job.status()['state']}, not done")
    return job


def _attachment(job: VideoJob, extension: str) -> dict[str, str]:
    """Download under the video's own name: an ASCII fallback plus the UTF-8 name (RFC 6266), since a
    header must stay Latin-1 and ``display_name`` keeps letters of any script."""
    name = f"{Path(job.file).stem or 'video'}.predictions.{extension}"
    fallback = name.encode("ascii", "replace").decode("ascii").replace("?", "_")
    return {"Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"}
