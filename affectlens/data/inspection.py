"""Dataset doctor: the evidence behind "training accuracy 95%, validation 40%: why?".

:func:`inspect_dataset` looks at any :class:`EmotionDataset` and returns one JSON-ready dict:

* class counts and shares per split, and how far each split's class mix is from the training
  split's (Jensen-Shannon divergence, with the classes that differ most);
* when subject or video ids are known, how many distinct people / videos stand behind each
  class, how much of a class the largest one supplies, and which ids sit in two splits (leakage);
* exact duplicates (identical pixels) and near duplicates (perceptual hash) within and across
  splits, with the pairs listed and label conflicts flagged;
* image statistics: file sizes and colour modes, near-blank images, very dark / bright ones;
* plain-language warnings, most serious first, and the remedies that address them.

The usual causes of a large train/validation gap are all visible here: a rare class backed by a
handful of videos (the model memorises those videos), the same person or video in both splits
(validation measures identity recognition), copies of validation images in training, and
validation class mixes that differ from training. :mod:`affectlens.data.inspection_report`
turns the dict into Markdown, JSON, CSV and PNG files.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from affectlens.data.dataset import EmotionDataset, file_paths
from affectlens.data.duplicates import (
    MAX_PAIRS,
    NEAR_THRESHOLD,
    exact_groups,
    hash_hex,
    near_pairs,
    phash64,
    pixel_digest,
)
from affectlens.data.image_io import read_header
from affectlens.errors import AffectlensError

#: an image whose pixel standard deviation (0..255 scale) is below this is called near-blank
BLANK_STD = 2.0
#: mean grey level below / above which an image is called very dark / very bright
DARK_MEAN, BRIGHT_MEAN = 20.0, 235.0
#: image files smaller than this on their short side carry little facial detail
SMALL_SIDE = 32
#: largest / smallest class ratio from which imbalance is flagged (medium, high)
IMBALANCE_MEDIUM, IMBALANCE_HIGH = 3.0, 10.0
#: a class with fewer images than this in an evaluation split gives noisy per-class scores
RARE_EVAL_COUNT = 100
#: Jensen-Shannon divergence (bits) from which a split's class mix is flagged (medium, high)
JS_MEDIUM, JS_HIGH = 0.01, 0.05
#: a class backed by fewer subjects/videos than this, or one supplying this share, is flagged
FEW_GROUPS, DOMINANT_SHARE = 20, 0.25
#: how many duplicate groups / pairs / blank images are listed in the dict (counts are always exact)
MAX_LISTED = 2000
#: images scanned per chunk (bounds memory for the statistics of large in-memory sets)
CHUNK = 4096

SEVERITY_ORDER = {"high": 0, "medium": 1, "info": 2}
GROUP_KINDS = (("subject", "subjects", "subjects"), ("video", "videos", "videos"))


def inspect_dataset(
    dataset: EmotionDataset,
    near_duplicates: bool = True,
    near_threshold: int = NEAR_THRESHOLD,
    max_listed: int = MAX_LISTED,
    progress: bool = True,
) -> dict[str, Any]:
    """Analyse ``dataset`` and return the JSON-ready inspection dict (see the module docstring).

    Args:
        dataset: any dataset a loader returns (in memory or read lazily from files).
        near_duplicates: also search near-identical images by perceptual hash (a few seconds
            per 10,000 images); exact duplicates are always searched.
        near_threshold: largest Hamming distance (of 64 bits) between two near-duplicate hashes.
        max_listed: cap on the groups / pairs / images listed (the counts are always complete).
        progress: show a progress bar while reading images.
    """
    scan = scan_images(dataset, near_duplicates, progress)
    dataset, scan = drop_unreadable(dataset, scan)
    names, codes = split_view(dataset)
    ref = reference_split(names)
    result: dict[str, Any] = {
        "tool": "affectlens inspect",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {
            "near_duplicates": near_duplicates, "near_threshold_bits": near_threshold, "blank_std": BLANK_STD,
            "imbalance_ratio_flagged": [IMBALANCE_MEDIUM, IMBALANCE_HIGH], "js_flagged": [JS_MEDIUM, JS_HIGH],
            "few_groups": FEW_GROUPS, "dominant_group_share": DOMINANT_SHARE, "max_listed": max_listed,
        },
    }
    result["dataset"] = describe(dataset, names, codes, ref)
    result["class_distribution"] = class_distribution(dataset, names, codes, ref)
    result["split_divergence"] = split_divergence(result["class_distribution"])
    result["groups"] = group_statistics(dataset, names, codes, ref)
    result["images"] = image_statistics(dataset, scan, names, codes, max_listed, progress)
    result["duplicates"] = duplicate_statistics(dataset, scan, names, codes, ref, near_duplicates, near_threshold,
                                                max_listed)
    result["regression_targets"] = regression_statistics(dataset, names, codes)
    result["warnings"] = build_warnings(result)
    result["remedies"] = build_remedies(result)
    return _json_ready(result)


# ---------------------------------------------------------------------------------------------- splits
def split_view(dataset: EmotionDataset) -> tuple[list[str], np.ndarray]:
    """Split names (first-appearance order) and each sample's split index; one split 'all' if none."""
    if dataset.splits is None:
        return ["all"], np.zeros(len(dataset), np.int64)
    names = dataset.split_names()
    lookup = {n: i for i, n in enumerate(names)}
    return names, np.array([lookup[str(s)] for s in dataset.splits], dtype=np.int64)


