"""Small helpers shared by the CSV readers: open a file with a clear error, check its columns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

from affectlens.errors import AffectlensError


def open_csv(path: Path) -> IO[str]:
    """Open a CSV for reading, turning a missing or unreadable file into a one-line error."""
    if not path.exists():
        raise AffectlensError(f"{path}: file does not exist")
    try:
        return open(path, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise AffectlensError(f"{path}: cannot open ({exc.strerror})") from None


def require_columns(path: Path, present: Sequence[str] | None, required: Iterable[str]) -> None:
    """Raise if any ``required`` column is absent from the header ``present``."""
    have = [c.strip() for c in (present or [])]
    missing = [c for c in required if c not in have]
    if missing:
        raise AffectlensError(
            f"{path}: missing column(s) {', '.join(missing)}; found: {', '.join(have) or 'no header'}"
        )
