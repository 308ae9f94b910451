"""Per-input parts joined into the collection's ``predictions.jsonl`` and ``predictions.csv``.

Why parts: workers finish inputs in any order, on any machine, and a rerun redoes only some of
them; one file per input, joined at the end in ``predict``'s own order (photos first, then videos,
each in the order of the command line and the folder walk), gives files that are byte for byte
those of a sequential ``predict`` over the same inputs. Joining streams the parts (a few MB at a
time), and each joined file appears whole or not at all.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from affectlens.utils.outputs import atomic_path

CHUNK = 1 << 22


def join_jsonl(parts: Sequence[Path], out: Path) -> int:
    """Concatenate the JSONL ``parts`` that exist into ``out``; returns the parts joined (0: no file written)."""
    present = [p for p in parts if p.is_file()]
    if not present:
        return 0
    with atomic_path(out) as partial, partial.open("wb") as sink:
        for part in present:
            with part.open("rb") as source:
                shutil.copyfileobj(source, sink, CHUNK)
    return len(present)


def join_csv(parts: Sequence[Path], out: Path) -> int:
    """Concatenate the CSV ``parts`` that exist into ``out`` under one header (each part starts with it)."""
    present = [p for p in parts if p.is_file()]
    if not present:
        return 0
    with atomic_path(out) as partial, partial.open("wb") as sink:
        for i, part in enumerate(present):
            with part.open("rb") as source:
                header = source.readline()  # the header row (one line: class names hold no newline)
                if i == 0:
                    sink.write(header)
                shutil.copyfileobj(source, sink, CHUNK)
    return len(present)
