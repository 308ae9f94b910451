"""How many duplicates a dataset holds, and where: within a split, across splits, in the training split.

The search itself (pixel digests, perceptual hashes, pairs within a Hamming distance) is
:mod:`affectlens.data.duplicates`, which works without the doctor; this module turns its groups and
pairs into the counts that decide whether validation scores can be trusted: copies of training
images in evaluation splits, copies within one split, and copies whose labels disagree.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from affectlens.data.dataset import EmotionDataset
from affectlens.data.doctor.measures import GROUP_KINDS, describe_sample
from affectlens.data.doctor.thresholds import BLANK_STD
from affectlens.data.duplicates import MAX_PAIRS, exact_groups, near_pairs


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
                           "members": [describe_sample(dataset, i, names, codes) for i in group[:50]]})
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
        "listed": [{"a": describe_sample(dataset, int(x), names, codes, scan["phash"]),
                    "b": describe_sample(dataset, int(y), names, codes, scan["phash"]),
                    "distance": int(d), "labels_differ": bool(f)}
                   for x, y, d, f in zip(a[:max_listed], b[:max_listed], dist[:max_listed], differ[:max_listed],
                                         strict=True)],
    }
