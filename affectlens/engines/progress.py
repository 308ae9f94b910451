"""Progress over a whole collection on stderr: inputs done/total, frames, faces/s and ETA.

Why not one bar per video (as ``predict`` draws): several workers finish inputs out of order, and
what a user of a long run wants is the whole: how far, how fast, how long still. The ETA counts
bytes, not inputs: a collection mixes photos of 100 kB with videos of 100 MB, and an ETA by input
count would be wrong by that ratio. On a terminal the line is redrawn in place; otherwise (a log
file, CI) a line is printed at most every ``interval`` seconds and once at the end. ``frames``
counts records: processed video frames and photos (a photo is one frame).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """Counts what the engine reports and draws the line."""

    def __init__(self, total: int, total_bytes: int, *, done: int = 0, enabled: bool | None = None,
                 stream: TextIO | None = None, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stderr
        terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = terminal if enabled is None else enabled
        self.redraw = terminal
        self.total, self.total_bytes = total, max(1, total_bytes)
        self.done, self.failed = done, 0  # ``done`` starts at the inputs an earlier run finished
        self.frames = self.faces = self.bytes = 0
        self.clock, self.interval = clock, (0.5 if terminal else interval)
        self.started = self.clock()
        self._last = -float("inf")

    def update(self, *, ok: bool, records: int = 0, faces: int = 0, size: int = 0) -> None:
        """One input finished (``ok``) or failed."""
        if ok:
            self.done += 1
        else:
            self.failed += 1
        self.frames += records
        self.faces += faces
        self.bytes += size
        now = self.clock()
        if now - self._last >= self.interval:
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        """``12/40 inputs (1 failed), 1234 frames, 56 faces, 45.6 faces/s, ETA 1:23``."""
        elapsed = max(1e-9, (self.clock() if now is None else now) - self.started)
        text = f"{self.done}/{self.total} inputs"
        if self.failed:
            text += f" ({self.failed} failed)"
        text += f", {self.frames} frames, {self.faces} faces, {self.faces / elapsed:.1f} faces/s"
        left = self.total_bytes - self.bytes
        if self.bytes and left > 0 and self.done + self.failed < self.total:
            text += f", ETA {_duration(elapsed * left / self.bytes)}"
        return text

    def close(self) -> None:
        """The last line (and a newline after a redrawn one)."""
        if self.enabled:
            self._draw(self.clock())
            if self.redraw:
                self.stream.write("\n")
                self.stream.flush()

    def _draw(self, now: float) -> None:
        if not self.enabled:
            return
        self._last = now
        self.stream.write(("\r\x1b[K" if self.redraw else "") + f"affectlens: {self.line(now)}"
                          + ("" if self.redraw else "\n"))
        self.stream.flush()
