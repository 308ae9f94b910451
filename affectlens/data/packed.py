"""Packed stores: a folder of uint8 images in one memory-mapped array, with an index, read as a dataset.

Aff-Wild2 alone is about 2.8 million frames; decoding that many JPEGs every epoch costs more than
training a small network on them. ``affectlens pack`` (:mod:`affectlens.data.packing`) decodes
them once into a store; every loader, ``train``, ``evaluate`` and ``inspect`` then read it as
dataset kind ``packed``. The layout, all of it plain NumPy files::

    STORE/store.json   format, version, name, source, image shape, class names, skipped files
    STORE/index.npz    one entry per image: labels, soft labels, valence, arousal, subjects,
                       videos, frames, splits, source ids, readable (False: its file could not be read)
    STORE/images.npy   (N, H, W, C) uint8, memory-mapped by readers (numpy.load(mmap_mode="r"))

``store.json`` is written last, so a folder holding it is a complete store; while packing, the
folder holds ``images.partial.npy`` and ``packing.json`` (how many images are in, which source)
instead, and packing resumes from there. The store delivers images at its own size unless a
loader asks for another (``image_size``, ``channels``); then each batch is resized as it is read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from affectlens.data.dataset import EmotionDataset
from affectlens.data.npz import ARCHIVE_ERRORS, archive_error
from affectlens.data.packed_images import PackedImages
from affectlens.errors import AffectlensError

FORMAT = "affectlens-packed-images"
VERSION = 1
STORE_FILE = "store.json"
INDEX_FILE = "index.npz"
IMAGES_FILE = "images.npy"
#: while packing
PROGRESS_FILE = "packing.json"
PARTIAL_IMAGES = "images.partial.npy"

#: index.npz entries and the dataset fields they hold (besides ``labels`` and ``readable``)
COLUMNS = {"soft_labels": "soft_labels", "valence": "valence", "arousal": "arousal", "subjects": "subjects",
           "videos": "videos", "frames": "frames", "splits": "splits", "source_ids": "source_ids"}


def is_store(path: Path) -> bool:
    """Whether ``path`` is a packed store (or one being packed), or its ``store.json``."""
    if path.is_file():
        return path.name == STORE_FILE
    return path.is_dir() and ((path / STORE_FILE).is_file() or (path / PROGRESS_FILE).is_file())


def store_folder(path: str | Path) -> Path:
    """The store folder named by ``path`` (the folder or its ``store.json``); unfinished stores are refused."""
    folder = Path(path)
    folder = folder.parent if folder.is_file() and folder.name == STORE_FILE else folder
    if not folder.is_dir():
        raise AffectlensError(f"{folder}: packed store does not exist")
    if not (folder / STORE_FILE).is_file():
        if (folder / PROGRESS_FILE).is_file():
            progress = read_json(folder / PROGRESS_FILE)
            raise AffectlensError(f"{folder}: packing stopped at {progress.get('packed', '?')} of "
                                  f"{progress.get('total', '?')} images; run the same `affectlens pack` again to "
                                  "finish it")
        raise AffectlensError(f"{folder}: not a packed store (no {STORE_FILE}; make one with `affectlens pack`)")
    return folder


def read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AffectlensError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(value, dict):
        raise AffectlensError(f"{path}: expected a JSON object")
    return value


def read_store_info(folder: Path) -> dict[str, Any]:
    """``store.json``, checked: format, version and the fields readers rely on."""
    info = read_json(folder / STORE_FILE)
    if info.get("format") != FORMAT:
        raise AffectlensError(f"{folder / STORE_FILE}: not an affectlens packed store (format {info.get('format')!r})")
    if info.get("version") != VERSION:
        raise AffectlensError(f"{folder / STORE_FILE}: store version {info.get('version')} is not supported "
                              f"(this affectlens reads version {VERSION}); pack it again")
    for key in ("count", "image_shape", "class_names", "name"):
        if key not in info:
            raise AffectlensError(f"{folder / STORE_FILE}: '{key}' is missing")
    return info


def write_index(dataset: EmotionDataset, readable: np.ndarray, path: Path) -> None:
    """The per-image columns of ``dataset`` as ``index.npz`` (no pickled objects: strings are fixed-width)."""
    arrays: dict[str, np.ndarray] = {"labels": dataset.labels.astype(np.int64), "readable": readable.astype(bool)}
    for name, attr in COLUMNS.items():
        value = getattr(dataset, attr)
        if value is None:
            continue
        value = np.asarray(value)
        arrays[name] = value.astype(str) if value.dtype.kind in "OUS" else value
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]


def load_packed(
    path: str | Path,
    image_size: int | tuple[int, int] | None = None,
    channels: int | None = None,
) -> EmotionDataset:
    """Read a packed store as a dataset whose images are read from the memory map on demand.

    Args:
        path: the store folder (or its ``store.json``).
        image_size: side (or (height, width)) to deliver images at; default the stored size.
        channels: 1 (grey) or 3 (RGB) to deliver; default the stored channels.
    """
    folder = store_folder(path)
    info = read_store_info(folder)
    try:
        with np.load(folder / INDEX_FILE, allow_pickle=False) as data:
            index = {name: data[name] for name in data.files}
    except ARCHIVE_ERRORS as exc:
        raise archive_error(folder / INDEX_FILE, exc, "index archive") from None
    images = PackedImages(folder / IMAGES_FILE)
    count, shape = int(info["count"]), tuple(info["image_shape"])
    if len(images) != count or images.image_shape != shape:
        raise AffectlensError(f"{folder}: {IMAGES_FILE} holds {len(images)} images of {images.image_shape}, "
                              f"{STORE_FILE} says {count} of {shape}; pack it again")
    if "labels" not in index or any(len(v) != count for v in index.values()):
        raise AffectlensError(f"{folder / INDEX_FILE}: needs 'labels' and {count} entries in every column")
    keep = np.flatnonzero(index.get("readable", np.ones(count, bool)))
    size = shape[:2] if image_size is None else (image_size, image_size) if isinstance(image_size, int) \
        else tuple(image_size)
    columns = {attr: index[name][keep] for name, attr in COLUMNS.items() if name in index}
    return EmotionDataset(
        name=str(info["name"]),
        class_names=[str(c) for c in info["class_names"]],
        labels=index["labels"][keep],
        store=images.take(keep),
        image_size=size,  # type: ignore[arg-type]
        channels=int(channels or shape[2]),
        meta={"source": str(folder), "packed_from": info.get("source", ""), "skipped": list(info.get("skipped", [])),
              **({"valence_range": tuple(info["valence_range"])} if info.get("valence_range") else {})},
        **columns,
    )
