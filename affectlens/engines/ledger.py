"""The done-ledger: which inputs of a collection are finished, so that a rerun skips them.

Why by content: an input is done when the ledger holds its sha256 *and* its path as the records
name it. A file replaced by another of the same name (a re-exported video) has another hash and is
processed again; a file merely touched (a copy, a new modification time) is not. The path is part
of the key because each record names its file: the same photo under two names is two inputs with
two sets of records, as in ``predict``.

The ledger is ``<out>/.affectlens/ledger.jsonl``: a first line with the settings of the run that
made it (model, options, formats: the records depend on them), then one line per finished input,
appended by the driver only after that input's parts and annotated files are complete. Each line
goes out in a single ``write`` on a file opened for appending, and is synced to disk: a run killed
at any moment leaves whole lines and at most one torn last line, which the reader ignores (that
input is simply done again). Appending, not rewriting, keeps the cost per input constant on
collections of millions of files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from affectlens.errors import AffectlensError

#: the hidden folder of an engine run inside ``--out`` (``predict``'s cleanup never touches hidden files)
STATE_DIR = ".affectlens"
LEDGER = "ledger.jsonl"
PARTS = "parts"
VERSION = 1


def input_key(path: Path | str, sha256: str) -> str:
    """The ledger key of one input: its content hash and the path its records carry."""
    return hashlib.sha256(f"{sha256}\0{path}".encode()).hexdigest()[:32]


def has_ledger(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds an engine run's ledger (a rerun into it resumes)."""
    return (Path(out_dir) / STATE_DIR / LEDGER).is_file()


class Ledger:
    """The ledger of one output folder: read on open, appended to as inputs finish."""

    def __init__(self, out_dir: Path, settings: dict[str, Any], *, restart: bool = False) -> None:
        """Open (or start) the ledger of ``out_dir`` for a run with ``settings``.

        A ledger made with other settings holds records that this run would not write: without
        ``restart`` that is a one-line error; with it (``--exist-ok``) the earlier state is dropped.
        """
        self.folder = Path(out_dir) / STATE_DIR
        self.path = self.folder / LEDGER
        self.parts = self.folder / PARTS
        self.settings = settings
        self.entries: dict[str, dict[str, Any]] = {}
        earlier = self._read() if self.path.is_file() else None
        if earlier is not None and earlier != settings:
            if not restart:
                changed = sorted(k for k in {*earlier, *settings} if earlier.get(k) != settings.get(k))
                raise AffectlensError(
                    f"--out {out_dir}: holds an earlier run with other settings ({', '.join(changed)}); "
                    f"pass --exist-ok to start it over, or choose another folder")
            earlier = None
        if earlier is None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.entries = {}
            self.parts.mkdir(parents=True, exist_ok=True)
            self._append({"ledger": VERSION, "settings": settings})
        self.parts.mkdir(parents=True, exist_ok=True)

    def done(self, key: str) -> dict[str, Any] | None:
        """The entry of a finished input, or None."""
        return self.entries.get(key)

    def record(self, key: str, entry: dict[str, Any]) -> None:
        """Mark one input finished (call only once its outputs are complete)."""
        if key in self.entries:  # a retried unit that had already reported: exactly once
            return
        self._append({"key": key, **entry})
        self.entries[key] = entry

    def _append(self, line: dict[str, Any]) -> None:
        data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, data)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def _read(self) -> dict[str, Any] | None:
        """The settings of the earlier run (None: no usable header) and its entries into ``self.entries``."""
        settings = None
        with self.path.open("rb") as handle:
            for raw in handle:
                if not raw.endswith(b"\n"):
                    break  # a torn last line: that input is done again
                try:
                    line = json.loads(raw)
                except ValueError:
                    break
                if "ledger" in line:
                    settings = line.get("settings") if line.get("ledger") == VERSION else None
                elif settings is not None and "key" in line:
                    key = line.pop("key")
                    self.entries[key] = line
        return settings
