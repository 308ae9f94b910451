"""Train/validation splits: stratified, grouped (no subject or video in two splits), or both.

A random image-level split of video frames or of several photos per person leaks identity into
validation and inflates accuracy; grouping by subject/video removes that leak.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedShuffleSplit

from affectlens.errors import AffectlensError


def holdout_split(labels: np.ndarray, fraction: float, seed: int = 0,
                  groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held_out): stratified by label, and grouped when ``groups`` is given."""
    n = len(labels)
    if not 0 < fraction < 1:
        raise AffectlensError(f"split fraction must be between 0 and 1, got {fraction}")
    strat = np.where(labels >= 0, labels, labels.max() + 1)
    if groups is not None:
        n_splits = max(2, round(1 / fraction))
        folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        train_idx, held_idx = next(folds.split(np.zeros(n), strat, groups))
        return np.sort(train_idx), np.sort(held_idx)
    counts = np.bincount(strat)
    if counts[counts > 0].min() < 2:
        rng = np.random.default_rng(seed)
        perm = rng.permutation(n)
        cut = max(1, int(round(n * fraction)))
        return np.sort(perm[cut:]), np.sort(perm[:cut])
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    train_idx, held_idx = next(splitter.split(np.zeros(n), strat))
    return np.sort(train_idx), np.sort(held_idx)


def stratified_sample(labels: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    """At most ``limit`` indices keeping the class proportions (for quick runs and tests)."""
    if limit <= 0 or limit >= len(labels):
        return np.arange(len(labels))
    _, held = holdout_split(labels, limit / len(labels), seed)
    return held
