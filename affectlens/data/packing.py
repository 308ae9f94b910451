"""``affectlens pack``: decode a dataset's images once into a packed store that resumes when stopped.

Packing millions of frames takes hours, so it must survive a kill: images are written chunk by
chunk into ``images.partial.npy`` (a memory-mapped ``.npy`` made at full size up front), and after
each chunk is flushed to disk ``packing.json`` records how many images are in. A stopped run,
killed outright or not, continues from the last recorded chunk when the same command runs again
(a chunk written but not yet recorded is written again, byte for byte the same). The index and
``store.json`` are written, each atomically, only when every image is in, so a folder with
``store.json`` is always a complete store (layout: :mod:`affectlens.data.packed`).

Packing refuses an existing store, or an unfinished one packed from other images, unless told
``exist_ok``; it resumes its own unfinished work without being told.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from affectlens.data.dataset import EmotionDataset
from affectlens.data.packed import (
    FORMAT,
    IMAGES_FILE,
    INDEX_FILE,
    PARTIAL_IMAGES,
    PROGRESS_FILE,
    STORE_FILE,
    VERSION,
    read_json,
    write_index,
)
from affectlens.errors import AffectlensError
from affectlens.utils.outputs import EXIST_OK_HINT, atomic_path, prepare_output_dir

#: images decoded and written between two progress records
CHUNK = 512


@dataclass(frozen=True)
class PackResult:
    """What a packing run did."""

    store: Path
    images: int
    image_shape: tuple[int, int, int]
    resumed_at: int
    skipped: int
    bytes: int


def fingerprint(dataset: EmotionDataset) -> str:
    """Identifies the images being packed: shape, classes, labels and where each image comes from.

    A resumed run must continue the same job; packing other files into the rest of the array
    would make a store whose first half belongs to another dataset.
    """
    digest = hashlib.sha256()
    head = {"shape": [len(dataset), *dataset.image_size, dataset.channels], "classes": list(dataset.class_names)}
    digest.update(json.dumps(head).encode())
    digest.update(np.ascontiguousarray(dataset.labels, np.int64).tobytes())
    ids = dataset.paths if dataset.paths is not None else dataset.source_ids
    for item in ids if ids is not None else []:
        digest.update(str(item).encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()


def pack_dataset(dataset: EmotionDataset, out: str | Path, *, exist_ok: bool = False,
                 inputs: Iterable[str | Path] = (), chunk_size: int = CHUNK, workers: int = 1,
                 progress: bool = True) -> PackResult:
    """Pack ``dataset``'s images into the store folder ``out``, resuming an unfinished run of the same job.

    Args:
        dataset: any dataset (files read lazily are decoded here, ``workers`` at a time).
        out: the store folder.
        exist_ok: replace an existing store, or an unfinished one of other images.
        inputs: the command's inputs, which ``out`` must not be.
        chunk_size: images between two progress records (a resumed run repeats at most one chunk).
        workers: threads decoding image files (decoding releases the GIL).
        progress: show a progress bar on terminals.
    """
    folder = Path(out).expanduser()
    n = len(dataset)
    if n == 0:
        raise AffectlensError(f"dataset '{dataset.name}' has no images to pack")
    shape = (n, *dataset.image_size, dataset.channels)
    job = fingerprint(dataset)
    state = _resumable_state(folder, job, exist_ok, inputs)
    if state is None:
        for stale in (PARTIAL_IMAGES, PROGRESS_FILE):
            (folder / stale).unlink(missing_ok=True)
        images = np.lib.format.open_memmap(folder / PARTIAL_IMAGES, mode="w+", dtype=np.uint8, shape=shape)
        state = {"fingerprint": job, "total": n, "packed": 0, "image_shape": list(shape[1:]), "skipped": [],
                 "source": str(dataset.meta.get("source", dataset.name))}
        _write_json(folder / PROGRESS_FILE, state)
    else:
        images = np.lib.format.open_memmap(folder / PARTIAL_IMAGES, mode="r+")
        if images.shape != shape or images.dtype != np.uint8:
            raise AffectlensError(f"{folder / PARTIAL_IMAGES}: holds {images.dtype} {images.shape}, this job packs "
                                  f"uint8 {shape}; pass --exist-ok to start over")
    resumed_at = int(state["packed"])
    bar = tqdm(total=n, initial=resumed_at, desc=f"packing {dataset.name}", unit="img", dynamic_ncols=True,
               disable=None if progress else True)
    with _decoder(workers) as decode:
        for start in range(resumed_at, n, chunk_size):
            idx = np.arange(start, min(n, start + chunk_size))
            batch, unreadable = _read_chunk(dataset, idx, decode)
            images[start:start + len(idx)] = batch
            images.flush()  # the pixels are on disk before the record says they are
            state["packed"] = int(idx[-1]) + 1
            state["skipped"] += unreadable
            _write_json(folder / PROGRESS_FILE, state)
            bar.update(len(idx))
    bar.close()
    del images
    return _finish(dataset, folder, state, resumed_at)


def _resumable_state(folder: Path, job: str, exist_ok: bool, inputs: Iterable[str | Path]) -> dict[str, Any] | None:
    """The progress of an unfinished run of this job in ``folder`` (to resume), or None (start afresh).

    Refuses, unless ``exist_ok``: a complete store, an unfinished store of other images, or any
    other non-empty folder (the rule of :func:`~affectlens.utils.outputs.prepare_output_dir`).
    """
    progress = folder / PROGRESS_FILE
    state = read_json(progress) if progress.is_file() else None
    if state is not None and state.get("fingerprint") == job:
        prepare_output_dir(folder, exist_ok=True, inputs=inputs)  # the input and writability checks
        return state if (folder / PARTIAL_IMAGES).is_file() else None
    if not exist_ok and (folder / STORE_FILE).is_file():
        raise AffectlensError(f"--out {folder}: is a packed store already; {EXIST_OK_HINT} --out")
    if not exist_ok and state is not None:
        raise AffectlensError(f"--out {folder}: holds an unfinished store of other images ({state.get('packed')} of "
                              f"{state.get('total')} from {state.get('source')}); pass --exist-ok to start over, "
                              "or choose another --out")
    prepare_output_dir(folder, exist_ok=exist_ok, inputs=inputs)
    return None


@contextmanager
def _decoder(workers: int) -> Iterator[Any]:
    """``map`` over image reads: a thread pool when ``workers`` > 1 (decoders release the GIL)."""
    if workers <= 1:
        yield map
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pack") as pool:
        yield pool.map


def _read_chunk(dataset: EmotionDataset, idx: np.ndarray, decode: Any) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Images ``idx``; a file that cannot be read stays black and is listed (the store marks it unreadable)."""
    if dataset.paths is None:
        return dataset.batch(idx), []

    def read(i: int) -> tuple[np.ndarray | None, str]:
        try:
            return dataset.image(i), ""
        except AffectlensError as exc:
            return None, str(exc)

    batch = np.zeros((len(idx), *dataset.image_size, dataset.channels), np.uint8)
    unreadable: list[dict[str, Any]] = []
    for j, (i, (image, error)) in enumerate(zip(idx.tolist(), decode(read, idx.tolist()), strict=True)):
        if image is None:
            file = str(dataset.paths[i])
            unreadable.append({"row": i, "file": file, "kind": "unreadable", "reason": error.removeprefix(f"{file}: ")})
        else:
            batch[j] = image
    return batch, unreadable


