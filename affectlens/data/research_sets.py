"""Loaders for the other research sets kept as npz in ../shared/data (CK+, SentiBank, AFEW-VA)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectlens.data.dataset import NO_LABEL, EmotionDataset
from affectlens.data.labels import canonical_class_names
from affectlens.data.npz import find_npz, open_npz


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


def load_afewva(path: str | Path, channels: int = 3) -> EmotionDataset:
    """AFEW-VA clip: face crops with per-frame valence/arousal (AFEW-VA scale -10..10)."""
    npz_path = find_npz(Path(path))
    data = open_npz(npz_path, required=("face_crops", "valence", "arousal"))
    images = data["face_crops"]
    if channels == 1:
        images = _to_grey(images)
    n = len(images)
    video = str(data["video_id"]) if "video_id" in data else npz_path.stem
    return EmotionDataset(
        name="afewva",
        class_names=[],
        labels=np.full(n, NO_LABEL),
        images=images,
        valence=data["valence"].astype(np.float32),
        arousal=data["arousal"].astype(np.float32),
        videos=np.full(n, video),
        subjects=np.full(n, str(data["actor"])) if "actor" in data else None,
        frames=np.arange(n),
        meta={"source": str(npz_path), "valence_range": (-10, 10)},
    )


def _to_grey(images: np.ndarray) -> np.ndarray:
    """RGB ``(N, H, W, 3)`` uint8 to grey ``(N, H, W)`` with the ITU-R 601 weights OpenCV uses."""
    return (images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).round().astype(np.uint8)