def reference_split(names: list[str]) -> str:
    """The split others are compared with: the training split when one is recognisable by name."""
    for name in names:
        if "train" in name.lower():
            return name
    return names[0]


def describe(dataset: EmotionDataset, names: list[str], codes: np.ndarray, ref: str) -> dict[str, Any]:
    h, w = dataset.image_size
    columns = [c for c in ("soft_labels", "valence", "arousal", "subjects", "videos", "frames")
               if getattr(dataset, c) is not None]
    return {
        "name": dataset.name,
        "source": str(dataset.meta.get("source", "")),
        "samples": len(dataset),
        "classes": list(dataset.class_names),
        "splits": {n: int((codes == i).sum()) for i, n in enumerate(names)},
        "has_split_column": dataset.splits is not None,
        "reference_split": ref,
        "image_size": f"{h}x{w}",
        "channels": dataset.channels,
        "in_memory": dataset.images is not None,
        "columns": columns,
        "skipped_files": list(dataset.meta.get("skipped", [])),
        "empty_class_folders": list(dataset.meta.get("empty_class_folders", [])),
    }


# ------------------------------------------------------------------------------------ class distribution
def class_distribution(dataset: EmotionDataset, names: list[str], codes: np.ndarray, ref: str) -> dict[str, Any]:
    """Counts and shares per class for every split, with the largest/smallest class ratio."""
    k = dataset.num_classes
    counts: dict[str, list[int]] = {}
    shares: dict[str, list[float]] = {}
    unlabelled: dict[str, int] = {}
    imbalance: dict[str, Any] = {}
    for i, name in enumerate(names):
        labels = dataset.labels[codes == i]
        valid = labels[labels >= 0]
        c = np.bincount(valid, minlength=k)[:k] if k else np.zeros(0, np.int64)
        counts[name] = [int(v) for v in c]
        total = int(c.sum())
        shares[name] = [float(v / total) if total else 0.0 for v in c]
        unlabelled[name] = int((labels < 0).sum())
        if k >= 2 and total:
            big, small = int(np.argmax(c)), int(np.argmin(c))
            imbalance[name] = {
                "largest": dataset.class_names[big], "largest_count": int(c[big]),
                "smallest": dataset.class_names[small], "smallest_count": int(c[small]),
                "ratio": float(c[big] / c[small]) if c[small] else math.inf,
                "missing_classes": [dataset.class_names[j] for j in range(k) if c[j] == 0],
            }
    all_counts = np.sum([counts[n] for n in names], axis=0) if k else np.zeros(0)
    return {
        "class_names": list(dataset.class_names),
        "splits": names,
        "reference_split": ref,
        "counts": counts,
        "shares": shares,
        "unlabelled": unlabelled,
        "all": [int(v) for v in all_counts],
        "imbalance": imbalance,
    }


def js_divergence(p: np.ndarray, q: np.ndarray) -> tuple[float, np.ndarray]:
    """Jensen-Shannon divergence in bits (0 = same distribution, 1 = disjoint) and per-class terms."""
    p = np.asarray(p, np.float64)
    q = np.asarray(q, np.float64)
    p = p / p.sum() if p.sum() else p
    q = q / q.sum() if q.sum() else q
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        tp = np.where(p > 0, p * np.log2(p / m), 0.0)
        tq = np.where(q > 0, q * np.log2(q / m), 0.0)
    terms = 0.5 * (tp + tq)
    return float(max(terms.sum(), 0.0)), terms


