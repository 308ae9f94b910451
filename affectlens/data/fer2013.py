"""FER2013 (Goodfellow et al. 2013): 35,887 48x48 grey faces, 7 classes, official splits.

Two sources are read: the npz repackaging in ../shared/data/fer2013 and the original Kaggle
``fer2013.csv`` (columns ``emotion,pixels,Usage``) that users download themselves.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from affectlens.data.dataset import EmotionDataset
from affectlens.data.tabular import open_csv, require_columns
from affectlens.errors import AffectlensError

FER2013_CLASSES = ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"]


def load_fer2013(path: str | Path) -> EmotionDataset:
    """Load FER2013 from an ``.npz`` (or a folder holding one) or from the original ``fer2013.csv``."""
    path = Path(path)
    if path.is_dir():
        candidates = sorted(path.glob("*.npz")) or sorted(path.glob("fer2013*.csv"))
        if not candidates:
            raise AffectlensError(f"{path}: no FER2013 .npz or fer2013.csv inside")
        path = candidates[0]
    if not path.exists():
        raise AffectlensError(f"{path}: dataset path does not exist")
    if path.suffix.lower() == ".csv":
        return load_fer2013_csv(path)
    return _load_fer2013_npz(path)


def _load_fer2013_npz(path: Path) -> EmotionDataset:
    from affectlens.data.npz import open_npz

    data = open_npz(path, required=("images", "labels", "usage"))
    return EmotionDataset(
        name="fer2013",
        class_names=[str(c) for c in data["class_names"]] if "class_names" in data else FER2013_CLASSES,
        labels=data["labels"].astype(np.int64),
        images=data["images"],
        splits=data["usage"].astype(str),
        source_ids=data["image_id"].astype(str) if "image_id" in data else None,
        meta={"source": str(path), "csv_row": data["fer2013_csv_row"] if "fer2013_csv_row" in data else None},
    )


def parse_pixels(text: str, row: int, path: Path, size: int = 48) -> np.ndarray:
    """Parse one space-separated ``pixels`` cell into a ``(size, size)`` uint8 image."""
    try:
        values = np.array(text.split(), dtype=np.int32)
    except ValueError:
        raise AffectlensError(f"{path}: row {row}: 'pixels' holds a value that is not an integer") from None
    if values.size != size * size:
        raise AffectlensError(f"{path}: row {row}: 'pixels' has {values.size} values, expected {size * size}")
    if values.min() < 0 or values.max() > 255:
        raise AffectlensError(f"{path}: row {row}: 'pixels' values must be 0..255")
    return values.astype(np.uint8).reshape(size, size)


def load_fer2013_csv(path: str | Path) -> EmotionDataset:
    """Read the original Kaggle ``fer2013.csv`` (header ``emotion,pixels,Usage``)."""
    path = Path(path)
    images, labels, usages = [], [], []
    with open_csv(path) as handle:
        reader = csv.DictReader(handle)
        require_columns(path, reader.fieldnames, ["emotion", "pixels", "Usage"])
        for row_number, row in enumerate(reader, start=2):
            try:
                label = int(row["emotion"])
            except (TypeError, ValueError):
                raise AffectlensError(f"{path}: row {row_number}: 'emotion' is not an integer") from None
            if not 0 <= label < len(FER2013_CLASSES):
                raise AffectlensError(f"{path}: row {row_number}: emotion {label} is outside 0..6")
            images.append(parse_pixels(row["pixels"] or "", row_number, path))
            labels.append(label)
            usages.append(row["Usage"])
    if not images:
        raise AffectlensError(f"{path}: no data rows")
    return EmotionDataset(
        name="fer2013",
        class_names=list(FER2013_CLASSES),
        labels=np.array(labels),
        images=np.stack(images),
        splits=np.array(usages),
        source_ids=np.arange(len(labels)).astype(str),
        meta={"source": str(path), "csv_row": np.arange(len(labels))},
    )
