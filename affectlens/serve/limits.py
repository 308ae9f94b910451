"""What one server process accepts: upload size, decoded pixels, video length, time, concurrency.

Every limit exists because a web endpoint takes input from anyone who can reach it: a size cap
stops uploads that fill memory or disk, a pixel cap stops small files that decode into huge
images (decompression bombs), the frame cap and the time limit bound the work one request can
buy, and the concurrency cap keeps a 2-core machine answering instead of thrashing.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from affectlens.errors import AffectlensError


@dataclass(frozen=True)
class ServeLimits:
    """Per-process limits of the web app (see the module docstring for why each exists).

    - ``max_upload_mb``: largest request body (photo or video), in MB (10**6 bytes).
    - ``max_pixels``: largest decoded image or video frame, checked from the header before decoding.
    - ``max_video_frames``: most frames one video request may process (after ``every``).
    - ``timeout_s``: per-request time limit: waiting longer for a free slot answers 503, work
      running past it answers 504.
    - ``concurrency``: inferences run at once in this process; more requests wait for a slot.
    """

    max_upload_mb: float = 50.0
    max_pixels: int = 50_000_000
    max_video_frames: int = 9000
    timeout_s: float = 120.0
    concurrency: int = 2

    def __post_init__(self) -> None:
        checks = {
            "max_upload_mb": (self.max_upload_mb, 0.001, 100_000),
            "max_pixels": (self.max_pixels, 1, 10**10),
            "max_video_frames": (self.max_video_frames, 1, 10**8),
            "timeout_s": (self.timeout_s, 0.001, 86_400),
            "concurrency": (self.concurrency, 1, 1024),
        }
        for name, (value, low, high) in checks.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise AffectlensError(f"serve limit {name} must be a finite number, got {value!r}")
            if not low <= value <= high:
                raise AffectlensError(f"serve limit {name} must be in [{low:g}, {high:g}], got {value:g}")
        for name in ("max_pixels", "max_video_frames", "concurrency"):
            if int(getattr(self, name)) != getattr(self, name):
                raise AffectlensError(f"serve limit {name} must be a whole number, got {getattr(self, name)!r}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)

    def to_json(self) -> str:
        return json.dumps(asdict(self))


#: the clock every :class:`Deadline` reads (tests put a fake one here)
clock: Callable[[], float] = time.monotonic


class Deadline:
    """The time limit of one request, started when the request's work starts."""

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)
        self._end = clock() + self.seconds

    def remaining(self) -> float:
        return max(0.0, self._end - clock())

    def expired(self) -> bool:
        return clock() >= self._end