def split_divergence(dist: dict[str, Any], top: int = 3) -> dict[str, Any]:
    """Compare every split's class mix with the reference split's."""
    ref = dist["reference_split"]
    names = dist["class_names"]
    comparisons = []
    ref_counts = np.array(dist["counts"][ref], np.float64)
    for split in dist["splits"]:
        if split == ref or not names:
            continue
        counts = np.array(dist["counts"][split], np.float64)
        if not counts.sum() or not ref_counts.sum():
            continue
        js, terms = js_divergence(ref_counts, counts)
        ref_share = ref_counts / ref_counts.sum()
        share = counts / counts.sum()
        order = np.argsort(-terms, kind="stable")[:top]
        comparisons.append({
            "split": split,
            "js_divergence": js,
            "most_different": [
                {"class": names[c], "reference_share": float(ref_share[c]), "share": float(share[c]),
                 "difference_points": float(100 * (share[c] - ref_share[c])), "contribution": float(terms[c])}
                for c in order if terms[c] > 0
            ],
        })
    return {
        "reference": ref,
        "measure": "Jensen-Shannon divergence of the class shares, in bits: 0 = the same class mix, "
                   "1 = no class in common",
        "comparisons": comparisons,
    }


# -------------------------------------------------------------------------------------- subjects / videos
def group_statistics(dataset: EmotionDataset, names: list[str], codes: np.ndarray, ref: str) -> dict[str, Any]:
    """Per split and class: distinct subjects/videos, the largest one's share; ids shared by splits."""
    out: dict[str, Any] = {}
    for kind, attr, plural in GROUP_KINDS:
        values = getattr(dataset, attr)
        if values is None:
            continue
        ids = np.asarray(values).astype(str)
        known = ids != ""
        if not known.any():
            continue
        per_split: dict[str, Any] = {}
        for i, split in enumerate(names):
            in_split = (codes == i) & known
            if not in_split.any():
                continue
            per_split[split] = _group_summary(ids[in_split], dataset.labels[in_split], dataset.class_names)
        overlaps = []
        split_ids = {s: set(ids[(codes == i) & known]) for i, s in enumerate(names)}
        for a_i, a in enumerate(names):
            for b in names[a_i + 1:]:
                shared = split_ids[a] & split_ids[b]
                if not shared:
                    continue
                for side, other in ((a, b), (b, a)):
                    mask = (codes == names.index(side)) & np.isin(ids, list(shared))
                    overlaps.append({
                        "split": side, "other_split": other, "shared_ids": len(shared),
                        "samples_in_shared": int(mask.sum()),
                        "share_of_split": float(mask.sum() / max(int((codes == names.index(side)).sum()), 1)),
                        "examples": sorted(shared)[:5],
                    })
        out[kind] = {
            "plural": plural,
            "distinct": int(len(np.unique(ids[known]))),
            "samples_with_id": int(known.sum()),
            "per_split": per_split,
            "overlaps": overlaps,
        }
    return out


