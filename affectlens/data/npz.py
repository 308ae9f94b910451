"""Reading the ``.npz`` dataset files of ../shared/data with clear errors."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from affectlens.errors import AffectlensError


def open_npz(path: Path, required: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """Load every array of an npz into a dict, checking that ``required`` arrays exist."""
    if not path.exists():
        raise AffectlensError(f"{path}: dataset file does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise AffectlensError(f"{path}: not a readable .npz file ({exc})") from None
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
