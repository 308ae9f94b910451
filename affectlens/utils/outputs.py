"""Where commands write: one rule for every command, and files that are never half-written.

The rule, the same for ``predict``, ``camera``, ``export``, ``split``, ``inspect`` and ``evaluate``:

- An output that already holds something is never written over unless the user says
  ``--exist-ok``: a folder output must be absent or empty, a file output must be absent. The
  check runs before any work, so a refused run costs nothing and changes nothing.
- With ``--exist-ok``, each file this run writes replaces the one of the same name only once it
  is complete; files the run does not write stay as they were, except that ``predict`` removes
  the earlier run's own outputs it did not write again once it has processed an input
  (:func:`affectlens.inference.batch.remove_earlier_outputs`), so its folder never mixes two runs.
- One folder output belongs to one run at a time: the run holds a lock on the folder from the
  check until it ends, so two runs started together into the same new folder cannot both see it
  empty and mix (or lose) their records; the second is refused with one line.
- No output may be one of the command's own inputs (``split m.csv -o m.csv``), with or without
  ``--exist-ok``; an output that is an existing file where a folder is needed (or the reverse),
  or that cannot be created, is one line naming it.

Files are written under a ``<stem>.partial<suffix>`` name beside their final name and renamed
into place (an atomic step on one file system) when complete: readers of the final name only
ever see whole files, and a run killed outright leaves its records in the ``.partial`` file.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from affectlens.errors import AffectlensError

PARTIAL = ".partial"
EXIST_OK_HINT = "pass --exist-ok to replace its files, or choose another"


def prepare_output_dir(
    path: str | Path, *, exist_ok: bool = False, inputs: Iterable[str | Path | int] = (), option: str = "--out"
) -> Path:
    """Check and create a folder output by the rule above; returns the folder."""
    folder = Path(path).expanduser()
    _refuse_inputs(folder, inputs, option)
    if folder.exists() and not folder.is_dir():
        raise AffectlensError(f"{option} {folder}: is an existing file, not a folder")
    _make_dir(folder, option)
    _lock_for_this_run(folder, option)
    if not exist_ok and _has_entries(folder):
        raise AffectlensError(f"{option} {folder}: folder is not empty (an earlier run?); {EXIST_OK_HINT} {option}")
    _probe_writable(folder, option, folder)
    return folder


def prepare_output_file(
    path: str | Path, *, exist_ok: bool = False, inputs: Iterable[str | Path | int] = (), option: str = "--out"
) -> Path:
    """Check a file output by the rule above and create its folder; returns the path."""
    file = Path(path).expanduser()
    _refuse_inputs(file, inputs, option)
    if file.is_dir():
        raise AffectlensError(f"{option} {file}: is a folder; give a file name")
    if file.exists() and not exist_ok:
        raise AffectlensError(f"{option} {file}: file already exists; {EXIST_OK_HINT} {option}")
    _make_dir(file.parent, option, file)
    _probe_writable(file.parent, option, file)
    return file


def partial_path(path: str | Path) -> Path:
    """``dir/name.partial.ext``: where ``dir/name.ext`` is written until it is complete."""
    path = Path(path)
    return path.with_name(f"{path.stem}{PARTIAL}{path.suffix}")


def commit(partial: Path, final: Path) -> Path:
    """Move a complete ``partial`` file onto ``final`` (atomic within one file system)."""
    os.replace(partial, final)
    return final


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield the ``.partial`` path to write; on success it becomes ``path``, on failure it is removed.

    For all-or-nothing files (an annotated image, a manifest, a plot): half of one is worthless.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(final)
    try:
        yield partial
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    commit(partial, final)


@contextmanager
def staged_dir(folder: str | Path) -> Iterator[Path]:
    """Yield a hidden sibling folder to write a whole report into; its files move into ``folder`` at the end.

    A report of many files (Markdown, JSON, CSV, charts) then appears complete or not at all;
    files already in ``folder`` that the report does not write stay untouched.
    """
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}{PARTIAL}-", dir=target.parent))
    try:
        yield stage
        for item in sorted(stage.rglob("*")):
            destination = target / item.relative_to(stage)
            if item.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
            else:
                destination.parent.mkdir(parents=True, exist_ok=True)
                os.replace(item, destination)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


# ------------------------------------------------------------------------------------------- helpers
#: folders this process holds, by (device, inode): one open descriptor each, locked until the process ends
_HELD: dict[tuple[int, int], int] = {}


def _lock_for_this_run(folder: Path, option: str) -> None:
    """Hold an exclusive lock on ``folder`` until this process ends; refuse when another run holds it.

    The lock is taken on the folder itself (``flock`` on a directory descriptor), so no lock file
    appears among the outputs, and the kernel drops it when the process ends however it ends, so
    a killed run never leaves a stale lock. The same process may prepare the same folder again
    (a library caller running twice). Where ``flock`` does not exist (Windows) there is no lock.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux/macOS
        return
    stat = folder.stat()
    key = (stat.st_dev, stat.st_ino)
    if key in _HELD:
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(descriptor)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise AffectlensError(
                f"{option} {folder}: another affectlens run is writing into this folder; wait for it to end "
                f"or choose another"
            ) from None
        return  # a file system without locks (some network mounts): go on unlocked, as before
    _HELD[key] = descriptor


def _has_entries(folder: Path) -> bool:
    with os.scandir(folder) as entries:
        return any(True for _ in entries)


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _refuse_inputs(output: Path, inputs: Iterable[str | Path | int], option: str) -> None:
    for source in inputs:
        if isinstance(source, int):  # a camera index is no file
            continue
        source_path = Path(source).expanduser()
        if _same(output, source_path) or output.resolve() == source_path.resolve():
            raise AffectlensError(f"{option} {output}: is also an input of this command; write to another path")


def _make_dir(folder: Path, option: str, named: Path | None = None) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise AffectlensError(f"{option} {named or folder}: a part of this path is an existing file") from None
    except NotADirectoryError:
        raise AffectlensError(f"{option} {named or folder}: a part of this path is an existing file") from None
    except OSError as exc:
        raise AffectlensError(f"{option} {named or folder}: cannot create folder {folder} ({exc.strerror})") from None


def _probe_writable(folder: Path, option: str, named: Path) -> None:
    """Create and remove a file: the only test of writability that root, ACLs and read-only mounts all honour."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".affectlens-write-test-"):
            pass
    except OSError as exc:
        raise AffectlensError(f"{option} {named}: cannot write in {folder} ({exc.strerror})") from None
