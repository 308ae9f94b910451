"""FER+ (Barsoum et al. 2016): ten crowd votes per FER2013 image over 8 emotions + unknown + NF.

Two label forms are offered: the majority vote (the emotion with the most votes; rows where
``unknown`` or ``NF`` (not a face) gets the most votes are dropped, as FER+ does), and the soft
label distribution over the 8 emotions, which carries the annotators' disagreement and makes a
better training target than one hard label.

Sources: the npz in ../shared/data/ferplus, or the original ``fer2013new.csv`` (votes, no pixels)
joined row by row with the original ``fer2013.csv`` (pixels).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from affectlens.data.dataset import EmotionDataset
from affectlens.data.fer2013 import load_fer2013_csv
from affectlens.data.labels import canonical_class_names
from affectlens.data.npz import find_npz, open_npz
from affectlens.data.tabular import open_csv, require_columns
from affectlens.errors import AffectlensError

#: the vote columns of ``fer2013new.csv`` in FER+'s order (the order of the classes and of ``soft_labels``)
FERPLUS_VOTE_EMOTIONS = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]
VOTE_COLUMNS = [*FERPLUS_VOTE_EMOTIONS, "unknown", "NF"]
#: the same classes in the same order, named in the vocabulary every model answers (Neutral, Happy, ...)
FERPLUS_CLASSES = canonical_class_names(FERPLUS_VOTE_EMOTIONS)


def majority_labels(votes: np.ndarray) -> np.ndarray:
    """Majority-vote label per row over the 8 emotions; -1 where unknown/NF win or no votes exist."""
    votes = np.asarray(votes, dtype=np.int64)
    emotion = votes[:, :8]
    label = emotion.argmax(axis=1)
    best = emotion.max(axis=1)
    other_best = votes[:, 8:].max(axis=1)
    # FER+ drops a face when 'unknown' or 'not a face' gets at least as many votes as any emotion.
    drop = (best == 0) | (other_best >= best)
    return np.where(drop, -1, label)


def soft_labels(votes: np.ndarray) -> np.ndarray:
    """Vote distribution over the 8 emotions (rows without emotion votes become all zeros)."""
    emotion = np.asarray(votes, dtype=np.float32)[:, :8]
    total = emotion.sum(axis=1, keepdims=True)
    return np.divide(emotion, total, out=np.zeros_like(emotion), where=total > 0)


def load_ferplus(path: str | Path, fer2013_csv: str | Path | None = None, keep_dropped: bool = False) -> EmotionDataset:
    """Load FER+ with majority-vote ``labels`` and ``soft_labels``.

    Args:
        path: the FER+ npz (or its folder), or the original ``fer2013new.csv``.
        fer2013_csv: with a ``fer2013new.csv``, the original ``fer2013.csv`` that holds the pixels.
        keep_dropped: keep rows whose majority is unknown/NF (label -1) instead of removing them.
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        if fer2013_csv is None:
            raise AffectlensError(f"{path}: FER+ votes need the pixels of fer2013.csv; pass fer2013_csv")
        votes, usage, has_image = _read_votes_csv(path)
        pixels = load_fer2013_csv(fer2013_csv)
        if len(pixels) != len(votes):
            raise AffectlensError(
                f"{path}: {len(votes)} rows but {fer2013_csv} has {len(pixels)}; both must be the original files"
            )
        images = pixels.images
        source = str(path)
    else:
        npz_path = find_npz(path)
        data = open_npz(npz_path, required=("votes", "images", "usage"))
        votes, usage, images = data["votes"], data["usage"].astype(str), data["images"]
        has_image = data["has_image"] if "has_image" in data else np.ones(len(votes), bool)
        source = str(npz_path)
    labels = majority_labels(votes)
    dataset = EmotionDataset(
        name="ferplus",
        class_names=list(FERPLUS_CLASSES),
        labels=labels,
        images=images,
        soft_labels=soft_labels(votes),
        splits=np.asarray(usage).astype(str),
        source_ids=np.arange(len(labels)).astype(str),
        meta={"source": source, "votes": np.asarray(votes)},
    )
    keep = has_image & (labels >= 0) if not keep_dropped else has_image
    return dataset.subset(np.flatnonzero(keep))


def _read_votes_csv(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read ``fer2013new.csv``: ``Usage,Image name,neutral,...,contempt,unknown,NF``."""
    votes, usage, has_image = [], [], []
    with open_csv(path) as handle:
        reader = csv.DictReader(handle)
        require_columns(path, reader.fieldnames, ["Usage", "Image name", *VOTE_COLUMNS])
        for row_number, row in enumerate(reader, start=2):
            try:
                votes.append([int(row[c] or 0) for c in VOTE_COLUMNS])
            except ValueError:
                raise AffectlensError(f"{path}: row {row_number}: a vote count is not an integer") from None
            usage.append(row["Usage"])
            has_image.append(bool((row["Image name"] or "").strip()))
    return np.array(votes, dtype=np.int64), np.array(usage), np.array(has_image)