def _group_summary(ids: np.ndarray, labels: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    uniq, per_id = np.unique(ids, return_counts=True)
    top = int(np.argmax(per_id))
    summary: dict[str, Any] = {
        "samples": int(len(ids)),
        "distinct": int(len(uniq)),
        "samples_per_id_median": float(np.median(per_id)),
        "samples_per_id_max": int(per_id.max()),
        "largest_id": str(uniq[top]),
        "largest_share": float(per_id[top] / len(ids)),
        "per_class": [],
    }
    for c, name in enumerate(class_names):
        in_class = ids[labels == c]
        if not len(in_class):
            summary["per_class"].append({"class": name, "samples": 0, "distinct": 0, "largest_id": None,
                                         "largest_share": 0.0})
            continue
        u, n = np.unique(in_class, return_counts=True)
        t = int(np.argmax(n))
        summary["per_class"].append({"class": name, "samples": int(len(in_class)), "distinct": int(len(u)),
                                     "largest_id": str(u[t]), "largest_count": int(n[t]),
                                     "largest_share": float(n[t] / len(in_class))})
    return summary


# ------------------------------------------------------------------------------------------ image scan
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


def file_statistics(paths: list[str], progress: bool = False) -> dict[str, Any]:
    """Displayed size and colour mode of every file, from the headers only (no decoding)."""
    sizes: Counter[str] = Counter()
    modes: Counter[str] = Counter()
    short_sides = np.zeros(len(paths), np.int64)
    small: list[int] = []
    for i, path in enumerate(tqdm(paths, desc="reading file headers", unit="file", leave=False,
                                  disable=None if progress else True)):
        try:
            header = read_header(path)
        except AffectlensError:
            modes["unreadable"] += 1
            continue
        w, h = header.width, header.height
        modes[header.mode] += 1
        sizes[f"{w}x{h}"] += 1
        short_sides[i] = min(w, h)
        if min(w, h) < SMALL_SIDE:
            small.append(i)
    read = short_sides[short_sides > 0]
    return {
        "distinct_sizes": len(sizes),
        "most_common_sizes": dict(sizes.most_common(10)),
        "short_side_min": int(read.min()) if len(read) else None,
        "short_side_median": float(np.median(read)) if len(read) else None,
        "short_side_max": int(read.max()) if len(read) else None,
        "modes": dict(modes),
        "small_count": len(small),
        "small_indices": small,
    }


def image_statistics(dataset: EmotionDataset, scan: dict[str, Any], names: list[str], codes: np.ndarray,
                     max_listed: int, progress: bool = False) -> dict[str, Any]:
    """Delivered and stored sizes, brightness and contrast, near-blank / very dark / bright images."""
    mean, std = scan["mean"], scan["std"]
    blank = np.flatnonzero(std < BLANK_STD)
    dark = np.flatnonzero((mean < DARK_MEAN) & (std >= BLANK_STD))
    bright = np.flatnonzero((mean > BRIGHT_MEAN) & (std >= BLANK_STD))
    paths = file_paths(dataset)
    files = file_statistics(paths, progress) if paths is not None else None
    if files is not None:
        files["small_listed"] = [_sample(dataset, i, names, codes) for i in files.pop("small_indices")[:max_listed]]
    h, w = dataset.image_size
    return {
        "delivered_size": f"{h}x{w}",
        "delivered_channels": dataset.channels,
        "files": files,
        "brightness_mean": float(mean.mean()) if len(mean) else 0.0,
        "brightness_percentiles": {p: float(np.percentile(mean, p)) for p in (1, 50, 99)} if len(mean) else {},
        "contrast_median_std": float(np.median(std)) if len(std) else 0.0,
        "near_blank_count": int(len(blank)),
        "near_blank": [{**_sample(dataset, i, names, codes), "std": float(std[i]), "mean": float(mean[i])}
                       for i in blank[:max_listed]],
        "very_dark_count": int(len(dark)),
        "very_bright_count": int(len(bright)),
        "grey_stored_as_rgb": int(scan["grey_rgb"].sum()) if dataset.channels == 3 else None,
    }


# ------------------------------------------------------------------------------------------- duplicates
def duplicate_statistics(dataset: EmotionDataset, scan: dict[str, Any], names: list[str], codes: np.ndarray,
                         ref: str, near: bool, threshold: int, max_listed: int) -> dict[str, Any]:
    """Exact groups (identical pixels) and near pairs (perceptual hash), within and across splits."""
    ref_code = names.index(ref)
    labels = dataset.labels
    rep, groups = exact_groups(scan["digests"])
    n_splits = len(names)
    # bit mask of the splits each distinct image occurs in
    masks = np.zeros(len(dataset), np.int64)
    np.bitwise_or.at(masks, rep, np.left_shift(1, codes))
    within_extra = 0
    across = 0
    conflicts = 0
    listed = []
    for group in groups:
        g_codes = codes[group]
        per_split = np.bincount(g_codes, minlength=n_splits)
        within_extra += int(np.maximum(per_split - 1, 0).sum())
        spans = int((per_split > 0).sum()) > 1
        across += spans
        g_labels = labels[group]
        differ = len(np.unique(g_labels[g_labels >= 0])) > 1
        conflicts += differ
        if len(listed) < max_listed:
            listed.append({"size": int(len(group)), "splits": sorted({names[c] for c in g_codes}),
                           "labels_differ": bool(differ),
                           "members": [_sample(dataset, i, names, codes) for i in group[:50]]})
    ref_bit = 1 << ref_code
    exact_leak = (masks[rep] & ref_bit).astype(bool) & (codes != ref_code)
    exact = {
        "groups": len(groups),
        "images_in_groups": int(sum(len(g) for g in groups)),
        "extra_copies": int(sum(len(g) - 1 for g in groups)),
        "extra_copies_within_splits": within_extra,
        "groups_across_splits": int(across),
        "label_conflict_groups": int(conflicts),
        "copies_of_reference_in": {names[c]: int((exact_leak & (codes == c)).sum())
                                   for c in range(n_splits) if c != ref_code},
        "listed": listed,
    }
    result: dict[str, Any] = {"reference_split": ref, "exact": exact, "near": None}
    if near and scan["phash"] is not None:
        result["near"] = _near_statistics(dataset, scan, rep, masks, names, codes, ref_code, threshold, max_listed)
    return result


def _near_statistics(dataset: EmotionDataset, scan: dict[str, Any], rep: np.ndarray, masks: np.ndarray,
                     names: list[str], codes: np.ndarray, ref_code: int, threshold: int,
                     max_listed: int) -> dict[str, Any]:
    """Near pairs between distinct images (each exact group counts once, by its first member)."""
    labels = dataset.labels
    blank = scan["std"] < BLANK_STD
    candidates = np.flatnonzero((rep == np.arange(len(rep))) & ~blank)
    pi, pj, dist = near_pairs(scan["phash"][candidates], threshold, MAX_PAIRS)
    truncated = len(pi) >= MAX_PAIRS
    a, b = candidates[pi], candidates[pj]
    within = codes[a] == codes[b]
    differ = (labels[a] >= 0) & (labels[b] >= 0) & (labels[a] != labels[b])
    # images outside the reference split whose near twin (or a copy of it) is in the reference split
    ref_bit = 1 << ref_code
    near_ref = np.zeros(len(rep), bool)
    near_ref[a[(masks[b] & ref_bit) > 0]] = True
    near_ref[b[(masks[a] & ref_bit) > 0]] = True
    leaked = near_ref[rep] & (codes != ref_code) & ((masks[rep] & ref_bit) == 0)
    same_group = {}
    for kind, attr, _ in GROUP_KINDS:
        ids = getattr(dataset, attr)
        if ids is not None:
            ids = np.asarray(ids).astype(str)
            same_group[kind] = int(((ids[a] == ids[b]) & (ids[a] != "")).sum())
    return {
        "threshold_bits": threshold,
        "hash": "64-bit DCT perceptual hash (imagehash.phash) of the delivered image",
        "excluded_near_blank": int(blank.sum()),
        "pairs": int(len(a)),
        "truncated": bool(truncated),
        "pairs_within_split": int(within.sum()),
        "pairs_across_splits": int((~within).sum()),
        "label_conflict_pairs": int(differ.sum()),
        "pairs_same_id": same_group,
        "distance_histogram": {int(d): int(n) for d, n in zip(*np.unique(dist, return_counts=True), strict=True)},
        "near_copies_of_reference_in": {names[c]: int((leaked & (codes == c)).sum())
                                        for c in range(len(names)) if c != ref_code},
        "listed": [{"a": _sample(dataset, int(x), names, codes, scan["phash"]),
                    "b": _sample(dataset, int(y), names, codes, scan["phash"]),
                    "distance": int(d), "labels_differ": bool(f)}
                   for x, y, d, f in zip(a[:max_listed], b[:max_listed], dist[:max_listed], differ[:max_listed],
                                         strict=True)],
    }


def _sample(dataset: EmotionDataset, i: int, names: list[str], codes: np.ndarray,
            hashes: np.ndarray | None = None) -> dict[str, Any]:
    """How a sample is named in reports: index, source id, split, label (and hash when given)."""
    i = int(i)
    label = int(dataset.labels[i])
    out: dict[str, Any] = {
        "index": i,
        "id": str(dataset.source_ids[i]) if dataset.source_ids is not None else str(i),
        "split": names[int(codes[i])],
        "label": dataset.class_names[label] if 0 <= label < dataset.num_classes else None,
    }
    if dataset.paths is not None:
        out["path"] = str(dataset.paths[i])
    if hashes is not None:
        out["phash"] = hash_hex(hashes[i])
    return out


# ---------------------------------------------------------------------------------- valence / arousal
def regression_statistics(dataset: EmotionDataset, names: list[str], codes: np.ndarray) -> dict[str, Any] | None:
    """Labelled share, mean, std and range of valence and arousal per split (when present)."""
    if not dataset.has_regression_targets:
        return None
    out: dict[str, Any] = {}
    for i, split in enumerate(names):
        row = {}
        for target in ("valence", "arousal"):
            values = np.asarray(getattr(dataset, target), np.float64)[codes == i]
            known = values[np.isfinite(values)]
            row[target] = {
                "labelled": int(len(known)), "unlabelled": int(len(values) - len(known)),
                "mean": float(known.mean()) if len(known) else None, "std": float(known.std()) if len(known) else None,
                "min": float(known.min()) if len(known) else None, "max": float(known.max()) if len(known) else None,
            }
        out[split] = row
    return out


# -------------------------------------------------------------------------------------------- warnings
def _fmt(n: int | float) -> str:
    return f"{int(n):,}"


def _count(n: int, singular: str, plural: str | None = None) -> str:
    """``1 image`` / ``2 images`` (thousands separated)."""
    return f"{_fmt(n)} {singular if n == 1 else (plural or singular + 's')}"


def _are(n: int) -> str:
    return "is" if n == 1 else "are"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x >= 0.1 else f"{100 * x:.1f}%"


def build_warnings(result: dict[str, Any]) -> list[dict[str, str]]:
    """Plain-language findings, most serious first; each names the numbers behind it."""
    warnings: list[dict[str, str]] = []

    def add(severity: str, topic: str, message: str) -> None:
        warnings.append({"severity": severity, "topic": topic, "message": message})

    dist = result["class_distribution"]
    ref = dist["reference_split"]
    names = dist["class_names"]
    unit_one = "frame" if "video" in result["groups"] else "image"
    unit = unit_one + "s"
    multi = len(dist["splits"]) > 1
    where = f" in {ref}" if multi else ""
    if not names and result["regression_targets"] is None:
        add("high", "labels", "The dataset has neither class labels nor valence/arousal values.")
    labelled_classes = [name for name, n in zip(names, dist["all"], strict=True) if n > 0]
    if names and len(labelled_classes) < 2:
        add("high", "classes",
            f"Only {len(labelled_classes)} class ({', '.join(labelled_classes) or 'none'}) has labelled {unit}: a "
            "classifier needs at least two, and `affectlens train` refuses this dataset. A class-per-folder tree "
            "needs one sub-folder per class.")
    empty = result["dataset"].get("empty_class_folders") or []
    if empty:
        dropped = sorted({Path(folder).name for folder in empty} - set(names))
        left_out = ""
        if dropped:
            one = len(dropped) == 1
            left_out = (f": class{'' if one else 'es'} {', '.join(dropped)} {'is' if one else 'are'} left out, so a "
                        f"model trained on this data cannot predict {'it' if one else 'them'}")
        add("high" if dropped else "medium", "classes",
            f"{_count(len(empty), 'class folder')} {'holds' if len(empty) == 1 else 'hold'} no images "
            f"({', '.join(empty)}){left_out}.")
    skipped = result["dataset"].get("skipped_files") or []
    if skipped:
        shown = "; ".join(f"{Path(s['file']).name} ({s['reason']})" for s in skipped[:3])
        more = f"; and {_fmt(len(skipped) - 3)} more (all in report.json)" if len(skipped) > 3 else ""
        unreadable = any(s.get("kind") == "unreadable" for s in skipped)
        add("high" if unreadable else "medium", "files",
            f"{_count(len(skipped), 'file')} {'was' if len(skipped) == 1 else 'were'} left out of the dataset: "
            f"{shown}{more}.")
    # --- imbalance and tiny classes
    imb = dist["imbalance"].get(ref)
    if imb and imb["ratio"] >= IMBALANCE_MEDIUM:
        total = sum(dist["counts"][ref])
        if math.isinf(imb["ratio"]):
            pass  # reported as a missing class below
        else:
            severity = "high" if imb["ratio"] >= IMBALANCE_HIGH else "medium"
            add(severity, "imbalance",
                f"Classes are imbalanced{where}: {imb['smallest']} has {_fmt(imb['smallest_count'])} {unit}, "
                f"{imb['ratio']:.1f}x fewer than {imb['largest']} ({_fmt(imb['largest_count'])}). A model that "
                f"never predicts {imb['smallest']} loses only {_pct(imb['smallest_count'] / total)} accuracy, "
                "so watch macro-F1 and per-class recall, not accuracy.")
    for split, info in dist["imbalance"].items():
        missing = info["missing_classes"]
        if missing:
            one = len(missing) == 1
            add("high" if split == ref else "medium", "imbalance",
                f"{', '.join(missing)} {'has' if one else 'have'} no labelled {unit} in {split}"
                + (f": the model cannot learn {'it' if one else 'them'}." if split == ref
                   else f": {'its' if one else 'their'} recall cannot be measured there."))
    rare_parts, steps = [], []
    for split in dist["splits"]:
        if split == ref or not multi:
            continue
        rare = [(cls, count) for cls, count in zip(names, dist["counts"][split], strict=True)
                if 0 < count < RARE_EVAL_COUNT]
        if rare:
            rare_parts.append(f"{split}: " + ", ".join(f"{cls} ({_fmt(count)})" for cls, count in rare))
            steps += [100 / count for _, count in rare]
    if rare_parts:
        low, high = f"{min(steps):.1f}", f"{max(steps):.1f}"
        step = low if low == high else f"{low} to {high}"
        add("medium", "imbalance",
            f"Some classes have fewer than {RARE_EVAL_COUNT} {unit} in an evaluation split ("
            + "; ".join(rare_parts) + f"): one {unit_one} moves such a class's recall by {step} points, so its "
            "per-class scores are noisy.")
    # --- class mix differences between splits
    for comp in result["split_divergence"]["comparisons"]:
        js = comp["js_divergence"]
        if js < JS_MEDIUM:
            continue
        diffs = "; ".join(f"{d['class']} is {_pct(d['share'])} of {comp['split']} but {_pct(d['reference_share'])} "
                          f"of {ref}" for d in comp["most_different"][:2])
        add("high" if js >= JS_HIGH else "medium", "split_shift",
            f"{comp['split']} has a different class mix from {ref} (Jensen-Shannon divergence {js:.3f} bits): "
            f"{diffs}. Accuracy on {comp['split']} is then not comparable with accuracy on {ref}.")
    # --- subjects / videos
    for kind, info in result["groups"].items():
        plural = info["plural"]
        stats = info["per_split"].get(ref) or next(iter(info["per_split"].values()), None)
        if stats is None:
            continue
        for row in stats["per_class"]:
            if row["samples"] < 4 or row["distinct"] == row["samples"]:
                continue  # too small to judge, or every image its own person / video
            few = row["distinct"] < FEW_GROUPS
            dominant = row["largest_share"] >= DOMINANT_SHARE
            if not (few or dominant):
                continue
            parts = [f"{row['class']}{where}: {_count(row['samples'], unit_one)} from "
                     + ("only " if few else "") + _count(row["distinct"], kind, plural),
                     f"one {kind} ({row['largest_id']}) supplies {_pct(row['largest_share'])} of them"]
            severity = "high" if row["distinct"] < 5 or row["largest_share"] >= 0.4 else "medium"
            add(severity, "groups", "; ".join(parts) + f". A model can learn these {plural} instead of the "
                "expression; expect a lower validation score for this class on unseen " + plural + ".")
        for ov in info["overlaps"]:
            if ov["split"] == ref:
                continue
            affected = _count(ov["samples_in_shared"], f"{ov['split']} {unit_one}", f"{ov['split']} {unit}")
            add("high", "leakage",
                f"{_count(ov['shared_ids'], kind, plural)} {'appears' if ov['shared_ids'] == 1 else 'appear'} in "
                f"both {ov['split']} and {ov['other_split']} ({affected}, "
                f"{_pct(ov['share_of_split'])} of it): scores on {ov['split']} partly measure recognising these "
                f"{plural}, not their expressions.")
        if stats["distinct"] == 1 and stats["samples"] > 1:
            add("medium", "groups", f"All {_count(stats['samples'], unit_one)}{where} come from a single {kind} "
                f"({stats['largest_id']}): nothing learnt here is known to carry over to other {plural}.")
        elif not multi and stats["samples_per_id_median"] > 1:
            add("medium", "leakage",
                f"Each {kind} contributes several {unit} (median {stats['samples_per_id_median']:.0f}, up to "
                f"{_fmt(stats['samples_per_id_max'])}): a random image-level split would put the same {kind} "
                f"on both sides and inflate validation accuracy. Split by {kind} instead.")
    # --- duplicates
    dup = result["duplicates"]
    ex = dup["exact"]
    for split, n in ex["copies_of_reference_in"].items():
        if n:
            add("high", "duplicates",
                f"{_count(n, split + ' image')} {_are(n)} pixel-identical to {ref} images: the model has seen "
                f"{'it' if n == 1 else 'them'} in training, so {'it inflates' if n == 1 else 'they inflate'} "
                f"{split} scores.")
    if ex["extra_copies_within_splits"]:
        add("medium", "duplicates",
            f"{_count(ex['extra_copies_within_splits'], 'image')} {_are(ex['extra_copies_within_splits'])} "
            f"pixel-identical copies of another image in the same split ({_count(ex['groups'], 'group')} of "
            "identical images in all); copies weigh those pictures more in training and in scores.")
    if ex["label_conflict_groups"]:
        add("medium", "labels",
            f"{_count(ex['label_conflict_groups'], 'group')} of identical images "
            f"{'carries' if ex['label_conflict_groups'] == 1 else 'carry'} different labels: in each, at least one "
            "label is wrong.")
    near = dup.get("near")
    if near:
        for split, n in near["near_copies_of_reference_in"].items():
            if n:
                add("medium", "duplicates",
                    f"{_count(n, split + ' image')} {_are(n)} near-identical (not pixel-identical) to {ref} images "
                    f"(perceptual hash within {near['threshold_bits']} bits): the same photos re-encoded or "
                    "re-cropped.")
        if near["truncated"]:
            add("info", "duplicates",
                f"The near-duplicate search stopped at {_fmt(near['pairs'])} pairs (typical of video frames, which "
                "are near-identical by the thousand): near-duplicate counts are lower bounds. Exact duplicates "
                "are complete; `--no-near` skips this search.")
        if near["pairs_within_split"]:
            same = " and ".join(f"{_fmt(n)} from one {kind}" for kind, n in near["pairs_same_id"].items())
            same = f"of all near-identical pairs, {same}" if same else ""
            conflicts = (f"; {_count(near['label_conflict_pairs'], 'near-identical pair')} "
                         f"{'carries' if near['label_conflict_pairs'] == 1 else 'carry'} different labels"
                         if names else "")
            add("info", "duplicates",
                f"{_count(near['pairs_within_split'], 'pair')} of near-identical images"
                + (f" {'lies' if near['pairs_within_split'] == 1 else 'lie'} within one split" if multi else "")
                + (f" ({same})" if same else "") + conflicts + ".")
    # --- images
    images = result["images"]
    if images["near_blank_count"]:
        add("medium", "images",
            f"{_count(images['near_blank_count'], 'image')} {_are(images['near_blank_count'])} blank or nearly "
            "blank (pixel standard deviation "
            f"below {BLANK_STD:g}): they hold no face; drop them.")
    files = images.get("files")
    if files:
        if files["small_count"]:
            add("medium", "images",
                f"{_count(files['small_count'], 'image file')} {_are(files['small_count'])} smaller than "
                f"{SMALL_SIDE} pixels on the short side: too little detail for expressions.")
        if files.get("modes", {}).get("unreadable"):
            add("high", "images", f"{_count(files['modes']['unreadable'], 'image file')} cannot be read.")
        if files["distinct_sizes"] > 1:
            add("info", "images",
                f"Image files come in {_fmt(files['distinct_sizes'])} sizes (short side {files['short_side_min']} "
                f"to {files['short_side_max']} px); all are resized to {images['delivered_size']}.")
    if images["very_dark_count"] or images["very_bright_count"]:
        dark = images["very_dark_count"]
        add("info", "images", f"{_count(dark, 'image')} {_are(dark)} very dark and "
            f"{_fmt(images['very_bright_count'])} very bright (mean grey level below {DARK_MEAN:g} / above "
            f"{BRIGHT_MEAN:g}).")
    for split, targets in (result["regression_targets"] or {}).items():
        for target, t in targets.items():
            if t["labelled"] > 1 and t["std"] is not None and t["std"] < 1e-6:
                add("medium", "labels", f"{target.capitalize()} is constant ({t['mean']:g}) over the "
                    f"{_count(t['labelled'], 'labelled sample')}{f' of {split}' if multi else ''}: there is nothing to "
                    "learn from it.")
    unl = sum(dist["unlabelled"].values())
    if unl and names:
        add("info", "labels", f"{_count(unl, 'sample')} without a class label (kept for valence/arousal or "
            "ignored).")
    warnings.sort(key=lambda w: SEVERITY_ORDER[w["severity"]])
    return warnings


REMEDIES = {
    "imbalance": (
        "Imbalanced classes",
        "Pick the best checkpoint by macro-F1 (`--set select_metric=val_macro_f1`) and try a remedy: class "
        "weights (`--set loss.class_weights=effective` or `inverse`), a class-balanced sampler "
        "(`--set sampler=balanced`), focal loss (`--set loss.name=focal`) or logit adjustment "
        "(`--set loss.name=logit_adjusted`).",
    ),
    "leakage": (
        "Same subject or video on both sides",
        "Re-split so that no subject/video is in two splits: `affectlens split DATASET --method "
        "stratified_grouped --group-by video -o split.csv` (or `--group-by subject`), then train on the "
        "manifest it writes.",
    ),
    "groups": (
        "Classes backed by few subjects or videos",
        "Evaluate on a grouped split (see above) to see the honest score; collect more "
        "subjects/videos for those classes, or cap how many frames one video contributes.",
    ),
    "duplicates": (
        "Duplicate images",
        "Remove the copies listed in duplicates.csv, at least those of evaluation images that also occur in "
        "training, before reporting validation or test scores.",
    ),
    "labels": (
        "Label problems",
        "Check the groups of identical images with different labels (duplicates.csv, `labels_differ`) and fix "
        "or drop them.",
    ),
    "split_shift": (
        "Splits with different class mixes",
        "Compare per-class recall and macro-F1 rather than accuracy across splits, or re-split with "
        "`affectlens split --method stratified`.",
    ),
    "images": (
        "Unusable images",
        "Drop the blank, unreadable or tiny images listed in the report.",
    ),
}


def build_remedies(result: dict[str, Any]) -> list[dict[str, str]]:
    """The remedies for the topics the warnings raised (high and medium only), in warning order."""
    topics: list[str] = []
    for w in result["warnings"]:
        if w["severity"] != "info" and w["topic"] not in topics:
            topics.append(w["topic"])
    return [{"topic": t, "title": REMEDIES[t][0], "advice": REMEDIES[t][1]} for t in topics if t in REMEDIES]


def _json_ready(value: Any) -> Any:
    """Plain Python types only (NumPy scalars and arrays converted, inf/nan as None)."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    return value
