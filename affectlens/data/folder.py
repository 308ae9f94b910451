"""Class-per-folder image datasets: ``root/<class>/*.jpg`` or ``root/<split>/<class>/*.jpg``.

Any number of classes (binary included) and any format Pillow reads; grey, RGB and RGBA files
are all converted to the requested channel count and size, so mixed folders just work.

Nothing is dropped silently: files that are not images (audio, notes, archives) and images that
cannot be read (corrupt, truncated, over the pixel limit) are left out, logged as one warning
line per kind, and listed in ``meta["skipped"]`` (``{"file", "kind", "reason"}`` each; kind is
``not_image``, ``no_class`` or ``unreadable``), where ``inspect``
reports them. A class folder without images is named in one warning line and in
``meta["empty_class_folders"]`` (``inspect`` reports it too); a folder that cannot be read is an
error, since its class would vanish from the model. Hidden files (``.DS_Store``) are system files
and ignored.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from affectlens.data.dataset import EmotionDataset, _fit
from affectlens.data.image_io import is_image_file, read_image
from affectlens.errors import AffectlensError

log = logging.getLogger(__name__)

#: Above this many images, a folder dataset is read lazily instead of loaded into memory.
IN_MEMORY_LIMIT = 200_000


def load_folder(
    path: str | Path,
    image_size: int | tuple[int, int] = 48,
    channels: int = 1,
    class_names: list[str] | None = None,
    in_memory: bool | None = None,
) -> EmotionDataset:
    """Read a class-per-folder tree; a top level of split folders (train/val/test...) is detected.

    Args:
        path: the root folder.
        image_size: side (or (height, width)) every image is resized to.
        channels: 1 for grey, 3 for RGB.
        class_names: fixed class order; default is the sorted folder names.
        in_memory: load all images now (fast training) or read them on demand; default by size.
    """
    root = Path(path)
    if not root.is_dir():
        raise AffectlensError(f"{root}: dataset folder does not exist")
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    entries, others, empty = _collect(root)
    if not entries:
        raise AffectlensError(f"{root}: no images found in class sub-folders (expected root/<class>/<image>)")
    skipped = [{"file": str(f), "kind": kind, "reason": reason} for f, kind, reason in others]
    report_skipped(root.name, skipped, "not an image in a class folder")
    found_classes = sorted({c for _, c, _ in entries})
    names = list(class_names) if class_names else found_classes
    empty_folders = [str(folder.relative_to(root)) for folder in empty]
    if empty_folders:
        dropped = sorted({folder.name for folder in empty} - set(names))
        log.warning("%s: class folder(s) %s hold no images%s", root, ", ".join(empty_folders),
                    f"; class(es) {', '.join(dropped)} left out of the class list" if dropped else "")
    unknown = [c for c in found_classes if c not in names]
    if unknown:
        raise AffectlensError(f"{root}: folder(s) {', '.join(unknown)} are not in the class list {names}")
    paths = [p for _, _, p in entries]
    labels = np.array([names.index(c) for _, c, _ in entries])
    splits = np.array([s for s, _, _ in entries]) if any(s for s, _, _ in entries) else None
    dataset = EmotionDataset(
        name=root.name,
        class_names=names,
        labels=labels,
        paths=paths,
        image_size=size,  # type: ignore[arg-type]
        channels=channels,
        splits=splits,
        source_ids=np.array([str(p.relative_to(root)) for p in paths]),
        meta={"source": str(root), "skipped": skipped, "empty_class_folders": empty_folders},
    )
    if in_memory is None:
        in_memory = len(paths) <= IN_MEMORY_LIMIT
    return load_into_memory(dataset) if in_memory else dataset


def load_into_memory(dataset: EmotionDataset) -> EmotionDataset:
    """Read every file of a path-based dataset once into one uint8 array.

    An image that cannot be read is left out (with its samples' labels and ids) and listed in
    ``meta["skipped"]``, so one bad file among thousands does not end a training run or an
    inspection; a dataset of which no image can be read is an error.
    """
    if dataset.paths is None:
        return dataset
    images = np.empty((len(dataset), *dataset.image_size, dataset.channels), np.uint8)
    readable = np.ones(len(dataset), bool)
    unreadable: list[dict[str, str]] = []
    for i, path in enumerate(tqdm(dataset.paths, desc=f"reading {dataset.name}", unit="img", leave=False,
                                  disable=None)):  # a bar on terminals only, not in logs
        try:
            images[i] = _fit(read_image(path), dataset.image_size, dataset.channels)
        except AffectlensError as exc:
            readable[i] = False
            unreadable.append({"file": str(path), "kind": "unreadable", "reason": str(exc).removeprefix(f"{path}: ")})
    if not readable.any():
        raise AffectlensError(f"{dataset.meta.get('source', dataset.name)}: none of its {len(dataset)} images can be "
                              f"read (first: {unreadable[0]['file']}: {unreadable[0]['reason']})")
    report_skipped(dataset.name, unreadable, "cannot be read")
    from dataclasses import replace

    if unreadable:
        keep = np.flatnonzero(readable)
        dataset, images = dataset.subset(keep), images[keep]
    assert dataset.paths is not None
    meta = {**dataset.meta, "paths": [str(p) for p in dataset.paths],
            "skipped": [*dataset.meta.get("skipped", []), *unreadable]}
    return replace(dataset, images=images, meta=meta)


def report_skipped(name: str, skipped: list[dict[str, str]], what: str, shown: int = 3) -> None:
    """One warning line for files left out of a dataset, naming the first few and why."""
    if not skipped:
        return
    listed = "; ".join(f"{s['file']} ({s['reason']})" for s in skipped[:shown])
    more = f"; and {len(skipped) - shown} more" if len(skipped) > shown else ""
    log.warning("%s: %d %s left out (%s): %s%s", name, len(skipped), "file" if len(skipped) == 1 else "files", what,
                listed, more)


def class_images(root: str | Path) -> list[tuple[str, Path]]:
    """(class, path) of every image of a class-per-folder tree (split folders, if any, merged), unread.

    For callers that need the files themselves (whole photos for the end-to-end pipeline) rather than
    faces resized into a dataset; the same rules as :func:`load_folder` (hidden files ignored,
    unreadable folders an error).
    """
    root = Path(root)
    if not root.is_dir():
        raise AffectlensError(f"{root}: dataset folder does not exist")
    entries, _, _ = _collect(root)
    if not entries:
        raise AffectlensError(f"{root}: no images found in class sub-folders (expected root/<class>/<image>)")
    return [(cls, path) for _, cls, path in entries]


def _collect(root: Path) -> tuple[list[tuple[str, str, Path]], list[tuple[Path, str, str]], list[Path]]:
    """(split, class, path) for every image, (path, kind, why) for the other non-hidden files, and the
    class folders that hold no image.

    Split is '' for a flat class-per-folder tree. A folder that cannot be listed is an error: left
    out, its class would silently vanish from the model (``os.walk`` and ``rglob`` skip it quietly).
    """
    subdirs = [d for d in _listing(root) if d.is_dir() and not d.name.startswith(".")]
    nested = subdirs and all(
        any(c.is_dir() for c in _listing(d)) and not any(is_image_file(f) for f in _listing(d)) for d in subdirs
    )
    entries: list[tuple[str, str, Path]] = []
    others: list[tuple[Path, str, str]] = []
    empty: list[Path] = []
    groups = [(d.name, d) for d in subdirs] if nested else [("", root)]
    for split, split_dir in groups:
        listing = _listing(split_dir)
        for loose in (f for f in listing if f.is_file() and not f.name.startswith(".")):
            if is_image_file(loose):
                others.append((loose, "no_class", "image outside a class sub-folder: its class is unknown"))
        for class_dir in (d for d in listing if d.is_dir() and not d.name.startswith(".")):
            found = len(entries)
            for file in _files_below(class_dir):
                if is_image_file(file):
                    entries.append((split, class_dir.name, file))
                else:
                    others.append((file, "not_image", f"not an image file ({file.suffix or 'no extension'})"))
            if len(entries) == found:
                empty.append(class_dir)
    return entries, others, empty


def _listing(folder: Path) -> list[Path]:
    """The entries of ``folder``, sorted; one error line naming it when it cannot be read."""
    try:
        return sorted(folder.iterdir())
    except OSError as exc:
        raise _unreadable(folder, exc) from None


def _files_below(folder: Path) -> list[Path]:
    """Every non-hidden file under ``folder`` (hidden folders are not entered), sorted."""
    def fail(exc: OSError) -> None:
        raise _unreadable(Path(exc.filename) if exc.filename else folder, exc)

    files = []
    for parent, dirs, names in os.walk(folder, onerror=fail):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        files += [Path(parent) / name for name in names if not name.startswith(".")]
    return sorted(f for f in files if f.is_file())


def _unreadable(folder: Path, exc: OSError) -> AffectlensError:
    return AffectlensError(f"{folder}: folder cannot be read ({exc.strerror or exc}); its images would be left out "
                           "of the dataset: fix its permissions, or move it out of the dataset")
