"""Reading ``torch.save`` files (training checkpoints, ``.pth`` weights) with one-line errors.

Always as weights only: such a file is a pickle, and unpickling anything more than tensors and
plain values can run code from the file. So a file that holds more is refused, and the error never
suggests ``weights_only=False`` (torch's own message does). A zero-byte or cut-off file (a copy or a
save interrupted by a full disk or a kill) is named as such: torch raises ``EOFError`` for it,
which the command line would otherwise take for Ctrl-D at a prompt and report as "aborted".
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from affectlens.errors import AffectlensError

__all__ = ["check_torch_file", "load_torch_file"]


def check_torch_file(path: str | Path, what: str = "checkpoint") -> None:
    """Refuse an empty or truncated ``torch.save`` file cheaply (size and zip directory), before a
    command reads a whole dataset only to fail at the checkpoint."""
    path = Path(path)
    size = _size(path)
    if size == 0:
        raise _truncated(path, what, size)
    if not zipfile.is_zipfile(path):  # torch.save has written zip archives since torch 1.6
        with open(path, "rb") as handle:
            legacy = handle.read(2) == b"\x80\x02"  # the pickle of torch's older format: torch.load judges it
        if not legacy:
            raise _truncated(path, what, size)


def load_torch_file(path: str | Path, what: str = "checkpoint", map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; any failure is one :class:`AffectlensError` naming the file."""
    path = Path(path)
    check_torch_file(path, what)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" not in str(exc).lower():
            raise _truncated(path, what, _size(path)) from None
        raise AffectlensError(f"{path}: holds Python objects besides tensors and plain values; affectlens reads "
                              f"a {what} as weights only, since unpickling other objects can run code from the "
                              "file") from None
    except (EOFError, OSError, RuntimeError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise _truncated(path, what, _size(path), exc) from None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise AffectlensError(f"{path}: cannot read the file ({exc.strerror})") from None


def _truncated(path: Path, what: str, size: int, exc: BaseException | None = None) -> AffectlensError:
    reason = f"; {type(exc).__name__}" if exc is not None else ""
    return AffectlensError(f"{path}: empty or truncated {what}, or not one ({size:,} bytes{reason}); it cannot be "
                           "read: restore it from a copy, or start again")
