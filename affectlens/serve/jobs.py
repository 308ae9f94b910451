"""Video jobs: a video analysed in the background, polled for progress, cancelled, then fetched.

One ``POST /v1/predict/video`` holds its connection open for the whole analysis and answers with
everything at once (the annotated video as a data URL: megabytes of base64). A page cannot show
progress or stop it. A job splits that into steps a client can follow: create it (the upload is
analysed in a worker thread holding an inference slot), poll its progress and time left, cancel
it (the frame loop stops after the current frame), and fetch the result and each file separately.

Jobs live in memory only, in the process that created them: a finished job is kept for
``keep_s`` seconds (or until deleted) so its files can be fetched, and at most ``max_jobs`` jobs
exist at once, so a client that never cleans up cannot fill the memory. Expired jobs are removed
whenever the store is touched; no timer thread is needed.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from affectlens.serve.errors import ServeError
from affectlens.serve.video_job import VideoAnalysis, VideoCancelled, VideoProgress

log = logging.getLogger(__name__)

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"done", "failed", "cancelled"})


@dataclass
class VideoJob:
    """One video job: what was asked, where it stands, and its result once done."""

    id: str
    file: str
    model: str
    every: int
    annotate: bool
    created: float = field(default_factory=time.monotonic)
    state: JobState = "queued"
    progress: VideoProgress = field(default_factory=VideoProgress)
    finished: float | None = None
    error: str | None = None
    error_status: int | None = None
    analysis: VideoAnalysis | None = None

    def status(self) -> dict[str, Any]:
        """The ``GET /v1/video-jobs/{id}`` answer (:class:`~affectlens.serve.schemas.VideoJobStatus`)."""
        counts = self.progress.snapshot()
        end = self.finished if self.finished is not None else time.monotonic()
        if self.state == "done":
            counts["progress"], counts["eta_s"] = 1.0, 0.0
        elif self.state in FINISHED:
            counts["eta_s"] = None
        state = self.state
        if state == "running" and counts["frames_total"] is None:
            state = "queued"  # its thread waits for an inference slot
        return {"id": self.id, "file": self.file, "model": self.model, "every": self.every, "state": state,
                **counts, "elapsed_s": round(end - self.created, 2), "error": self.error}


class JobStore:
    """The jobs of one server process (see the module docstring)."""

    def __init__(self, max_jobs: int = 16, keep_s: float = 600.0) -> None:
        self.max_jobs = int(max_jobs)
        self.keep_s = float(keep_s)
        self._jobs: dict[str, VideoJob] = {}
        self._lock = threading.Lock()

    def create(self, file: str, model: str, every: int, annotate: bool,
               work: Callable[[VideoProgress], VideoAnalysis]) -> VideoJob:
        """Register a job and start ``work(progress)`` in a thread of its own; 503 when the store is full."""
        with self._lock:
            self._expire()
            if len(self._jobs) >= self.max_jobs:
                raise ServeError(503, f"too many video jobs on this server ({self.max_jobs}); "
                                      "wait for one to finish or delete a finished one",
                                 headers={"Retry-After": "5"})
            job = VideoJob(id=secrets.token_urlsafe(12), file=file, model=model, every=every, annotate=annotate)
            self._jobs[job.id] = job
        threading.Thread(target=self._run, args=(job, work), name=f"video-job-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: str) -> VideoJob:
        """The job, or 404 (never created, deleted, or expired ``keep_s`` after it finished)."""
        with self._lock:
            self._expire()
            job = self._jobs.get(job_id)
        if job is None:
            raise ServeError(404, f"no video job '{job_id[:40]}' (finished jobs are kept {self.keep_s:g} s)")
        return job

    def delete(self, job_id: str) -> VideoJob:
        """Cancel a job that is still working, and forget it: its result and files are freed at once.

        A running job stops after its current frame; its thread still finishes the cleanup of its
        temporary folder, but nothing it produces is kept.
        """
        job = self.get(job_id)
        job.progress.cancel()
        with self._lock:
            if job.state not in FINISHED:
                job.state, job.finished = "cancelled", time.monotonic()
            self._jobs.pop(job_id, None)
        job.analysis = None
        return job

    def _run(self, job: VideoJob, work: Callable[[VideoProgress], VideoAnalysis]) -> None:
        with self._lock:
            if job.state in FINISHED:  # deleted before it started
                return
            job.state = "running"
        try:
            analysis = work(job.progress)
        except VideoCancelled:
            self._finish(job, "cancelled")
        except ServeError as exc:
            self._finish(job, "failed", error=exc.message, status=exc.status)
        except Exception as exc:  # a bug: keep the server up, say little, log the rest
            log.error("video job %s failed", job.id, exc_info=exc)
            self._finish(job, "failed", error="internal server error (a bug: the server log has the details)",
                         status=500)
        else:
            self._finish(job, "done", analysis=analysis)

    def _finish(self, job: VideoJob, state: JobState, *, analysis: VideoAnalysis | None = None,
                error: str | None = None, status: int | None = None) -> None:
        with self._lock:
            if job.state in FINISHED:  # deleted while it ran: keep nothing
                return
            if job.progress.cancelled:
                state, analysis, error, status = "cancelled", None, None, None
            job.analysis, job.error, job.error_status = analysis, error, status
            job.state, job.finished = state, time.monotonic()

    def _expire(self) -> None:
        """Drop jobs finished more than ``keep_s`` ago (called with the lock held)."""
        now = time.monotonic()
        for job_id in [j.id for j in self._jobs.values() if j.finished is not None and now - j.finished > self.keep_s]:
            del self._jobs[job_id]
