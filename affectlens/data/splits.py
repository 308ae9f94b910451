"""Train/validation splits: stratified, grouped (no subject or video in two splits), or both.

A random image-level split of video frames or of several photos per person leaks identity into
validation and inflates accuracy; grouping by subject/video removes that leak.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.model_selection import StratifiedGroupKFold, StratifiedShuffleSplit

from affectlens.errors import AffectlensError, unknown_name_error

if TYPE_CHECKING:
    from affectlens.data.dataset import EmotionDataset


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
    held_out = math.ceil(n * fraction)  # what StratifiedShuffleSplit holds out
    classes = int((counts > 0).sum())
    # stratifying needs two samples per class, and every class on both sides (sklearn raises otherwise)
    if counts[counts > 0].min() < 2 or held_out < classes or n - held_out < classes:
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


# ------------------------------------------------------------------------------------ affectlens split
SPLIT_METHODS = ("stratified", "grouped", "stratified_grouped")
GROUP_BY = ("auto", "subject", "video", "subject+video")
DEFAULT_SPLIT_NAMES = ("train", "val", "test")


def parse_fractions(fractions: str | dict[str, float] | list[float] | tuple[float, ...]) -> dict[str, float]:
    """Split names and fractions from ``"train=0.8,val=0.1,test=0.1"``, ``"0.8,0.2"``, a dict or a list.

    Unnamed fractions are called train, val, test in that order. They must be positive and sum to 1.
    """
    if isinstance(fractions, str):
        parts = [p.strip() for p in fractions.split(",") if p.strip()]
        named: dict[str, float] = {}
        for i, part in enumerate(parts):
            name, _, value = part.rpartition("=")
            if not name:
                name = DEFAULT_SPLIT_NAMES[i] if i < len(DEFAULT_SPLIT_NAMES) else f"split{i + 1}"
            try:
                named[name.strip()] = float(value)
            except ValueError:
                raise AffectlensError(f"split fraction '{part}' is not a number (use e.g. train=0.8,val=0.2)") \
                    from None
        fractions = named
    elif not isinstance(fractions, dict):
        values = list(fractions)
        if len(values) > len(DEFAULT_SPLIT_NAMES):
            raise AffectlensError(f"{len(values)} unnamed fractions; name them, e.g. a=0.5,b=0.3,c=0.2")
        fractions = dict(zip(DEFAULT_SPLIT_NAMES, values, strict=False))
    out = {str(k): float(v) for k, v in fractions.items()}
    if len(out) < 2:
        raise AffectlensError(f"need at least two split fractions, got {out}")
    bad = [k for k, v in out.items() if not 0 < v < 1]
    if bad:
        raise AffectlensError(f"split fractions must be between 0 and 1; check {', '.join(bad)}")
    if abs(sum(out.values()) - 1) > 1e-6:
        raise AffectlensError(f"split fractions must sum to 1, got {sum(out.values()):g} ({out})")
    return out


def group_ids(dataset: EmotionDataset, group_by: str = "auto") -> tuple[np.ndarray, str]:
    """Integer group per sample, and what it means, so that no subject/video lands in two splits.

    ``auto`` uses subject and video ids together when both exist (samples sharing either one stay
    together: the strictest choice), else whichever exists. Samples with an empty id are each
    their own group.
    """
    if group_by not in GROUP_BY:
        raise unknown_name_error("group-by", group_by, GROUP_BY)
    columns = {"subject": dataset.subjects, "video": dataset.videos}
    if group_by == "auto":
        wanted = [k for k, v in columns.items() if v is not None]
    else:
        wanted = group_by.split("+")
    missing = [k for k in wanted if columns[k] is None]
    if not wanted or missing:
        what = " and ".join(missing) if missing else "subject or video"
        named = " and ".join(f"'{k}'" for k in missing) if missing else "'subject' or 'video'"
        option = f"--group-by {group_by}: " if group_by != "auto" else ""
        raise AffectlensError(f"{option}dataset '{dataset.name}' has no {what} ids to group by (a manifest's {named} "
                              "column); use --method stratified, or add the column to a manifest")
    # Samples are graph nodes; each sample is linked to the first sample sharing one of its ids.
    # The connected components are then the groups that must stay in one split.
    n = len(dataset)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    for key in wanted:
        ids = np.asarray(columns[key]).astype(str)
        _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
        keep = ids != ""
        rows.append(np.flatnonzero(keep))
        cols.append(first[inverse.reshape(-1)][keep])
    src, dst = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(src), np.int8), (src, dst)), shape=(n, n))
    _, roots = connected_components(graph, directed=False)
    _, codes = np.unique(roots, return_inverse=True)
    return codes.astype(np.int64), "+".join(wanted)


def make_splits(dataset: EmotionDataset, method: str = "stratified_grouped",
                fractions: str | dict[str, float] | list[float] | tuple[float, ...] = (0.8, 0.2),
                group_by: str = "auto", seed: int = 0) -> dict[str, np.ndarray]:
    """Split ``dataset`` into named parts (sorted sample indices), reproducibly for a given ``seed``.

    Methods: ``stratified`` (each class split in the given fractions; for data without repeated
    subjects), ``grouped`` (whole subjects/videos per split, sizes matched to the fractions), and
    ``stratified_grouped`` (whole subjects/videos, chosen so each split's class mix matches the
    whole). Grouping is what removes identity leakage from video frames or repeated photos.
    """
    if method not in SPLIT_METHODS:
        raise unknown_name_error("split method", method, SPLIT_METHODS)
    parts = parse_fractions(fractions)
    labels = np.asarray(dataset.labels)
    strata = np.where(labels >= 0, labels, labels.max(initial=0) + 1)
    rng = np.random.default_rng(seed)
    if method == "stratified":
        assignment = _stratified_assignment(strata, list(parts.values()), rng)
    else:
        groups, _ = group_ids(dataset, group_by)
        if method == "grouped":
            strata = np.zeros(len(labels), np.int64)
        assignment = _grouped_assignment(groups, strata, list(parts.values()), rng)
    out = {name: np.flatnonzero(assignment == s) for s, name in enumerate(parts)}
    empty = [name for name, idx in out.items() if not len(idx)]
    if empty:
        raise AffectlensError(f"dataset '{dataset.name}' is too small (or has too few groups) to fill split(s) "
                              f"{', '.join(empty)} with fractions {parts}")
    return out


def _stratified_assignment(strata: np.ndarray, fractions: list[float], rng: np.random.Generator) -> np.ndarray:
    """Per class: shuffle, then cut into the fractions (largest-remainder rounding)."""
    assignment = np.empty(len(strata), np.int64)
    f = np.asarray(fractions)
    for stratum in np.unique(strata):
        idx = rng.permutation(np.flatnonzero(strata == stratum))
        exact = len(idx) * f
        counts = np.floor(exact).astype(int)
        short = len(idx) - counts.sum()
        counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
        assignment[idx] = np.repeat(np.arange(len(f)), counts)
    return assignment


def _grouped_assignment(groups: np.ndarray, strata: np.ndarray, fractions: list[float],
                        rng: np.random.Generator) -> np.ndarray:
    """Greedy: each group (roughly largest first, randomised by the seed) goes to the split where it
    best brings the split sizes and per-class counts toward their targets."""
    n_groups = int(groups.max()) + 1
    n_strata = int(strata.max()) + 1
    counts = np.zeros((n_groups, n_strata))
    np.add.at(counts, (groups, strata), 1)
    total = counts.sum(axis=0)
    f = np.asarray(fractions)
    target = f[:, None] * total[None, :]
    size_target = f * total.sum()
    scale = np.maximum(total, 1)
    current = np.zeros((len(f), n_strata))
    sizes = counts.sum(axis=1)
    order = np.argsort(-(sizes * rng.uniform(0.5, 1.5, n_groups)), kind="stable")
    choice = np.empty(n_groups, np.int64)

    def row_cost(rows: np.ndarray) -> np.ndarray:
        class_cost = (((rows - target) / scale) ** 2).sum(axis=1) / n_strata
        size_cost = ((rows.sum(axis=1) - size_target) / total.sum()) ** 2
        return class_cost + size_cost

    for g in order:
        before = row_cost(current)
        after = row_cost(current + counts[g][None, :])
        s = int(np.argmin(after - before))
        current[s] += counts[g]
        choice[g] = s
    return choice[groups]
