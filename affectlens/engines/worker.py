"""What runs inside a worker process: the recognizer, loaded once, applied to unit after unit.

Why a class: a process pool's initializer and a Ray actor both build it once per process, so the
detector and classifier load once per worker, not once per input. Each input's records go to its
own part files (``<out>/.affectlens/parts/<key>.jsonl`` / ``.csv``), written under a temporary
name and renamed into place when the input is complete: a worker killed mid-input leaves no part,
and a retried input replaces its part whole, so no record is ever written twice.

A test hook, never set by users: ``AFFECTLENS_TEST_EXIT_ON=<file name>`` (read by the driver and
handed over in :class:`~.tasks.RunSettings`) makes a worker process exit at once, the first time
it meets that file, as if it had been killed: the tests prove that the run still completes.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from affectlens.engines.tasks import InputTask, Outcome, RunSettings, WorkUnit
from affectlens.errors import AffectlensError
from affectlens.inference.batch import predict_image, predict_video, record_writers, write_error
from affectlens.inference.recognizer import Recognizer
from affectlens.inference.types import ImageResult

log = logging.getLogger(__name__)

#: the exit status of a worker that the test hook ends (any status would do: the process is gone)
TEST_EXIT_STATUS = 70


def part_paths(parts: Path, key: str) -> tuple[Path, Path]:
    """The JSONL and CSV parts of the input with ledger key ``key``."""
    return parts / f"{key}.jsonl", parts / f"{key}.csv"


class Worker:
    """The recognizer of one worker process and the per-input step around it."""

    def __init__(self, settings: RunSettings) -> None:
        """Load the detector and classifier; a load that fails (a bad ``--device``, a model file that
        is not there on this node) is kept as ``error`` and answers every unit, so the driver stops
        the run with that one line instead of retrying workers that can never start."""
        options, extra = settings.options, {}
        if options.threads is None and settings.threads:
            # N workers on N cores: few threads each, not up to 4 each (which only adds switching)
            options = replace(options, threads=settings.threads)
            if options.detector == "centerface":
                extra["detector_options"] = {"num_threads": settings.threads}
        self.settings = settings
        self.error: str | None = None
        self.recognizer: Recognizer | None = None
        try:
            self.recognizer = Recognizer.from_options(options, **extra)
        except AffectlensError as exc:
            self.error = str(exc)
        except Exception as exc:  # a node without the backend's packages, a broken install: one line too
            self.error = f"a worker cannot load the model ({type(exc).__name__}: {' '.join(str(exc).split())})"

    def ready(self) -> int:
        """The process id, once the model is loaded (the engines wait on it before the first unit)."""
        return os.getpid()

    def run(self, unit: WorkUnit) -> list[Outcome]:
        """Every input of ``unit``; a failing input is an outcome with an error, never an exception."""
        if self.recognizer is None:
            return [Outcome(task, error=self.error, fatal=True) for task in unit.tasks]
        return [self.run_one(self.recognizer, task) for task in unit.tasks]

    def run_one(self, recognizer: Recognizer, task: InputTask) -> Outcome:
        """One input into its parts (see the module docstring)."""
        self._test_exit(task)
        started = time.perf_counter()
        outcome = Outcome(task)
        jsonl, csv = part_paths(self.settings.parts, task.key)
        tag = f".{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
        staged = [jsonl.with_name(jsonl.name + tag), csv.with_name(csv.name + tag) if self.settings.csv else None]
        try:
            with record_writers(recognizer, *staged) as sinks:
                counted = [*sinks, _counter(outcome)]
                if task.kind == "image":
                    result = predict_image(recognizer, task.path, counted, on_notice=outcome.notices.append,
                                           annotated=(lambda: task.annotated) if task.annotated else None)
                    outcome.faces = len(result.faces)
                else:
                    outcome.video = predict_video(
                        recognizer, task.path, counted, every=self.settings.every,
                        smoothing=self.settings.options.smoothing, max_frames=self.settings.max_frames,
                        annotated=task.annotated, timeline=task.timeline, progress=False)
                    outcome.frames, outcome.faces = outcome.video.frames, outcome.video.faces
        except AffectlensError as exc:
            outcome.error = str(exc)
        except OSError as exc:
            try:
                outcome.error = str(write_error(task.path, exc))
            except AffectlensError as fatal:  # a full disk: no later input can be written either
                outcome.error, outcome.fatal = str(fatal), True
        except Exception as exc:  # a bug met on one input: one line naming it, the collection goes on
            log.debug("%s failed", task.path, exc_info=True)
            outcome.error = f"{task.path}: failed ({type(exc).__name__}: {' '.join(str(exc).split())})"
        finally:
            # the records that exist, also those of an input that failed part-way (``predict`` keeps
            # them in its files too); a part with no record is removed, so no stale part outlives a rerun
            for temporary, final in zip(staged, (jsonl, csv), strict=True):
                if temporary is None:
                    continue
                if temporary.exists():
                    os.replace(temporary, final)
                else:
                    final.unlink(missing_ok=True)
        outcome.seconds = time.perf_counter() - started
        return outcome

    def _test_exit(self, task: InputTask) -> None:
        """The test hook of the module docstring: exit once on the named file (a marker file says 'once')."""
        if self.settings.exit_once_on != task.path.name:
            return
        marker = self.settings.parts.parent / f"test-exited-on-{task.path.name}"
        if not marker.exists():
            marker.touch()
            os._exit(TEST_EXIT_STATUS)


def _counter(outcome: Outcome) -> Callable[[ImageResult], None]:
    def count(result: ImageResult) -> None:
        outcome.records += 1

    return count
