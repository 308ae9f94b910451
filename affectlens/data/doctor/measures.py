"""What the doctor measures about classes, splits, subjects/videos and images (duplicates aside).

Each function returns one JSON-ready section of the inspection. Measuring is kept apart from
judging: whether a number is a problem is decided in :mod:`affectlens.data.doctor.findings`, so
report.json holds the same numbers whatever gets flagged, and a new finding needs no new measure.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
from tqdm import tqdm

from affectlens.data.dataset import EmotionDataset, file_paths
from affectlens.data.doctor.thresholds import BLANK_STD, BRIGHT_MEAN, DARK_MEAN, SMALL_SIDE
from affectlens.data.duplicates import hash_hex
from affectlens.data.image_io import read_header
from affectlens.errors import AffectlensError

GROUP_KINDS = (("subject", "subjects", "subjects"), ("video", "videos", "videos"))


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


# ---------------------------------------------------------------------------------------------- images
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
        files["small_listed"] = [describe_sample(dataset, i, names, codes)
                                 for i in files.pop("small_indices")[:max_listed]]
    h, w = dataset.image_size
    return {
        "delivered_size": f"{h}x{w}",
        "delivered_channels": dataset.channels,
        "files": files,
        "brightness_mean": float(mean.mean()) if len(mean) else 0.0,
        "brightness_percentiles": {p: float(np.percentile(mean, p)) for p in (1, 50, 99)} if len(mean) else {},
        "contrast_median_std": float(np.median(std)) if len(std) else 0.0,
        "near_blank_count": int(len(blank)),
        "near_blank": [{**describe_sample(dataset, i, names, codes), "std": float(std[i]), "mean": float(mean[i])}
                       for i in blank[:max_listed]],
        "very_dark_count": int(len(dark)),
        "very_bright_count": int(len(bright)),
        "grey_stored_as_rgb": int(scan["grey_rgb"].sum()) if dataset.channels == 3 else None,
    }


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


# ---------------------------------------------------------------------------------------------- samples
def describe_sample(dataset: EmotionDataset, i: int, names: list[str], codes: np.ndarray,
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