def _finish(dataset: EmotionDataset, folder: Path, state: dict[str, Any], resumed_at: int) -> PackResult:
    """Move the images into place and write the index, then ``store.json`` (last: it marks a complete store)."""
    readable = np.ones(len(dataset), bool)
    readable[np.array([s["row"] for s in state["skipped"]], np.int64)] = False
    (folder / STORE_FILE).unlink(missing_ok=True)  # a store replaced with exist_ok is unfinished until the end
    with atomic_path(folder / INDEX_FILE) as partial:
        write_index(dataset, readable, partial)
    os.replace(folder / PARTIAL_IMAGES, folder / IMAGES_FILE)
    source_skipped = [{k: str(v) for k, v in s.items()} for s in dataset.meta.get("skipped", [])]
    info = {
        "format": FORMAT, "version": VERSION, "name": dataset.name, "source": state["source"],
        "count": len(dataset), "image_shape": state["image_shape"], "class_names": list(dataset.class_names),
        "readable": int(readable.sum()), "fingerprint": state["fingerprint"],
        "skipped": [*source_skipped, *({k: v for k, v in s.items() if k != "row"} for s in state["skipped"])],
        **({"valence_range": list(dataset.meta["valence_range"])} if dataset.meta.get("valence_range") else {}),
    }
    _write_json(folder / STORE_FILE, info)
    (folder / PROGRESS_FILE).unlink(missing_ok=True)
    return PackResult(folder, len(dataset), tuple(state["image_shape"]), resumed_at, len(state["skipped"]),
                      (folder / IMAGES_FILE).stat().st_size)


def _write_json(path: Path, value: dict[str, Any]) -> None:
    with atomic_path(path) as partial:
        partial.write_text(json.dumps(value, indent=1) + "\n", encoding="utf-8")
