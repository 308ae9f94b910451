"""One uploaded video analysed inside its own temporary folder, which is always removed.

The same frame loop, record writers, timeline plot and H.264 writer as ``affectlens predict``
do the work (:func:`~affectlens.inference.camera.run_loop`), so the API's records are the CLI's
records. Everything a request brings or produces lives in a ``TemporaryDirectory`` of its own
(the upload in ``input/`` under its name made harmless, the outputs in ``output/``) and is read
back into memory before the folder is deleted: nothing a request writes outlives it, whether it
succeeds, fails or runs out of time.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from affectlens.errors import AffectlensError
from affectlens.inference.camera import run_loop
from affectlens.inference.outputs import CsvWriter, JsonlWriter
from affectlens.inference.recognizer import Recognizer
from affectlens.inference.types import FrameResult
from affectlens.inference.video import VideoReader
from affectlens.serve.errors import ServeError
from affectlens.serve.limits import Deadline

TEMP_PREFIX = "affectlens-serve-"


class _OutOfTime(Exception):
    """Raised from the per-frame sink to stop the frame loop at the deadline."""


class VideoCancelled(Exception):
    """Raised out of :func:`analyse_video` when its :class:`VideoProgress` was cancelled."""


class VideoProgress:
    """How far one analysis is, and a way to stop it: written by the frame loop, read by a poller.

    The frame loop runs in a worker thread while the status endpoint reads from the event loop, so
    the counters sit behind a lock; cancelling sets an event the loop checks after every frame,
    which stops a long video within one frame's time instead of at the end.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self.frames_done = 0
        self.frames_total: int | None = None
        self.started: float | None = None  # time.monotonic() when the first frame was read

    def start(self, frames_total: int) -> None:
        with self._lock:
            self.frames_total = int(frames_total)
            self.started = time.monotonic()

    def frame(self) -> None:
        with self._lock:
            self.frames_done += 1

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def snapshot(self) -> dict[str, float | int | None]:
        """``frames_done``, ``frames_total``, ``progress`` (0..1) and ``eta_s`` (None until it can be told)."""
        with self._lock:
            done, total, started = self.frames_done, self.frames_total, self.started
        progress = min(1.0, done / total) if total else None
        eta = None
        if started is not None and total and done:
            rate = done / max(time.monotonic() - started, 1e-6)
            eta = round(max(0, total - done) / rate, 1)
        return {"frames_done": done, "frames_total": total,
                "progress": None if progress is None else round(progress, 4), "eta_s": eta}


@dataclass
class VideoAnalysis:
    """Everything one video request returns; bytes, not paths, since the folder is gone."""

    name: str
    fps: float
    width: int
    height: int
    every: int
    records: list[dict]
    jsonl: str
    csv: str
    annotated_mp4: bytes | None
    timeline_png: bytes | None

    @property
    def tracks(self) -> list[int]:
        return sorted({face["face_id"] for record in self.records for face in record["faces"]})


def analyse_video(
    recognizer: Recognizer,
    data: bytes,
    name: str,
    extension: str,
    *,
    every: int,
    smoothing: float | None,
    annotate: bool,
    max_pixels: int,
    max_frames: int,
    deadline: Deadline,
    temp_root: str | None = None,
    progress: VideoProgress | None = None,
) -> VideoAnalysis:
    """Analyse ``data`` (already sniffed as a video of format ``extension``); see the module docstring.

    ``progress``: counted frame by frame, and checked for a cancel after each frame (then
    :class:`VideoCancelled` is raised and the folder removed as for any other ending).
    """
    with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX, dir=temp_root) as folder_name:
        folder = Path(folder_name)
        # ``name`` is already reduced to a plain label (display_name): safe as a file name in our folder,
        # and it titles the timeline plot the way the user knows the clip.
        source = folder / "input" / f"{Path(name).stem or 'upload'}.{extension}"
        source.parent.mkdir()
        source.write_bytes(data)
        try:
            return _analyse(recognizer, source, name, every=every, smoothing=smoothing, annotate=annotate,
                            max_pixels=max_pixels, max_frames=max_frames, deadline=deadline,
                            progress=progress or VideoProgress())
        except AffectlensError as exc:
            # Messages name the file: show the client's name, never our temporary path.
            message = str(exc).splitlines()[0].replace(str(source), name) if str(exc) else f"{name}: invalid video"
            raise ServeError(422, message) from None


def _analyse(
    recognizer: Recognizer,
    source: Path,
    name: str,
    *,
    every: int,
    smoothing: float | None,
    annotate: bool,
    max_pixels: int,
    max_frames: int,
    deadline: Deadline,
    progress: VideoProgress,
) -> VideoAnalysis:
    folder = source.parent.parent / "output"
    with VideoReader(source, every=every, prefetch=0) as probe:
        info = probe.info
        expected = probe.expected_frames
    if info.width * info.height > max_pixels:
        raise ServeError(413, f"{name}: video frames are {info.width}x{info.height} = "
                              f"{info.width * info.height / 1e6:.1f} megapixels, over the "
                              f"{max_pixels / 1e6:g} megapixel limit")
    if expected > max_frames:
        stride = -(-expected * every // max_frames)
        raise ServeError(413, f"{name}: {expected} frames to analyse, over the limit of {max_frames}; "
                              f"analyse every n-th frame (every={stride}) or send a shorter clip")

    progress.start(expected)

    def check_and_label(result: FrameResult) -> None:
        if progress.cancelled:
            raise VideoCancelled(name)
        if deadline.expired():
            raise _OutOfTime
        result.source = name  # records carry the client's file name, not our temporary path
        progress.frame()

    jsonl_path, csv_path = folder / "predictions.jsonl", folder / "predictions.csv"
    video_path, timeline_path = folder / "annotated.mp4", folder / "timeline.png"
    with JsonlWriter(jsonl_path) as jsonl, \
            CsvWriter(csv_path, recognizer.class_names, recognizer.has_valence_arousal) as csv_out:
        try:
            stats = run_loop(
                recognizer, source, every=every, smoothing=smoothing, max_frames=max_frames,
                sinks=[check_and_label, jsonl.write, csv_out.write],
                video_out=video_path if annotate else None,
                timeline_out=timeline_path if annotate else None,
                progress=False,
            )
        except _OutOfTime:
            raise ServeError(504, f"{name}: analysis took longer than the {deadline.seconds:g} s time limit "
                                  "(try a shorter clip or every=N)") from None
    jsonl_text = jsonl_path.read_text(encoding="utf-8")
    return VideoAnalysis(
        name=name,
        fps=info.fps,
        width=info.width,
        height=info.height,
        every=every,
        records=[json.loads(line) for line in jsonl_text.splitlines() if line],
        jsonl=jsonl_text,
        csv=csv_path.read_text(encoding="utf-8"),
        annotated_mp4=video_path.read_bytes() if annotate and stats.annotated else None,
        timeline_png=timeline_path.read_bytes() if annotate and stats.timeline else None,
    )
