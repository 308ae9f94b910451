"""Streaming video input and annotated video output.

Frames are decoded one at a time (a small bounded prefetch queue lets decoding overlap with
inference, since OpenCV releases the GIL while decoding): memory stays flat however long the
video is, unlike tools that read a whole clip into a list first. Skipped frames (``every`` > 1)
are only grabbed, never converted.

A file that cannot be opened, has no decodable frame, or ends well before the frame count in its
header (a truncated download) raises :class:`AffectlensError` naming the file; frames decoded
before a truncation point are still yielded first, so their results are kept.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectlens.errors import AffectlensError
from affectlens.utils.outputs import commit, partial_path

# FFmpeg prints its own multi-line complaints ("moov atom not found") for a broken file; we already
# report such a file in one line, so silence FFmpeg unless the user asked for its log level.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"}


def is_video_file(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


@dataclass(frozen=True)
class VideoInfo:
    """What the container says: ``frame_count`` is 0 when unknown (cameras, some streams)."""

    name: str
    fps: float
    frame_count: int
    width: int
    height: int


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its index in the source, timestamp in seconds, and BGR pixels."""

    index: int
    time: float
    bgr: np.ndarray


_END = object()


def _open_camera(index: int):
    """``cv2.VideoCapture(index)`` without OpenCV's multi-line log noise for a missing device."""
    import cv2

    logging_api = getattr(getattr(cv2, "utils", None), "logging", None)
    previous = None
    if logging_api is not None:
        previous = logging_api.getLogLevel()
        logging_api.setLogLevel(logging_api.LOG_LEVEL_SILENT)
    try:
        return cv2.VideoCapture(index)
    finally:
        if logging_api is not None and previous is not None:
            logging_api.setLogLevel(previous)


class VideoReader:
    """Iterate over every ``every``-th frame of a video file or camera.

    ``source`` is a path or a camera index. ``max_frames`` stops after that many processed frames
    (cameras have no end). ``prefetch`` is the decoded-frame queue length (0 = decode in the
    calling thread).
    """

    def __init__(
        self, source: str | Path | int, every: int = 1, max_frames: int | None = None, prefetch: int = 2
    ) -> None:
        import cv2

        if every < 1:
            raise AffectlensError(f"--every must be >= 1, got {every}")
        self.every = int(every)
        self.max_frames = max_frames
        self.prefetch = int(prefetch)
        self.is_camera = isinstance(source, int)
        if self.is_camera:
            self.name = f"camera:{source}"
            capture = _open_camera(int(source))
            if not capture.isOpened():
                raise AffectlensError(f"camera {source} cannot be opened (no such device or it is busy)")
        else:
            path = Path(source)
            self.name = str(path)
            if not path.exists():
                raise AffectlensError(f"{path}: file does not exist")
            if path.is_dir():
                raise AffectlensError(f"{path}: is a folder, not a video")
            if path.stat().st_size == 0:
                raise AffectlensError(f"{path}: file is empty")
            capture = cv2.VideoCapture(str(path))
            if not capture.isOpened():
                capture.release()
                raise AffectlensError(f"{path}: cannot open video (corrupt, truncated, or not a video file)")
        self._capture = capture
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.info = VideoInfo(
            name=self.name,
            fps=fps if np.isfinite(fps) and 0 < fps < 1000 else 0.0,
            frame_count=max(count, 0) if not self.is_camera else 0,
            width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
            height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
        )
        self.decoded = 0  # frames grabbed from the source so far (processed or skipped)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def expected_frames(self) -> int:
        """Frames that will be processed with the stride (0 when unknown)."""
        n = self.info.frame_count
        if n <= 0:
            return self.max_frames or 0
        total = -(-n // self.every)
        return min(total, self.max_frames) if self.max_frames else total

    def _frames(self) -> Iterator[Frame]:
        """Decode in the current thread; raises at the end if the video stopped early."""
        import cv2

        capture = self._capture
        fps = self.info.fps
        started = time.perf_counter()
        produced = 0
        index = 0
        while not self._stop.is_set():
            if self.max_frames is not None and produced >= self.max_frames:
                return
            if index % self.every:
                if not capture.grab():
                    break
                index += 1
                self.decoded = index
                continue
            ok, bgr = capture.read()
            if not ok or bgr is None:
                break
            if self.is_camera or fps <= 0:
                stamp = (
                    time.perf_counter() - started
                    if self.is_camera
                    else float(capture.get(cv2.CAP_PROP_POS_MSEC) or 0.0) / 1000.0
                )
            else:
                stamp = index / fps
            yield Frame(index, stamp, bgr)
            produced += 1
            index += 1
            self.decoded = index
        if self._stop.is_set() or self.is_camera:
            return
        self._check_complete(index)

    def _check_complete(self, decoded: int) -> None:
        expected = self.info.frame_count
        if decoded == 0:
            raise AffectlensError(f"{self.name}: no decodable video frames (corrupt or not a video file)")
        # Container frame counts can be a few frames off (edit lists, B-frame delays): tolerate that.
        if expected > 0 and decoded < expected - max(3, round(0.05 * expected)):
            raise AffectlensError(
                f"{self.name}: video is truncated or corrupt: decoded {decoded} of {expected} frames"
            )

    def _worker(self, out: queue.Queue) -> None:
        try:
            for frame in self._frames():  # _frames ends by itself once the reader is stopped
                self._put(out, frame)
            item: object = _END
        except BaseException as exc:  # handed to the consumer, re-raised there
            item = exc
        self._put(out, item)

    def _put(self, out: queue.Queue, item: object) -> None:
        """Hand ``item`` to the consumer, waiting for room, unless the reader is stopped meanwhile."""
        while not self._stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[Frame]:
        if self.prefetch <= 0:
            yield from self._frames()
            return
        frames: queue.Queue = queue.Queue(maxsize=self.prefetch)
        self._thread = threading.Thread(target=self._worker, args=(frames,), name="affectlens-decode", daemon=True)
        self._thread.start()
        index = -1
        try:
            while True:
                item = self._next(frames)
                if item is _END:
                    return
                if isinstance(item, AffectlensError | KeyboardInterrupt):
                    raise item
                if isinstance(item, BaseException):  # the decoder failed: this file, not the program
                    reason = f"{type(item).__name__}: {item}".splitlines()[0]
                    where = f"after frame {index}" if index >= 0 else "before the first frame"
                    raise AffectlensError(f"{self.name}: decoding stopped {where} ({reason})") from item
                index = item.index
                yield item
        finally:
            self._stop.set()
            self._thread.join(timeout=5)

    def _next(self, frames: queue.Queue) -> object:
        """The decode worker's next item; an error if the worker is gone without a word (it cannot be)."""
        while True:
            try:
                return frames.get(timeout=0.5)
            except queue.Empty:
                if self._thread is not None and not self._thread.is_alive() and frames.empty():
                    return RuntimeError("the decode worker ended without finishing")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5)
        self._capture.release()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: the slowest frame rate an annotated video is written at (one frame per 1000 s)
