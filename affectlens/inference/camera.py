"""The frame loop shared by ``affectlens camera`` and video files in ``affectlens predict``.

One loop for cameras and files means the live path is tested with a video file as its source:
read a frame, predict (one classifier batch per frame), hand the result to the record writers,
draw, then show it in a window and/or write it to an annotated video. Only the window needs a
display; it is checked up front so a headless machine gets a one-line error instead of a Qt abort.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from affectlens.errors import AffectlensError
from affectlens.inference.outputs import TimelineRecorder
from affectlens.inference.recognizer import Recognizer
from affectlens.inference.types import FrameResult
from affectlens.inference.video import BackgroundWriter, Frame, VideoReader, VideoWriter
from affectlens.utils.interrupts import stop_signals_as_interrupt

WINDOW = "affectlens"


@dataclass
class LoopStats:
    """What one run of :func:`run_loop` did."""

    source: str
    frames: int = 0
    faces: int = 0
    seconds: float = 0.0
    tracks: set[int] = field(default_factory=set)
    annotated: Path | None = None
    timeline: Path | None = None
    stopped_by_user: bool = False

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


# The camera window needs OpenCV's GUI build; the default install is the headless one (no GUI toolkit).
NO_GUI_HINT = ('this OpenCV is the headless build (no window support); for a window run '
               '`pip install "opencv-python<5"`, or use --no-window with -o to write an annotated video')


def opencv_has_gui() -> bool:
    """Whether this OpenCV build can open windows (``GUI:`` is ``NONE`` in headless builds)."""
    import cv2

    gui = [line.split(":", 1)[1].strip() for line in cv2.getBuildInformation().splitlines()
           if line.strip().startswith("GUI:")]
    return not (gui and gui[0].upper() == "NONE")


def check_display() -> None:
    """Raise a one-line :class:`AffectlensError` when no window can be opened here."""
    if not opencv_has_gui():
        raise AffectlensError(NO_GUI_HINT)
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise AffectlensError("no display available (DISPLAY is not set); use --no-window to write an annotated "
                              "video instead")


def parse_source(source: str | int | Path) -> str | int | Path:
    """``"0"`` -> camera 0; anything else is a file path."""
    if isinstance(source, str) and source.strip().isdigit():
        return int(source)
    return source


def run_loop(
    recognizer: Recognizer,
    source: str | Path | int,
    *,
    every: int = 1,
    smoothing: float | None = None,
    max_frames: int | None = None,
    sinks: Sequence[Callable[[FrameResult], None]] = (),
    video_out: Path | None = None,
    timeline_out: Path | None = None,
    window: bool = False,
    show_fps: bool = False,
    bars: bool = True,
    progress: bool | None = None,
) -> LoopStats:
    """Process ``source`` frame by frame; see the module docstring.

    ``sinks`` receive every :class:`FrameResult` as soon as it exists (record writers flush, so
    an interrupted run keeps its records). A camera stops on ``max_frames``, ``q``/Esc in the
    window, Ctrl-C or SIGTERM; all of those finish the outputs normally. A video file stopped by
    Ctrl-C or SIGTERM closes its annotated video and timeline (both usable) and re-raises.
    """
    with stop_signals_as_interrupt():
        return _run_loop(recognizer, source, every=every, smoothing=smoothing, max_frames=max_frames, sinks=sinks,
                         video_out=video_out, timeline_out=timeline_out, window=window, show_fps=show_fps,
                         bars=bars, progress=progress)


def _run_loop(
    recognizer: Recognizer,
    source: str | Path | int,
    *,
    every: int,
    smoothing: float | None,
    max_frames: int | None,
    sinks: Sequence[Callable[[FrameResult], None]],
    video_out: Path | None,
    timeline_out: Path | None,
    window: bool,
    show_fps: bool,
    bars: bool,
    progress: bool | None,
) -> LoopStats:
    if window:
        check_display()
    reader = recognizer.open_video(parse_source(source), every=every, max_frames=max_frames)
    loop = _FrameLoop(recognizer, reader, every=every, sinks=sinks, video_out=video_out, timeline_out=timeline_out,
                      window=window, show_fps=show_fps, bars=bars, progress=progress)
    return loop.run(smoothing)


class _FrameLoop:
    """One run of :func:`run_loop` over an open reader: its outputs, its counters and its window."""

    def __init__(
        self,
        recognizer: Recognizer,
        reader: VideoReader,
        *,
        every: int,
        sinks: Sequence[Callable[[FrameResult], None]],
        video_out: Path | None,
        timeline_out: Path | None,
        window: bool,
        show_fps: bool,
        bars: bool,
        progress: bool | None,
    ) -> None:
        self.recognizer = recognizer
        self.reader = reader
        self.sinks = sinks
        self.timeline_out = timeline_out
        self.window = window
        self.show_fps = show_fps
        self.bars = bars
        self.stats = LoopStats(reader.name)
        self.timeline = TimelineRecorder(recognizer.class_names) if timeline_out is not None else None
        self._open_video_out(video_out, every)
        self.bar = self._progress_bar(progress)
        self.started = self.last = time.perf_counter()
        self.smoothed_fps = 0.0

    def _open_video_out(self, video_out: Path | None, every: int) -> None:
        """The annotated video's writer, drawn on in a worker thread when no window shows the frames."""
        from affectlens.inference.annotate import CONTROLS_BAND, VIDEO_LABEL_HEIGHT, draw_faces

        fps = self.reader.info.fps / every if self.reader.info.fps else 0.0
        self.writer = VideoWriter(video_out, fps) if video_out else None
        self.background = None
        if self.writer is not None and not self.window:
            # Nothing to show: draw and encode in a worker thread while the next frames are analysed.
            bars = self.bars
            # labels stay out of the bottom band, where players draw their controls over the video
            self.background = BackgroundWriter(
                self.writer, lambda bgr, faces: draw_faces(bgr, faces, bars=bars, keep_clear_bottom=CONTROLS_BAND,
                                              label_height=VIDEO_LABEL_HEIGHT))
        self.draw = self.window or self.writer is not None

    def _progress_bar(self, progress: bool | None):
        from tqdm import tqdm

        reader = self.reader
        return tqdm(
            total=reader.expected_frames or None,
            unit="frame",
            desc=Path(reader.name).name if not reader.is_camera else reader.name,
            disable=(not progress) if progress is not None else None,
            leave=False,
            dynamic_ncols=True,
        )

    def run(self, smoothing: float | None) -> LoopStats:
        """Every frame until the source ends or the user stops it; the outputs are finished in any case."""
        try:
            for result, frame in self.recognizer.stream(self.reader, smoothing):
                if self._frame(result, frame):
                    self.stats.stopped_by_user = True
                    break
        except KeyboardInterrupt:
            if not self.reader.is_camera:
                raise
            self.stats.stopped_by_user = True
        finally:
            self._finish()
        return self.stats

    def _frame(self, result: FrameResult, frame: Frame) -> bool:
        """One analysed frame through every output; True when the user closed the window or pressed q/Esc."""
        self._record(result)
        self._tick()
        bgr = self._draw_and_write(result, frame)
        if self.window and _show(bgr):
            return True
        self.bar.update(1)
        return False

    def _record(self, result: FrameResult) -> None:
        """Count the frame and its faces, and hand the result to the sinks and the timeline."""
        faces = result.faces
        self.stats.frames += 1
        self.stats.faces += len(faces)
        self.stats.tracks.update(f.face_id for f in faces)
        for sink in self.sinks:
            sink(result)
        if self.timeline is not None:
            self.timeline.add(result.time, [f.face_id for f in faces], [f.probabilities for f in faces],
                              [(f.valence, f.arousal) for f in faces] if self.recognizer.has_valence_arousal else None)

    def _tick(self) -> None:
        """Update the smoothed frames per second (``show_fps``)."""
        now = time.perf_counter()
        instant = 1.0 / max(now - self.last, 1e-6)
        self.smoothed_fps = instant if self.stats.frames == 1 else 0.9 * self.smoothed_fps + 0.1 * instant
        self.last = now

    def _draw_and_write(self, result: FrameResult, frame: Frame):
        """Draw the faces (and the fps) on the frame and write it to the annotated video; the drawn
        frame when it is drawn here, None when nothing draws or the worker thread does."""
        from affectlens.inference.annotate import CONTROLS_BAND, VIDEO_LABEL_HEIGHT, draw_faces, draw_fps

        if self.background is not None:
            self.background.write(frame.bgr, result.faces)  # a fresh decoder buffer: drawn on in place
            return None
        if not self.draw:
            return None
        bgr = frame.bgr  # a fresh decoder buffer: drawn on in place
        draw_faces(bgr, result.faces, bars=self.bars, keep_clear_bottom=CONTROLS_BAND if self.writer else 0.0,
                   label_height=VIDEO_LABEL_HEIGHT)
        if self.show_fps:
            draw_fps(bgr, self.smoothed_fps)
        if self.writer is not None:
            self.writer.write(bgr)
        return bgr

    def _finish(self) -> None:
        """Stop the clock, close the bar, the reader and the annotated video, plot the timeline, close the window."""
        self.stats.seconds = time.perf_counter() - self.started
        self.bar.close()
        self.reader.close()
        if self.background is not None:
            self.background.close()
        elif self.writer is not None:
            self.writer.close()
        if self.writer is not None:
            self.stats.annotated = self.writer.path if self.writer.frames else None
        if self.timeline is not None and self.timeline_out is not None:
            name = Path(self.reader.name).name
            self.stats.timeline = self.timeline.plot(self.timeline_out, title=f"{name}: emotion probabilities")
        if self.window:
            import cv2

            cv2.destroyAllWindows()


def _show(bgr) -> bool:
    """Show a frame; True when the user closes the window or presses q/Esc."""
    import cv2

    try:
        cv2.imshow(WINDOW, bgr)
        key = cv2.waitKey(1) & 0xFF
        closed = cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1
    except cv2.error as exc:
        if not opencv_has_gui() or "not implemented" in str(exc):  # highgui compiled out
            raise AffectlensError(NO_GUI_HINT) from None
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "cv2.error"
        raise AffectlensError(f"cannot open a window ({first}); use --no-window") from None
    return key in (27, ord("q")) or closed
