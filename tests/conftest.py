"""Shared fixtures: where ../shared lives (data and media read in place, never copied), the command
line run in this process or in a subprocess, a fake clock, and a header-only PNG bomb."""

from __future__ import annotations

import logging
import os
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import pytest

SHARED = Path(os.environ.get("AFFECTLENS_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"../shared not found at {SHARED}; set AFFECTLENS_SHARED")
    return SHARED


@pytest.fixture(scope="session")
def media_dir(shared_dir: Path) -> Path:
    return shared_dir / "media"


@pytest.fixture(scope="session")
def data_dir(shared_dir: Path) -> Path:
    return shared_dir / "data"


# ------------------------------------------------------------------------------------ the command line
class CliResult(NamedTuple):
    """One ``affectlens ARGV`` run in this process: its exit status and what it printed."""

    code: int
    out: str
    err: str


#: the ``run_main`` fixture: ``run_main(argv)`` -> (exit status, stdout, stderr)
RunMain = Callable[[Sequence[str]], CliResult]
#: the ``run_cli_subprocess`` fixture: ``run_cli_subprocess(*args, module=..., cwd=...)``
RunCliSubprocess = Callable[..., subprocess.CompletedProcess]
#: the ``png_header_only`` fixture: ``png_header_only(width, height)`` -> PNG bytes
PngHeaderOnly = Callable[[int, int], bytes]


@pytest.fixture
def run_main(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> RunMain:
    """``run_main(argv)``: ``affectlens ARGV`` through :func:`affectlens.cli.main` (the console entry
    point, so its error handling is what is tested), in this process; returns (exit status, stdout, stderr)."""
    from affectlens.cli import main

    def run(argv: Sequence[str]) -> CliResult:
        argv = [str(arg) for arg in argv]
        monkeypatch.setattr(sys, "argv", ["affectlens", *argv])
        # main() configures logging to the stderr of the moment; start each run without handlers so
        # that every run logs to this test's captured stderr
        monkeypatch.setattr(logging.root, "handlers", [])
        try:
            main(argv)
            code = 0
        except SystemExit as exc:  # main() ends every failed run with sys.exit(N)
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            for handler in logging.root.handlers:
                handler.flush()
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def run_cli_subprocess() -> RunCliSubprocess:
    """``run_cli_subprocess(*args, module="affectlens.cli", cwd=None)``: ``python -m MODULE ARGS`` in a
    subprocess (text output captured, five-minute limit)."""

    def run(*args: str | Path, module: str = "affectlens.cli", cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                              timeout=300, cwd=cwd)

    return run


# ------------------------------------------------------------------------------------------ time
class FakeClock:
    """A clock that moves only when told: by :meth:`advance`, or by ``tick`` seconds after each reading.

    Patch it in where the code under test reads its clock (``monotonic`` and ``time`` both read it),
    so that a test of a time limit checks the logic, not the machine's speed."""

    def __init__(self, start: float = 1000.0, tick: float = 0.0) -> None:
        self.now = float(start)
        self.tick = float(tick)
        self.last: float | None = None  # the latest reading
        self._lock = threading.Lock()  # read from the server's worker threads too

    def __call__(self) -> float:
        with self._lock:
            self.last = self.now
            self.now += self.tick
            return self.last

    monotonic = __call__
    time = __call__

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


# ----------------------------------------------------------------------------------------- inputs
@pytest.fixture(scope="session")
def png_header_only() -> PngHeaderOnly:
    """``png_header_only(width, height)``: a valid PNG whose header claims ``width`` x ``height`` pixels
    over a tiny compressed body, a decompression bomb of about 100 bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    def build(width: int, height: int) -> bytes:
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + \
            chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")

    return build
