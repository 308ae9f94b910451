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


def mixed_fer2013_targets(fer2013_labels: np.ndarray, votes: np.ndarray, ferplus_weight: float) -> np.ndarray:
    """Soft targets over FER2013's 7 classes: ``(1 - w)`` on the FER2013 label plus ``w`` times the FER+
    crowd's votes for those 7 emotions (contempt, unknown and not-a-face votes left out, the rest
    renormalised; a row without such votes keeps its FER2013 label alone)."""
    from affectlens.data.fer2013 import FER2013_CLASSES

    if not 0.0 <= ferplus_weight <= 1.0:
        raise AffectlensError(f"ferplus_weight must be in [0, 1], got {ferplus_weight}")
    order = [FERPLUS_CLASSES.index(name) for name in FER2013_CLASSES]  # FER+ column of each FER2013 class
    crowd = np.asarray(votes, dtype=np.float64)[:, order]
    total = crowd.sum(axis=1, keepdims=True)
    crowd = np.divide(crowd, total, out=np.zeros_like(crowd), where=total > 0)
    onehot = np.eye(len(FER2013_CLASSES))[np.asarray(fer2013_labels)]
    weight = np.where(total > 0, ferplus_weight, 0.0)
    return ((1.0 - weight) * onehot + weight * crowd).astype(np.float32)


def load_fer2013_ferplus(path: str | Path, ferplus_weight: float = 0.5) -> EmotionDataset:
    """FER2013's 7 classes with a mixed target: each face's FER2013 label and the FER+ crowd's votes.

    Why: FER2013's single labels are noisy (the FER+ crowd agrees with them on 63% of rows), while
    FER+ has no FER2013 classes' meaning for contempt and drops some faces. Training on the mix keeps
    the model a 7-class FER2013 model (its ``labels`` are FER2013's, for validation and test) while
    its ``soft_labels`` carry the crowd's disagreement (``data.label_mode: soft``). Reads the FER+ npz,
    which holds each row's FER2013 label beside the votes; rows without an image are left out.
    """
    from affectlens.data.fer2013 import FER2013_CLASSES

    data = open_npz(find_npz(Path(path)), required=("votes", "images", "usage", "fer2013_label"))
    labels = np.asarray(data["fer2013_label"], dtype=np.int64)
    has_image = data["has_image"] if "has_image" in data else np.ones(len(labels), bool)
    keep = np.flatnonzero(has_image & (labels >= 0))
    votes = np.asarray(data["votes"])[keep]
    return EmotionDataset(
        name="fer2013_ferplus",
        class_names=list(FER2013_CLASSES),
        labels=labels[keep],
        images=np.asarray(data["images"])[keep],
        soft_labels=mixed_fer2013_targets(labels[keep], votes, float(ferplus_weight)),
        splits=np.asarray(data["usage"]).astype(str)[keep],
        source_ids=keep.astype(str),
        meta={"source": str(path), "ferplus_weight": float(ferplus_weight)},
    )
