"""The driver of ``predict --engine process|ray``: plan, skip what is done, run, record, join.

1. Every input gets its output names in ``predict``'s order (photos first, then videos), its sha256
   and its ledger key; inputs the ledger holds are skipped (:mod:`.ledger`).
2. The rest become units (photo batches, single videos) and go to the engine, at most a few per
   worker at a time. Each input's outcome comes back to this process, which prints its errors and
   notices as ``predict`` does and appends it to the ledger once its outputs are complete.
3. On every way out (done, Ctrl-C, a fatal error) the parts of the collection are joined into
   ``predictions.jsonl`` / ``.csv`` (the bytes a sequential ``predict`` writes) and
   ``predictions.parquet`` (:mod:`.parquet`), so the folder always holds what is finished.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from affectlens.engines.assemble import join_csv, join_jsonl
from affectlens.engines.ledger import Ledger, input_key
from affectlens.engines.parquet import PARQUET, write_parquet
from affectlens.engines.progress import Progress
from affectlens.engines.tasks import InputTask, Outcome, RunSettings, make_units
from affectlens.engines.worker import part_paths
from affectlens.errors import AffectlensError
from affectlens.inference.batch import RECORDS, BatchCounts, InputPlan, OutputNames, annotated_suffix
from affectlens.inference.camera import LoopStats
from affectlens.inference.options import EngineOptions, PredictOptions
from affectlens.runtime.pretrained import file_sha256

log = logging.getLogger(__name__)

#: the test hook of :mod:`.worker` (a worker exits once on this file name)
TEST_EXIT_ENV = "AFFECTLENS_TEST_EXIT_ON"


@dataclass
class CollectionCounts(BatchCounts):
    """What a collection run did: :class:`BatchCounts` over every finished input, earlier runs' included."""

    #: inputs an earlier run into the same folder had finished (skipped by this one)
    earlier: int = 0
    #: rows of ``predictions.parquet`` (0: not written)
    parquet_rows: int = 0


def local_cpus() -> int:
    """The CPUs this process may use (a container's or ``taskset``'s limit, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def check_engine(engine: EngineOptions) -> None:
    """Fail with one line, before any output exists, when the engine asked for cannot run here."""
    if engine.engine == "ray":
        from affectlens.engines.ray_engine import import_ray, probe_address

        import_ray()
        if engine.address is not None:
            probe_address(engine.address)


def run_collection(
    options: PredictOptions,
    plan: InputPlan,
    out_dir: Path,
    *,
    engine: EngineOptions,
    on_error: Callable[[AffectlensError], None],
    formats: Sequence[str] = tuple(RECORDS),
    annotate: bool = True,
    every: int = 1,
    max_frames: int | None = None,
    restart: bool = False,
    progress: bool | None = None,
    on_notice: Callable[[str], None] = log.warning,
    on_video: Callable[[LoopStats], None] | None = None,
) -> CollectionCounts:
    """Run ``plan`` on ``engine`` into ``out_dir``: the outputs of ``predict``, resumably (module docstring).

    ``restart``: an earlier run's ledger with other settings is dropped instead of refused
    (``--exist-ok``). Errors and notices go to ``on_error``/``on_notice`` as in
    :func:`affectlens.inference.batch.predict_inputs`.
    """
    from affectlens.runtime.resolve import resolve

    model = resolve(options.model)  # a wrong --model is one line now, not one per worker
    ledger = Ledger(out_dir, _settings(options, formats, annotate, every, max_frames), restart=restart)
    tasks = _tasks(plan, out_dir, annotate, on_error)
    pending = [task for task in tasks if ledger.done(task.key) is None]
    earlier = len(tasks) - len(pending)
    workers = engine.workers or local_cpus()
    settings = RunSettings(options=options, parts=ledger.parts, csv="csv" in formats, every=every,
                           max_frames=max_frames, threads=max(1, local_cpus() // workers) if not engine.address else 1,
                           exit_once_on=os.environ.get(TEST_EXIT_ENV) or None)
    meter = Progress(len(tasks), sum(task.size for task in pending), done=earlier, enabled=progress)

    def receive(outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            task = outcome.task
            for notice in outcome.notices:
                on_notice(notice)
            meter.update(ok=outcome.ok, records=outcome.records, faces=outcome.faces, size=task.size)
            if outcome.fatal:
                raise AffectlensError(outcome.error)
            if not outcome.ok:
                on_error(AffectlensError(outcome.error))
                continue
            ledger.record(task.key, {"path": str(task.path), "sha256": task.sha256, "kind": task.kind,
                                     "records": outcome.records, "frames": outcome.frames, "faces": outcome.faces})
            if outcome.video is not None and on_video is not None:
                on_video(outcome.video)

    _clean_staged(ledger.parts)
    try:
        if pending:
            runner = _open_engine(engine, settings, workers)
            try:
                runner.run(make_units(pending, runner.workers), receive)
            finally:
                runner.close()
    finally:
        meter.close()
        _clean_staged(ledger.parts)
        counts = _join(tasks, ledger, out_dir, formats, model.class_names, model.valence_arousal, on_notice)
    counts.earlier = earlier
    names = {path for task in tasks for path in (task.annotated, task.timeline) if path is not None}
    counts.written |= names
    return counts


def _settings(options: PredictOptions, formats: Sequence[str], annotate: bool, every: int,
              max_frames: int | None) -> dict[str, Any]:
    """What the records and files depend on: a ledger made with other values is not resumed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("affectlens")
    except PackageNotFoundError:  # a source tree that is not installed
        release = "unknown"
    return {"affectlens": release, "options": asdict(options), "formats": sorted(formats), "annotate": annotate,
            "every": every, "max_frames": max_frames}