MIN_FPS = 1e-3


class VideoWriter:
    """Annotated-video output: H.264 in MP4, the one codec every browser and phone plays.

    Encoded with PyAV's bundled libx264 (OpenCV's pip wheels cannot write H.264; their ``mp4v``
    files do not play in browsers). ``yuv420p`` needs even sides, so an odd-sized frame gets one
    replicated edge row/column; ``faststart`` puts the index first so a browser can start playing
    before the whole file has arrived. Only if PyAV or its H.264 encoder is missing does it fall
    back to OpenCV's ``mp4v``, with a warning. ``codec`` tells which one was used.

    Opens lazily on the first frame, so the size always matches the frames written. Frames go to
    ``<name>.partial.mp4``; :meth:`close` (reached on every exit path, Ctrl-C and SIGTERM included:
    see :mod:`affectlens.utils.interrupts`) writes the index and renames the file to ``path``, so
    a file under the final name always plays.
    """

    #: x264 speed/quality: the encoder is most of the output cost of ``predict``. Measured on
    #: single_face.mp4 (640x360): "veryfast" 2.7 ms/frame, "superfast" 1.7 ms/frame for a file
    #: twice as large (about 60 kB per second of video), "ultrafast" 1.0 ms/frame but 4x as large;
    #: crf 23 is x264's default quality.
    PRESET = "superfast"
    CRF = "23"

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.partial = partial_path(self.path)
        # a large --every makes a slide show; the container's time base needs a rate of >= 1/1000 fps
        self.fps = max(float(fps), MIN_FPS) if fps and fps > 0 else 25.0
        self.frames = 0
        self.codec = ""
        self._container = None
        self._stream = None
        self._cv_writer = None

    def write(self, bgr: np.ndarray) -> None:
        if self._container is None and self._cv_writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._open(bgr.shape[1], bgr.shape[0])
        if self._cv_writer is not None:
            self._cv_writer.write(bgr)
        else:
            self._encode(bgr)
        self.frames += 1

    def _open(self, width: int, height: int) -> None:
        try:
            self._open_h264(width, height)
            self.codec = "h264"
            return
        except (ImportError, ValueError, OSError) as exc:  # no PyAV, no encoder, or it refused the stream
            self._container = self._stream = None
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        log.warning("%s: cannot encode H.264 with PyAV (%s); writing mp4v, which browsers do not play",
                    self.path, reason)
        import cv2

        writer = cv2.VideoWriter(str(self.partial), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
        if not writer.isOpened():
            raise AffectlensError(f"{self.path}: cannot write video (no H.264 encoder and OpenCV mp4v failed)")
        self._cv_writer = writer
        self.codec = "mp4v"

    def _open_h264(self, width: int, height: int) -> None:
        from fractions import Fraction

        import av

        encoder = next((name for name in ("libx264", "h264", "libopenh264") if name in av.codecs_available), None)
        if encoder is None:
            raise ValueError("PyAV has no H.264 encoder")
        rate = Fraction(self.fps).limit_denominator(1001)
        try:
            container = av.open(str(self.partial), mode="w", options={"movflags": "+faststart"})
        except av.FFmpegError as exc:
            raise ValueError(str(exc)) from exc
        try:
            stream = container.add_stream(encoder, rate=rate)
            stream.width, stream.height = width + width % 2, height + height % 2
            stream.pix_fmt = "yuv420p"
            stream.codec_context.time_base = 1 / rate
            if encoder == "libx264":
                stream.options = {"preset": self.PRESET, "crf": self.CRF}
            stream.codec_context.open()  # fail here, not on the first frame, if the encoder refuses
        except av.FFmpegError as exc:
            container.close()
            self.partial.unlink(missing_ok=True)
            raise ValueError(str(exc)) from exc
        self._container, self._stream = container, stream

    def _encode(self, bgr: np.ndarray) -> None:
        import av

        stream = self._stream
        if bgr.shape[0] != stream.height or bgr.shape[1] != stream.width:
            pad_h, pad_w = stream.height - bgr.shape[0], stream.width - bgr.shape[1]
            if pad_h < 0 or pad_w < 0 or pad_h > 1 or pad_w > 1:
                raise AffectlensError(
                    f"{self.path}: frame size {bgr.shape[1]}x{bgr.shape[0]} differs from the video's "
                    f"{stream.width}x{stream.height}"
                )
            bgr = np.pad(bgr, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24")
        frame.pts = self.frames
        for packet in stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        """Flush the encoder, write the index, and move the finished file to ``path``."""
        opened = self._container is not None or self._cv_writer is not None
        if self._container is not None:
            try:
                for packet in self._stream.encode():  # flush the frames the encoder still holds
                    self._container.mux(packet)
            finally:
                self._container.close()
                self._container = self._stream = None
        if self._cv_writer is not None:
            self._cv_writer.release()
            self._cv_writer = None
        if opened and self.partial.exists():
            commit(self.partial, self.path)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BackgroundWriter:
    """Draws and encodes annotated frames in a worker thread, so the analysis never waits on them.

    ``render(bgr, item)`` draws ``item`` onto the frame (in the worker), then the frame goes to the
    :class:`VideoWriter`. OpenCV drawing and the H.264 encoder release the GIL, so on two cores
    this output work overlaps the next frames' detection instead of adding to it. The queue is
    short (``depth`` frames) so memory stays flat; an error in the worker is raised in the caller
    at its next :meth:`write` or at :meth:`close`, which always finishes the file.
    """

    def __init__(self, writer: VideoWriter, render, depth: int = 4) -> None:
        self.writer = writer
        self._render = render
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="affectlens-write", daemon=True)
        self._thread.start()

    @property
    def path(self) -> Path:
        return self.writer.path

    @property
    def frames(self) -> int:
        return self.writer.frames

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is _END:
                return
            if self._error is not None:
                continue  # drain: the caller learns of the error and stops
            try:
                bgr, item = job
                self._render(bgr, item)
                self.writer.write(bgr)
            except BaseException as exc:  # handed to the caller
                self._error = exc

    def write(self, bgr: np.ndarray, item: object) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((bgr, item))

    def close(self) -> None:
        """Wait for the queued frames, then finish the file (also after an error)."""
        if self._thread.is_alive():
            self._queue.put(_END)
            self._thread.join()
        self.writer.close()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
