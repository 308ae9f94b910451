"""Loaders for the other research sets kept as npz in ../shared/data (CK+, SentiBank; AFEW-VA: data/afewva)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectlens.data.afewva import load_afewva
from affectlens.data.dataset import EmotionDataset
from affectlens.data.labels import canonical_class_names
from affectlens.data.npz import find_npz, open_npz

__all__ = ["load_afewva", "load_ckplus", "load_sentibank"]


def load_ckplus(path: str | Path) -> EmotionDataset:
    """CK+48: 981 posed faces, 7 classes incl. contempt, subject ids for subject-independent folds.

    CK+'s names (``anger``, ``happy``, ...) are mapped onto the shared vocabulary (``Angry``, ``Happy``)
    in CK+'s own order, so models trained on CK+ answer the labels every other model answers.
    """
    npz_path = find_npz(Path(path))
    data = open_npz(npz_path, required=("images", "labels", "subject", "class_names"))
    return EmotionDataset(
        name="ckplus",
        class_names=canonical_class_names(data["class_names"]),
        labels=data["labels"].astype(np.int64),
        images=data["images"],
        subjects=np.char.add("S", data["subject"].astype(str)),
        videos=np.char.add(np.char.add(np.char.add("S", data["subject"].astype(str)), "_"),
                           data["sequence"].astype(str)) if "sequence" in data else None,
        frames=data["frame"].astype(np.int64) if "frame" in data else None,
        source_ids=data["filename"].astype(str) if "filename" in data else None,
        meta={"source": str(npz_path)},
    )


def load_sentibank(path: str | Path, channels: int = 3) -> EmotionDataset:
    """Twitter SentiBank polarity: 603 general images, negative/positive, 5 official folds as splits."""
    npz_path = find_npz(Path(path))
    data = open_npz(npz_path, required=("images", "labels", "partition"))
    images = data["images"]
    if channels == 1:
        images = _to_grey(images)
    return EmotionDataset(
        name="sentibank",
        class_names=[str(c) for c in data.get("class_names", np.array(["negative", "positive"]))],
        labels=data["labels"].astype(np.int64),
        images=images,
        splits=np.char.add("fold", data["partition"].astype(str)),
        source_ids=data["image_id"].astype(str) if "image_id" in data else None,
        meta={"source": str(npz_path)},
    )


def _to_grey(images: np.ndarray) -> np.ndarray:
    """RGB ``(N, H, W, 3)`` uint8 to grey ``(N, H, W)`` with the ITU-R 601 weights OpenCV uses."""
    return (images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).round().astype(np.uint8)
