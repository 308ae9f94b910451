"""A dataset with a new split column, written as a manifest CSV that training reads.

What ``affectlens split`` does, below the command line: choose the method (grouped when subject
or video ids exist, so no identity lands in two splits), keep named splits as they are and
re-split the rest, and give the manifest image paths (datasets without image files, the npz
ones, get their images written as PNG first). The counts per split come back as a table.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from affectlens.data.dataset import EmotionDataset, file_paths
from affectlens.errors import AffectlensError
from affectlens.utils.outputs import atomic_path


@dataclass
class Resplit:
    """The dataset with its new ``splits``, and how they were made."""

    dataset: EmotionDataset
    method: str
    grouping: str | None  # the ids no two splits share ("subject", "video", ...), None when stratified
    names: list[str]  # the new splits, then the kept ones
    replaced: list[str]  # splits the dataset had before that were re-split


def resplit(dataset: EmotionDataset, method: str = "auto", fractions: str = "train=0.8,val=0.1,test=0.1",
            group_by: str = "auto", seed: int = 0, keep: Sequence[str] = ()) -> Resplit:
    """Split ``dataset`` anew (same ``seed``, same split), leaving the splits named in ``keep`` unchanged."""
    from affectlens.data.splits import group_ids, make_splits

    has_ids = dataset.subjects is not None or dataset.videos is not None
    if group_by != "auto" and method == "stratified":
        raise AffectlensError(f"--group-by {group_by} does not apply to --method stratified, which splits single "
                              "images; use --method stratified_grouped (or grouped) to keep each id in one split")
    if method == "auto":
        # ids named by --group-by are required: without them the split would quietly not be grouped
        method = "stratified_grouped" if has_ids or group_by != "auto" else "stratified"
    kept = np.zeros(len(dataset), bool)
    if keep:
        available = dataset.split_names()
        unknown = [k for k in keep if k not in available]
        if unknown:
            raise AffectlensError(f"dataset '{dataset.name}' has no split {', '.join(unknown)} to keep; "
                                  f"available: {', '.join(available) or 'none'}")
        kept = np.isin(dataset.splits, list(keep))  # type: ignore[arg-type]
    pool = np.flatnonzero(~kept)
    if not len(pool):
        raise AffectlensError("--keep-split keeps every sample; nothing is left to split")
    parts = make_splits(dataset.subset(pool), method, fractions, group_by, seed)
    clash = [name for name in parts if name in keep]
    if clash:
        raise AffectlensError(f"new split name(s) {', '.join(clash)} equal a kept split; rename them in --fractions")
    names = np.empty(len(dataset), dtype=object)
    if keep:
        names[kept] = dataset.splits[kept]  # type: ignore[index]
    for name, idx in parts.items():
        names[pool[idx]] = name
    grouping = group_ids(dataset, group_by)[1] if method != "stratified" else None
    return Resplit(replace(dataset, splits=names.astype(str)), method, grouping, [*parts, *keep],
                   [n for n in dataset.split_names() if n not in keep])


def needs_image_files(dataset: EmotionDataset) -> bool:
    """Whether the dataset has no image files a manifest could point at (npz arrays)."""
    return file_paths(dataset) is None


def manifest_image_paths(dataset: EmotionDataset, manifest: Path, images_dir: Path,
                         progress: bool | None = None) -> list[str]:
    """Image paths relative to the manifest; without image files, each image is first written to ``images_dir``."""
    base = manifest.resolve().parent
    paths = file_paths(dataset)
    if paths is None:
        paths = write_png_images(dataset, images_dir, progress)
    return [os.path.relpath(Path(p).resolve(), base) for p in paths]


def write_png_images(dataset: EmotionDataset, folder: Path, progress: bool | None = None) -> list[str]:
    """Every image as ``folder/NNNNNN.png`` (each file whole or absent); returns their paths."""
    from PIL import Image
    from tqdm import tqdm

    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in tqdm(range(len(dataset)), desc="writing PNG", unit="img", leave=False,
                  disable=(not progress) if progress is not None else None):
        image = dataset.image(i)
        file = folder / f"{i:06d}.png"
        with atomic_path(file) as partial:
            Image.fromarray(image[..., 0] if image.shape[2] == 1 else image).save(partial, format="PNG")
        paths.append(str(file))
    return paths


def split_counts(dataset: EmotionDataset, names: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: images, share and per-class counts of each split, and distinct ids per split."""
    header = ["split", "images", "share", *dataset.class_names]
    id_columns = _id_columns(dataset)
    header += [k for k, _ in id_columns]
    rows = []
    for name in names:
        mask = dataset.splits == name
        counts = np.bincount(dataset.labels[mask & (dataset.labels >= 0)], minlength=dataset.num_classes)
        row = [name, f"{int(mask.sum()):,}", f"{100 * mask.mean():.1f}%", *[f"{int(c):,}" for c in counts]]
        row += [f"{len(np.unique(np.asarray(v)[mask])):,}" for _, v in id_columns]
        rows.append(row)
    return header, rows


def shared_ids(dataset: EmotionDataset, names: Sequence[str]) -> dict[str, int]:
    """For each id column (subjects, videos): how many ids two splits share (0 is the point of grouping)."""
    shared: dict[str, int] = {}
    for kind, values in _id_columns(dataset):
        ids = np.asarray(values).astype(str)
        count = 0
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                count += len((set(ids[dataset.splits == a]) & set(ids[dataset.splits == b])) - {""})
        shared[kind] = count
    return shared


def _id_columns(dataset: EmotionDataset) -> list[tuple[str, np.ndarray]]:
    return [(k, v) for k, v in (("subjects", dataset.subjects), ("videos", dataset.videos)) if v is not None]

