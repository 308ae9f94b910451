"""``--engine ray``: model-holding Ray actors, embedded on this machine or on an existing cluster.

The Ray Data pattern (``map_batches`` over a model actor with ``concurrency=N``) written out: N
actors each load the detector and classifier once; the driver hands each at most two units at a
time (one running, one queued, so an actor never waits for the driver), which bounds the inputs
in flight however large the collection. Photos travel in batches, a video is one unit.

Where it runs:

- no ``address``: Ray starts embedded here with ``num_cpus=workers``, no dashboard, nothing to set
  up, and stops at the end;
- ``address`` (``auto``, ``HOST:6379`` or ``ray://HOST:10001``): an existing cluster, left running;
- Ray already initialised in this process (a notebook, a test): that one, left running.

Faults: actors restart when their process dies (``max_restarts=-1``) and the call they held is
retried (``max_task_retries``). A unit whose retries are spent is split into single inputs (its
innocent photos are tried alone) and a single input that still kills its worker is listed as
failed. Every node reads the inputs and writes ``--out`` at the same paths: on a cluster those
are on shared storage.

Ray is imported here only, lazily: without it ``--engine ray`` is one line naming the extra.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any

from affectlens.engines.tasks import MAX_RETRIES, Outcome, RunSettings, WorkUnit, split, worker_died
from affectlens.engines.worker import Worker
from affectlens.errors import AffectlensError

#: units queued per actor (one running, one waiting)
DEPTH = 2
#: seconds a cluster's address may take to accept a connection
PROBE_TIMEOUT = 5.0
#: seconds to wait for the first actor to start (model loaded) before the run is given up
START_TIMEOUT = 300.0
#: the embedded object store: only small messages travel (paths out, outcomes back), so the 30%
#: of memory Ray takes by default would be wasted; 100 MB is about Ray's minimum
EMBEDDED_OBJECT_STORE = 100 * 1024 * 1024

NO_RAY = ("--engine ray needs Ray, which is not installed: pip install 'affectlens[batch]' "
          "(or use --engine process, which needs nothing more)")


def import_ray() -> Any:
    """The ``ray`` module, or the one-line error of :data:`NO_RAY`."""
    try:
        import ray
    except ImportError:
        raise AffectlensError(NO_RAY) from None
    return ray


def probe_address(address: str) -> None:
    """A quick TCP connect to ``HOST:PORT`` / ``ray://HOST:PORT``: Ray itself retries an address where
    nothing listens for minutes, in many log lines, before it gives up."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if address == "auto" or not host or not port.isdigit():
        return  # ``auto`` is found through local files; a malformed address is Ray's to name
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT).close()
    except OSError as exc:
        raise AffectlensError(f"--address {address}: no Ray cluster answers there ({exc.strerror or exc}); "
                              f"start one with `ray start --head`, or leave out --address for Ray embedded "
                              f"here") from None


class RayEngine:
    """N worker actors on an embedded or existing Ray cluster."""

    name = "ray"

    def __init__(self, settings: RunSettings, workers: int | None, address: str | None, *,
                 local_cpus: int) -> None:
        ray = self.ray = import_ray()
        self.started = False
        if not ray.is_initialized():
            # ERROR: Ray's start-up notices (token authentication, ...) are not this command's to print
            common = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False}
            if address is None:
                ray.init(num_cpus=workers or local_cpus, object_store_memory=EMBEDDED_OBJECT_STORE, **common)
            else:
                probe_address(address)
                try:
                    ray.init(address=address, **common)
                except (ConnectionError, RuntimeError, ValueError) as exc:
                    raise AffectlensError(f"--address {address}: cannot connect to a Ray cluster "
                                          f"({' '.join(str(exc).split())[:200]})") from None
            self.started = True
        resources = ray.cluster_resources()
        self.workers = workers or max(1, int(resources.get("CPU", 1)))
        options: dict[str, Any] = {"num_cpus": 1, "max_restarts": -1, "max_task_retries": MAX_RETRIES}
        if settings.options.backend == "torch" and settings.options.device.startswith("cuda"):
            gpus = resources.get("GPU", 0)
            if not gpus:
                raise AffectlensError(f"--device {settings.options.device}: the Ray cluster has no GPU")
            options["num_gpus"] = min(1.0, gpus / self.workers)  # actors share GPUs when there are fewer
        self.gpus = "num_gpus" in options
        self.actor_class = ray.remote(Worker).options(**options)
        self.settings = settings
        self.actors: list[Any] = []

    def run(self, units: Sequence[WorkUnit], on_outcomes: Callable[[list[Outcome]], None]) -> None:
        """Process ``units``; ``on_outcomes`` gets each unit's outcomes as it completes (in the driver).

        Units go only to actors that have started (their model loaded): an actor the cluster has no
        room for yet (an autoscaler adding nodes, fewer CPUs than ``--workers``) gets work once it
        starts, and never holds units hostage meanwhile.
        """
        ray = self.ray
        self.actors = [self.actor_class.remote(self.settings) for _ in range(self.workers)]
        starting = {actor.ready.remote(): index for index, actor in enumerate(self.actors)}
        ready: list[int] = []
        queue = deque(units)
        load = [0] * len(self.actors)
        in_flight: dict[Any, tuple[int, WorkUnit]] = {}
        while queue or in_flight:
            for index in sorted(ready, key=load.__getitem__):
                while queue and load[index] < DEPTH:
                    unit = queue.popleft()
                    in_flight[self.actors[index].run.remote(unit)] = (index, unit)
                    load[index] += 1
            if not in_flight and not starting:
                raise AffectlensError("no Ray worker could start (see the Ray logs of the cluster)")
            timeout = None if in_flight else START_TIMEOUT
            finished, _ = ray.wait([*in_flight, *starting], num_returns=1, timeout=timeout)
            if not finished:
                raise AffectlensError(f"no Ray worker started within {START_TIMEOUT:.0f} s: does the cluster have "
                                      f"the resources asked for (1 CPU{', a GPU' if self.gpus else ''} per worker)?")
            (ref,) = finished
            if ref in starting:
                index = starting.pop(ref)
                with suppress(ray.exceptions.RayError):  # an actor that cannot start gets no work
                    ray.get(ref)
                    ready.append(index)
                continue
            index, unit = in_flight.pop(ref)
            load[index] -= 1
            try:
                outcomes = ray.get(ref)
            except ray.exceptions.RayError:  # the actor died more often than its call may be retried
                if len(unit.tasks) > 1:  # which photo was it? each alone, with retries of its own
                    queue.extendleft(split(unit))
                else:
                    on_outcomes(worker_died(unit, MAX_RETRIES + 1))
                continue
            on_outcomes(outcomes)

    def close(self) -> None:
        """Stop the actors: shutting down (embedded) or disconnecting (a cluster) ends the actors this
        driver owns; in a Ray this process did not start (a notebook's), they are killed one by one."""
        ray, actors, self.actors = self.ray, self.actors, []
        if self.started:
            ray.shutdown()
            return
        for actor in actors:
            with suppress(Exception):  # already gone
                ray.kill(actor)
