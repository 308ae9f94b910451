"""Whole collections on several processes: ``affectlens predict --engine process|ray``.

Why a package of its own: ``predict`` walks its inputs one after another in one process, which
leaves all but one core idle on a folder of thousands of photos or hours of video. An engine runs
the same per-input step (:func:`affectlens.inference.batch.predict_image` / ``predict_video``) in
worker processes that each load the detector and classifier once, and writes the same records.

One job per module:

- :mod:`.tasks`: the picklable units of work (a batch of photos, or one video) and their outcomes
- :mod:`.worker`: what runs in a worker process: the recognizer, loaded once, applied to units
- :mod:`.process_engine`: a local :class:`~concurrent.futures.ProcessPoolExecutor` (no extra needed)
- :mod:`.ray_engine`: Ray actors, embedded on this machine or on an existing cluster (``affectlens[batch]``)
- :mod:`.ledger`: the done-ledger that makes a rerun skip finished inputs (by content hash)
- :mod:`.assemble`: per-input parts joined into ``predictions.jsonl`` / ``.csv`` in ``predict``'s order
- :mod:`.parquet`: the collection's Parquet file (schema in its docstring and the README)
- :mod:`.progress`: inputs done/total, frames, faces/s and ETA on stderr
- :mod:`.collection`: the driver that ties them together (:func:`run_collection`)

Ray and pyarrow are imported only inside the functions that need them: ``import affectlens``
and ``--engine process`` never need the extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from affectlens.engines.collection import CollectionCounts, run_collection

__all__ = ["CollectionCounts", "run_collection"]


def __getattr__(name: str) -> Any:
    """The driver on first use: importing the package stays free of OpenCV and ONNX Runtime."""
    if name in __all__:
        from affectlens.engines import collection

        return getattr(collection, name)
    raise AttributeError(name)
