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
        with open(path, "rb") as probe:
            head = probe.read(8192)
        handle = open(path, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise AffectlensError(f"{path}: cannot open ({exc.strerror})") from None
    if b"\x00" in head:  # UTF-8 text never holds NUL bytes; an image or archive renamed .csv does
        handle.close()
        utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff"))
        raise AffectlensError(f"{path}: " + ("UTF-16 text; save it as UTF-8" if utf16 else
                                             "not a text CSV file (binary content)"))
    return handle


def require_columns(path: Path, present: Sequence[str] | None, required: Iterable[str]) -> None:
    """Raise if any ``required`` column is absent from the header ``present``."""
    have = [c.strip() for c in (present or [])]
    missing = [c for c in required if c not in have]
    if missing:
        raise AffectlensError(
            f"{path}: missing column(s) {', '.join(missing)}; found: {', '.join(have) or 'no header'}"
        )
