"""Reading the ``.npz`` dataset files of ../shared/data with clear errors."""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from affectlens.errors import AffectlensError

#: what NumPy raises for an ``.npz``/``.npy`` file it cannot read (EOFError: empty or cut short; the command
#: line must not let it through, or click reports it as "aborted", the answer to Ctrl-D at a prompt)
ARCHIVE_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def archive_error(path: Path, exc: BaseException, what: str) -> AffectlensError:
    """The one line for an array file NumPy cannot read: empty or cut short (a copy or download that
    stopped) when its bytes end too soon, else what NumPy says."""
    try:
        size = path.stat().st_size
    except OSError:
        size = -1
    if size == 0 or isinstance(exc, EOFError | zipfile.BadZipFile | zlib.error) or "EOF" in str(exc):
        return AffectlensError(f"{path}: empty or truncated {what}, or not one ({max(size, 0):,} bytes); copy or "
                               "download it again")
    return AffectlensError(f"{path}: not a readable {what} ({exc})")


def open_npz(path: Path, required: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """Load every array of an npz into a dict, checking that ``required`` arrays exist."""
    if not path.exists():
        raise AffectlensError(f"{path}: dataset file does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except ARCHIVE_ERRORS as exc:
        raise archive_error(path, exc, ".npz archive") from None
    missing = [name for name in required if name not in arrays]
    if missing:
        raise AffectlensError(f"{path}: missing array(s) {', '.join(missing)}; found: {', '.join(arrays)}")
    return arrays


def find_npz(path: Path, pattern: str = "*.npz") -> Path:
    """Accept either the npz file itself or the folder holding it."""
    if path.is_dir():
        found = sorted(path.glob(pattern))
        if not found:
            raise AffectlensError(f"{path}: no {pattern} file inside")
        return found[0]
    if not path.exists():
        raise AffectlensError(f"{path}: dataset path does not exist")
    return path
