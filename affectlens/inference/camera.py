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
from affectlens.inference.video import BackgroundWriter, VideoWriter
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
    import cv2
    from tqdm import tqdm

    from affectlens.inference.annotate import draw_faces, draw_fps

    if window:
        check_display()
    source = parse_source(source)
    reader = recognizer.open_video(source, every=every, max_frames=max_frames)
    stats = LoopStats(reader.name)
    timeline = TimelineRecorder(recognizer.class_names) if timeline_out is not None else None
    writer = VideoWriter(video_out, reader.info.fps / every if reader.info.fps else 0.0) if video_out else None
    background = None
    if writer is not None and not window:
        # Nothing to show: draw and encode in a worker thread while the next frames are analysed.
        background = BackgroundWriter(writer, lambda bgr, faces: draw_faces(bgr, faces, bars=bars))
    draw = window or writer is not None
    bar = tqdm(
        total=reader.expected_frames or None,
        unit="frame",
        desc=Path(reader.name).name if not reader.is_camera else reader.name,
        disable=(not progress) if progress is not None else None,
        leave=False,
        dynamic_ncols=True,
    )
    started = time.perf_counter()
    smoothed_fps = 0.0
    last = started
    try:
        for result, frame in recognizer.stream(reader, smoothing):
            stats.frames += 1
            stats.faces += len(result.faces)
            stats.tracks.update(f.face_id for f in result.faces)
            for sink in sinks:
                sink(result)
            if timeline is not None:
                timeline.add(result.time, [f.face_id for f in result.faces],
                             [f.probabilities for f in result.faces],
                             [(f.valence, f.arousal) for f in result.faces] if recognizer.has_valence_arousal else None)
            now = time.perf_counter()
            instant = 1.0 / max(now - last, 1e-6)
            smoothed_fps = instant if stats.frames == 1 else 0.9 * smoothed_fps + 0.1 * instant
            last = now
            if background is not None:
                background.write(frame.bgr, result.faces)  # a fresh decoder buffer: drawn on in place
            elif draw:
                bgr = frame.bgr  # a fresh decoder buffer: drawn on in place
                draw_faces(bgr, result.faces, bars=bars)
                if show_fps:
                    draw_fps(bgr, smoothed_fps)
                if writer is not None:
                    writer.write(bgr)
                if window and _show(bgr):
                    stats.stopped_by_user = True
                    break
            bar.update(1)
    except KeyboardInterrupt:
        if not reader.is_camera:
            raise
        stats.stopped_by_user = True
    finally:
        stats.seconds = time.perf_counter() - started
        bar.close()
        reader.close()
        if background is not None:
            background.close()
        elif writer is not None:
            writer.close()
        if writer is not None:
            stats.annotated = writer.path if writer.frames else None
        if timeline is not None and timeline_out is not None:
            stats.timeline = timeline.plot(timeline_out, title=f"{Path(reader.name).name}: emotion probabilities")
        if window:
            cv2.destroyAllWindows()
    return stats


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
