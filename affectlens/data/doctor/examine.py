"""The doctor's entry point: scan the pixels, measure, judge, advise, in that order.

:func:`inspect_dataset` is the one place where the steps meet, so the order of report.json's
sections (and of the keys within it) is set here and nowhere else.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from affectlens.data.dataset import EmotionDataset
from affectlens.data.doctor.duplicate_measures import duplicate_statistics
from affectlens.data.doctor.findings import build_warnings
from affectlens.data.doctor.measures import (
    class_distribution,
    describe,
    group_statistics,
    image_statistics,
    reference_split,
    regression_statistics,
    split_divergence,
    split_view,
)
from affectlens.data.doctor.remedies import build_remedies
from affectlens.data.doctor.scan import drop_unreadable, scan_images
from affectlens.data.doctor.thresholds import (
    BLANK_STD,
    DOMINANT_SHARE,
    FEW_GROUPS,
    IMBALANCE_HIGH,
    IMBALANCE_MEDIUM,
    JS_HIGH,
    JS_MEDIUM,
    MAX_LISTED,
)
from affectlens.data.duplicates import NEAR_THRESHOLD


def inspect_dataset(
    dataset: EmotionDataset,
    near_duplicates: bool = True,
    near_threshold: int = NEAR_THRESHOLD,
    max_listed: int = MAX_LISTED,
    progress: bool = True,
) -> dict[str, Any]:
    """Analyse ``dataset`` and return the JSON-ready inspection dict (see :mod:`affectlens.data.doctor`).

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
