"""One pass over a dataset's pixels: the only step of the doctor that decodes images.

Everything the image-based measures need (exact-duplicate digests, perceptual hashes, brightness,
contrast, grey stored as RGB) is gathered in a single chunked pass, so a lazily read dataset is read
once and memory stays bounded for large in-memory sets. Images that cannot be read are then left
out (:func:`drop_unreadable`) instead of being counted as black, blank or duplicate pictures.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tqdm import tqdm

from affectlens.data.dataset import EmotionDataset, file_paths
from affectlens.data.duplicates import phash64, pixel_digest
from affectlens.errors import AffectlensError

#: images scanned per chunk (bounds memory for the statistics of large in-memory sets)
CHUNK = 4096


def scan_images(dataset: EmotionDataset, with_phash: bool = True, progress: bool = True) -> dict[str, Any]:
    """One pass over the pixels: digest, perceptual hash, mean, std, and grey-stored-as-RGB flags."""
    n = len(dataset)
    digests: list[bytes] = []
    hashes = np.zeros(n, np.uint64)
    mean = np.zeros(n, np.float32)
    std = np.zeros(n, np.float32)
    grey_rgb = np.zeros(n, bool)
    unreadable: list[tuple[int, str]] = []
    bar = tqdm(total=n, desc=f"inspecting {dataset.name}", unit="img", leave=False, disable=None if progress else True)
    for start in range(0, n, CHUNK):
        idx = np.arange(start, min(n, start + CHUNK))
        batch = _read_batch(dataset, idx, unreadable)
        flat = batch.reshape(len(idx), -1).astype(np.float32)
        mean[idx] = flat.mean(axis=1)
        std[idx] = flat.std(axis=1)
        if batch.shape[3] == 3:
            grey_rgb[idx] = (batch[..., 0] == batch[..., 1]).all(axis=(1, 2)) & \
                (batch[..., 1] == batch[..., 2]).all(axis=(1, 2))
        for j, i in enumerate(idx.tolist()):
            digests.append(pixel_digest(batch[j]))
            if with_phash:
                hashes[i] = phash64(batch[j])
        bar.update(len(idx))
    bar.close()
    return {"digests": digests, "phash": hashes if with_phash else None, "mean": mean, "std": std,
            "grey_rgb": grey_rgb, "unreadable": unreadable}


def _read_batch(dataset: EmotionDataset, idx: np.ndarray, unreadable: list[tuple[int, str]]) -> np.ndarray:
    """Images ``idx``; a lazily read file that fails is noted in ``unreadable`` and stands in as black."""
    try:
        return dataset.batch(idx)
    except AffectlensError:
        pass
    h, w = dataset.image_size
    batch = np.zeros((len(idx), h, w, dataset.channels), np.uint8)
    for j, i in enumerate(idx.tolist()):
        try:
            batch[j] = dataset.image(i)
        except AffectlensError as exc:
            unreadable.append((i, str(exc)))
    return batch


def drop_unreadable(dataset: EmotionDataset, scan: dict[str, Any]) -> tuple[EmotionDataset, dict[str, Any]]:
    """Leave the images the scan could not read out of the dataset and the scan, listing them as skipped.

    The same treatment :func:`~affectlens.data.folder.load_into_memory` gives them, so an
    inspection never counts a missing picture as a blank or duplicate one.
    """
    if not scan["unreadable"]:
        return dataset, scan
    bad = {i for i, _ in scan["unreadable"]}
    keep = np.array([i for i in range(len(dataset)) if i not in bad], np.int64)
    paths = file_paths(dataset) or []
    files = {i: paths[i] if i < len(paths) else f"sample {i}" for i, _ in scan["unreadable"]}
    skipped = [{"file": files[i], "kind": "unreadable", "reason": message.removeprefix(f"{files[i]}: ")}
               for i, message in scan["unreadable"]]
    from dataclasses import replace

    meta = {**dataset.meta, "skipped": [*dataset.meta.get("skipped", []), *skipped]}
    if "paths" in meta and meta["paths"] is not None:
        meta["paths"] = [meta["paths"][i] for i in keep.tolist()]
    dataset = replace(dataset.subset(keep), meta=meta)
    scan = {**scan, "digests": [scan["digests"][i] for i in keep.tolist()],
            "phash": scan["phash"][keep] if scan["phash"] is not None else None,
            "mean": scan["mean"][keep], "std": scan["std"][keep], "grey_rgb": scan["grey_rgb"][keep],
            "unreadable": []}
    return dataset, scan
