"""``--engine process``: a local pool of worker processes, nothing to install.

Why this beside Ray: it needs only the standard library, so ``--engine process`` works on every
install of affectlens, and on one machine it does what the embedded Ray does, with less start-up.
Each process loads the model once (the pool's initializer); at most ``2 x workers`` units are in
flight (backpressure: the driver never queues a million photos into the pool at once).

A worker process that dies (killed, out of memory, a crash in a decoder) breaks the whole pool in
:class:`~concurrent.futures.ProcessPoolExecutor`, and the pool cannot say which unit killed it.
So every unit in flight becomes a *suspect*: a new pool runs the suspects one at a time, each
alone, with photo batches split into single photos. A suspect that passes is done; one that
kills its worker alone is the cause: after :data:`~.tasks.MAX_RETRIES` retries it is listed as
failed. No input is lost, and innocent inputs never fail for a neighbour's crash.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from affectlens.engines.tasks import MAX_RETRIES, Outcome, RunSettings, WorkUnit, split, worker_died
from affectlens.engines.worker import Worker

#: the worker of this process (set by the pool's initializer)
_WORKER: Worker | None = None


def _initialize(settings: RunSettings) -> None:
    """Load the model once per process. Ctrl-C is the driver's to handle: it ends the workers itself."""
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER = Worker(settings)


def _run(unit: WorkUnit) -> list[Outcome]:
    assert _WORKER is not None, "the pool initializer did not run"
    return _WORKER.run(unit)


class ProcessEngine:
    """A :class:`ProcessPoolExecutor` (spawned processes) that survives the death of its workers."""

    name = "process"

    def __init__(self, settings: RunSettings, workers: int) -> None:
        self.settings, self.workers = settings, workers
        self.pool: ProcessPoolExecutor | None = None

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: a clean interpreter per worker (no copied threads or locks of the driver),
        # as on macOS and Windows, where spawn is the only safe start
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_initialize, initargs=(self.settings,))

    def run(self, units: Sequence[WorkUnit], on_outcomes: Callable[[list[Outcome]], None]) -> None:
        """Process ``units``; ``on_outcomes`` gets each unit's outcomes as it completes (in the driver)."""
        queue = deque(units)
        suspects: deque[WorkUnit] = deque()
        deaths: Counter[WorkUnit] = Counter()
        in_flight: dict[Future[list[Outcome]], WorkUnit] = {}
        self.pool = self._new_pool()
        while queue or suspects or in_flight:
            if suspects:
                if not in_flight:  # a suspect runs alone: if its worker dies, it is the cause
                    unit = suspects.popleft()
                    in_flight[self.pool.submit(_run, unit)] = unit
            else:
                while queue and len(in_flight) < 2 * self.workers:
                    unit = queue.popleft()
                    in_flight[self.pool.submit(_run, unit)] = unit
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            if not any(isinstance(future.exception(), BrokenProcessPool) for future in finished):
                for future in finished:
                    on_outcomes(future.result())
                    del in_flight[future]
                continue
            # a worker died: the pool is broken and fails every future it had; keep what had finished
            wait(in_flight)
            victims = []
            for future, unit in in_flight.items():
                if isinstance(future.exception(), BrokenProcessPool):
                    victims.append(unit)
                else:
                    on_outcomes(future.result())
            alone = len(in_flight) == 1
            in_flight.clear()
            self._discard_pool()
            self.pool = self._new_pool()
            for unit in victims:
                deaths[unit] += 1
            if alone:  # the cause, certainly
                (unit,) = victims
                if deaths[unit] > MAX_RETRIES:
                    on_outcomes(worker_died(unit, deaths[unit]))
                else:
                    suspects.appendleft(unit)
            else:  # one of them; a photo batch is split (its pieces start afresh), so each is tried alone
                suspects.extend(piece for unit in victims for piece in (split(unit) if len(unit.tasks) > 1 else [unit]))

    def close(self) -> None:
        """End the workers now (Ctrl-C, an error): an unfinished input is simply done again on a rerun."""
        self._discard_pool()

    def _discard_pool(self) -> None:
        pool, self.pool = self.pool, None
        if pool is None:
            return
        pool.shutdown(wait=False, cancel_futures=True)
        terminate = getattr(pool, "terminate_workers", None)  # Python 3.14
        if terminate is not None:
            terminate()
            return
        for process in list((getattr(pool, "_processes", None) or {}).values()):  # before 3.14: no public way
            if process.is_alive():
                process.terminate()