def _tasks(plan: InputPlan, out_dir: Path, annotate: bool,
           on_error: Callable[[AffectlensError], None]) -> list[InputTask]:
    """Every job of ``plan`` in ``predict``'s order, with its hash, key and output names (fixed here, once)."""
    names = OutputNames(out_dir, [job.path for job in plan.jobs])
    ordered = [job for job in plan.jobs if job.kind == "image"] + [job for job in plan.jobs if job.kind == "video"]
    tasks = []
    for index, job in enumerate(ordered):
        try:
            sha = file_sha256(job.path)
            size = job.path.stat().st_size
            if job.kind == "image":
                annotated = names(job.rel, "annotated", annotated_suffix(job.path)) if annotate else None
                timeline = None
            else:
                annotated = names(job.rel, "annotated", ".mp4") if annotate else None
                timeline = names(job.rel, "timeline", ".png")
        except OSError as exc:
            on_error(AffectlensError(f"{job.path}: cannot read the file ({exc.strerror or exc})"))
            continue
        except AffectlensError as exc:
            on_error(exc)
            continue
        tasks.append(InputTask(index, job.path, job.kind, sha, input_key(job.path, sha), size, annotated, timeline))
    return tasks


def _open_engine(engine: EngineOptions, settings: RunSettings, workers: int) -> Any:
    if engine.engine == "process":
        from affectlens.engines.process_engine import ProcessEngine

        return ProcessEngine(settings, workers)
    if engine.engine == "ray":
        from affectlens.engines.ray_engine import RayEngine

        return RayEngine(settings, engine.workers, engine.address, local_cpus=local_cpus())
    raise AffectlensError(f"unknown engine '{engine.engine}' for a collection; valid: process, ray")


def _clean_staged(parts: Path) -> None:
    """Remove parts a killed worker left half-written (named ``*.tmp``; never a finished part)."""
    for staged in parts.glob("*.tmp"):
        with suppress(OSError):
            staged.unlink()


def _join(tasks: Sequence[InputTask], ledger: Ledger, out_dir: Path, formats: Sequence[str],
          class_names: Sequence[str], valence_arousal: bool,
          on_notice: Callable[[str], None]) -> CollectionCounts:
    """The collection's record files from the parts, in ``predict``'s order, and the counts of the ledger."""
    counts = CollectionCounts()
    jsonl_parts = [part_paths(ledger.parts, task.key)[0] for task in tasks]
    if "jsonl" in formats and join_jsonl(jsonl_parts, out_dir / RECORDS["jsonl"]):
        counts.written.add(out_dir / RECORDS["jsonl"])
    if "csv" in formats and join_csv([part_paths(ledger.parts, task.key)[1] for task in tasks],
                                     out_dir / RECORDS["csv"]):
        counts.written.add(out_dir / RECORDS["csv"])
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        on_notice(f"pyarrow is not installed: no {PARQUET} (pip install 'affectlens[batch]')")
    else:
        hashed = [(path, task.sha256) for path, task in zip(jsonl_parts, tasks, strict=True)]
        counts.parquet_rows = write_parquet(hashed, out_dir / PARQUET, class_names, valence_arousal)
        if counts.parquet_rows:
            counts.written.add(out_dir / PARQUET)
    for task in tasks:
        entry = ledger.done(task.key)
        if entry is None:
            continue
        counts.images += task.kind == "image"
        counts.videos += task.kind == "video"
        counts.frames += entry["frames"]
        counts.faces += entry["faces"]
    return counts
