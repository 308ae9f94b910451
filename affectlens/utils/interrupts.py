"""SIGTERM (and SIGHUP) handled like Ctrl-C, so a stopped run finishes its outputs.

Python turns Ctrl-C into :class:`KeyboardInterrupt`, and every writer here closes its files on
the way out (records renamed into place, the annotated video's index written so it plays). A
``kill``, a job scheduler's time limit or a closed terminal sends SIGTERM or SIGHUP instead, which
by default ends the process at once and leaves an MP4 without its index. Raising
:class:`Terminated`, a ``KeyboardInterrupt``, at that moment sends those signals down the same,
tested path.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by a signal other than Ctrl-C (``signal_number`` says which)."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal.Signals(signal_number).name)
        self.signal_number = signal_number

    @property
    def exit_code(self) -> int:
        """128 + the signal number, the shell's convention for 'ended by a signal'."""
        return 128 + self.signal_number


def _signals() -> list[int]:
    return [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]


@contextmanager
def stop_signals_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM/SIGHUP raise :class:`Terminated` in the main thread.

    Does nothing outside the main thread (Python delivers signals there only) and leaves a
    signal alone whose handler is not the default one (``nohup`` ignores SIGHUP on purpose; a
    host application may have its own handler).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signal_number: int, frame: object) -> None:
        raise Terminated(signal_number)

    previous: dict[int, object] = {}
    for number in _signals():
        if signal.getsignal(number) is signal.SIG_DFL:
            previous[number] = signal.signal(number, raise_terminated)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)  # type: ignore[arg-type]
