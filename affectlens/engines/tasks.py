"""The units of work an engine hands to its workers, and what comes back.

Plain picklable dataclasses, so the same units travel through a process pool's pipe or Ray's
object store. Photos travel in batches (one message per few photos, not per photo: scheduling
costs milliseconds, a photo tens of them); a video is one unit of its own (its frames depend on
each other through the face tracker, so it is not cut).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from affectlens.inference.camera import LoopStats
from affectlens.inference.options import PredictOptions


@dataclass(frozen=True)
class InputTask:
    """One input: where it is, what it is, and every name its outputs get (fixed by the driver)."""

    #: position in ``predict``'s order (photos first, then videos): where its records go in the files
    index: int
    path: Path
    kind: str  # "image" | "video"
    sha256: str
    #: the ledger's key: content hash and the path as the records name it
    key: str
    #: bytes, for the ETA (a long video weighs more than a photo)
    size: int
    annotated: Path | None = None
    timeline: Path | None = None


@dataclass(frozen=True)
class WorkUnit:
    """What one worker call processes: a few photos or one video."""

    tasks: tuple[InputTask, ...]

    @property
    def kind(self) -> str:
        return self.tasks[0].kind


@dataclass(frozen=True)
class RunSettings:
    """Everything a worker needs besides its unit: the options, where parts go, what to write."""

    options: PredictOptions
    #: the hidden folder of per-input record parts (``<out>/.affectlens/parts``)
    parts: Path
    #: also write a CSV part per input (``--format`` has csv)
    csv: bool = True
    every: int = 1
    max_frames: int | None = None
    #: classifier/detector threads per worker when ``options.threads`` is None (cores / workers)
    threads: int | None = None
    #: a test hook: the file name on which a worker process exits once (see :mod:`.worker`)
    exit_once_on: str | None = None


@dataclass
class Outcome:
    """What became of one input in a worker: done (its parts complete), or one line of error."""

    task: InputTask
    error: str | None = None
    #: the error is a full disk or read-only folder: no later input can be written either
    fatal: bool = False
    records: int = 0
    frames: int = 0
    faces: int = 0
    notices: list[str] = field(default_factory=list)
    #: a video's loop statistics (the per-video line ``predict`` prints)
    video: LoopStats | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def make_units(tasks: Sequence[InputTask], workers: int, max_batch: int = 8) -> list[WorkUnit]:
    """Videos one per unit, largest first (a long video started last would run alone at the end);
    then photos in batches small enough that every worker gets several."""
    videos = sorted((t for t in tasks if t.kind == "video"), key=lambda t: -t.size)
    photos = [t for t in tasks if t.kind == "image"]
    batch = max(1, min(max_batch, len(photos) // max(1, 4 * workers)))
    units = [WorkUnit((task,)) for task in videos]
    units += [WorkUnit(tuple(photos[i:i + batch])) for i in range(0, len(photos), batch)]
    return units


def split(unit: WorkUnit) -> list[WorkUnit]:
    """A unit as single-input units: after a worker died on it, its innocent photos are not retried as one."""
    return [WorkUnit((task,)) for task in unit.tasks]


#: how often a unit may take its worker process down before its inputs are failed (a poison input)
MAX_RETRIES = 3


def worker_died(unit: WorkUnit, times: int) -> list[Outcome]:
    """The outcomes of a unit whose worker process died on it ``times`` times: one line per input."""
    return [Outcome(task, error=f"{task.path}: the worker process died while processing it "
                                f"({times} time{'s' if times != 1 else ''}; out of memory, or a crash in a decoder?)")
            for task in unit.tasks]
