"""The one dataset container every loader returns.

Every source (FER2013 npz or CSV, FER+ votes, class-per-folder trees, manifest CSVs, Aff-Wild2
annotation files) becomes an :class:`EmotionDataset`: uint8 images plus per-sample arrays
(labels, optional soft labels, valence/arousal, subject, video, frame, split). Keeping one shape
means training, evaluation and inspection never need to know where the data came from.

Images are either held in memory (``images``: small datasets such as FER2013), read lazily
from ``paths`` (large frame collections such as Aff-Wild2), resized to ``image_size``, or read
from a packed store's memory-mapped array (``store``: millions of frames without decoding a JPEG).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from affectlens.data.image_io import read_image, to_channels
from affectlens.data.packed_images import PackedImages
from affectlens.errors import AffectlensError

#: Label value of a sample that has no class label (e.g. a valence/arousal-only frame).
NO_LABEL = -1


@dataclass
class EmotionDataset:
    """Images with labels and optional ids; every per-sample array has the same length.

    Attributes:
        name: human-readable name of the source (shown in reports).
        class_names: names of the classes, index = label value.
        labels: int64 class index per sample, ``NO_LABEL`` where unknown.
        images: uint8 array ``(N, H, W, C)`` when held in memory, else ``None``.
        paths: image files when read lazily, else ``None``.
        store: the rows of a packed store holding the images (:mod:`affectlens.data.packed`), else ``None``.
        image_size: ``(height, width)`` every image is delivered at.
        channels: 1 (grey) or 3 (RGB) channels every image is delivered with.
        soft_labels: float32 ``(N, K)`` label distributions (e.g. FER+ votes), or ``None``.
        valence, arousal: float32 continuous targets (NaN where unknown), or ``None``.
        subjects, videos: string ids of the person / source video of each sample, or ``None``.
        frames: int frame index within its video, or ``None``.
        splits: string split name per sample (``Training``, ``PublicTest``...), or ``None``.
        source_ids: string id of each sample in its source (row number, file name) for reports.
    """

    name: str
    class_names: list[str]
    labels: np.ndarray
    images: np.ndarray | None = None
    paths: list[Path] | None = None
    image_size: tuple[int, int] = (48, 48)
    channels: int = 1
    soft_labels: np.ndarray | None = None
    valence: np.ndarray | None = None
    arousal: np.ndarray | None = None
    subjects: np.ndarray | None = None
    videos: np.ndarray | None = None
    frames: np.ndarray | None = None
    splits: np.ndarray | None = None
    source_ids: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    store: PackedImages | None = None

    #: names of the per-sample arrays, used to subset them all together
    PER_SAMPLE = (
        "labels", "images", "soft_labels", "valence", "arousal",
        "subjects", "videos", "frames", "splits", "source_ids",
    )

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.images is None and self.paths is None and self.store is None:
            raise ValueError("EmotionDataset needs images, paths or a packed store")
        if self.images is not None:
            self.images = _as_nhwc(self.images)
            self.image_size = (int(self.images.shape[1]), int(self.images.shape[2]))
            self.channels = int(self.images.shape[3])
        n = len(self.labels)
        for name in self.PER_SAMPLE:
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} entries, labels has {n}")
        if self.paths is not None and len(self.paths) != n:
            raise ValueError(f"paths has {len(self.paths)} entries, labels has {n}")
        if self.store is not None and len(self.store) != n:
            raise ValueError(f"store has {len(self.store)} images, labels has {n}")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def has_regression_targets(self) -> bool:
        return self.valence is not None and self.arousal is not None

    def image(self, index: int) -> np.ndarray:
        """Return one image as uint8 ``(H, W, C)`` at ``image_size`` with ``channels`` channels."""
        if self.images is not None:
            return self.images[index]
        if self.store is not None:
            return self.batch(np.array([index]))[0]
        assert self.paths is not None
        image = read_image(self.paths[index])
        return _fit(image, self.image_size, self.channels)

    def batch(self, indices: np.ndarray) -> np.ndarray:
        """Return images ``indices`` as one uint8 array ``(B, H, W, C)``."""
        if self.images is not None:
            return self.images[indices]
        if self.store is not None:
            stored = self.store.read(indices)
            if stored.shape[1:] == (*self.image_size, self.channels):
                return stored
            return np.stack([_fit(image, self.image_size, self.channels) for image in stored]) if len(stored) \
                else np.zeros((0, *self.image_size, self.channels), np.uint8)
        return np.stack([self.image(int(i)) for i in indices])

    def subset(self, indices: np.ndarray) -> EmotionDataset:
        """A new dataset holding only ``indices`` (in that order); arrays are copied."""
        indices = np.asarray(indices, dtype=np.int64)
        changes: dict = {}
        for name in self.PER_SAMPLE:
            value = getattr(self, name)
            if value is not None:
                changes[name] = value[indices]
        if self.paths is not None:
            changes["paths"] = [self.paths[i] for i in indices]
        if self.store is not None:
            changes["store"] = self.store.take(indices)
        return replace(self, **changes)

    def split_names(self) -> list[str]:
        """Split names in order of first appearance (empty if the dataset has no split column)."""
        if self.splits is None:
            return []
        _, first = np.unique(self.splits, return_index=True)
        return [str(self.splits[i]) for i in sorted(first)]

    def select_splits(self, names: str | list[str]) -> EmotionDataset:
        """Samples whose split is one of ``names``; a clear error names unknown splits."""
        wanted = [names] if isinstance(names, str) else list(names)
        available = self.split_names()
        if self.splits is None:
            raise AffectlensError(f"dataset '{self.name}' has no split column; cannot select {wanted}")
        unknown = [w for w in wanted if w not in available]
        if unknown:
            raise AffectlensError(
                f"dataset '{self.name}' has no split {', '.join(unknown)}; available: {', '.join(available)}"
            )
        mask = np.isin(self.splits, wanted)
        return self.subset(np.flatnonzero(mask))

    def class_counts(self) -> np.ndarray:
        """Number of labelled samples per class."""
        valid = self.labels[self.labels >= 0]
        return np.bincount(valid, minlength=self.num_classes)[: self.num_classes]

    def label_mass(self, soft: bool = False) -> np.ndarray:
        """Samples per class, or with ``soft`` the summed label distributions (what a model trained on
        soft labels learns as its class prior)."""
        if soft and self.soft_labels is not None:
            return self.soft_labels.astype(np.float64).sum(axis=0)[: self.num_classes]
        return self.class_counts().astype(np.float64)

    def with_labels(self, labels: np.ndarray, class_names: list[str]) -> EmotionDataset:
        """The same samples with other labels (e.g. FER+ majority vote instead of FER2013)."""
        return replace(self, labels=np.asarray(labels, dtype=np.int64), class_names=list(class_names))

    def describe(self) -> str:
        """One line: name, size, classes, image shape, which optional columns exist."""
        extras = [f.name for f in fields(self) if f.name in self.PER_SAMPLE[2:] and getattr(self, f.name) is not None]
        h, w = self.image_size
        return (
            f"{self.name}: {len(self)} samples, {self.num_classes} classes, {h}x{w}x{self.channels}"
            + (f", with {', '.join(extras)}" if extras else "")
        )


def concatenate(datasets: list[EmotionDataset], name: str | None = None) -> EmotionDataset:
    """Join datasets with the same classes and image shape (e.g. train + validation for fine-tuning)."""
    first = datasets[0]
    for other in datasets[1:]:
        if other.class_names != first.class_names:
            raise AffectlensError(f"cannot join '{first.name}' and '{other.name}': different class names")
    if all(d.store is not None for d in datasets):
        changes: dict = {"store": PackedImages.join([d.store for d in datasets]), "images": None}  # type: ignore[misc]
    elif any(d.store is not None for d in datasets):
        raise AffectlensError("cannot join a packed store with a dataset stored otherwise")
    elif any(d.images is None for d in datasets):
        paths: list[Path] = []
        for d in datasets:
            if d.paths is None:
                raise AffectlensError("cannot join an in-memory dataset with a file-based one")
            paths.extend(d.paths)
        changes = {"paths": paths, "images": None}
    else:
        changes = {"images": np.concatenate([d.images for d in datasets])}  # type: ignore[misc]
    for attr in EmotionDataset.PER_SAMPLE:
        if attr == "images":
            continue
        values = [getattr(d, attr) for d in datasets]
        if all(v is not None for v in values):
            changes[attr] = np.concatenate(values)
        else:
            changes[attr] = None
    return replace(first, name=name or "+".join(d.name for d in datasets), **changes)


def file_paths(dataset: EmotionDataset) -> list[str] | None:
    """The image files behind a dataset (lazy or loaded into memory from files), if any."""
    if dataset.paths is not None:
        return [str(p) for p in dataset.paths]
    paths = dataset.meta.get("paths")
    return list(paths) if paths is not None and len(paths) == len(dataset) else None


def _as_nhwc(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {images.dtype}")
    if images.ndim == 3:
        return images[..., None]
    if images.ndim == 4 and images.shape[3] in (1, 3):
        return images
    raise ValueError(f"images must be (N,H,W) or (N,H,W,1|3), got {images.shape}")


def _fit(image: np.ndarray, size: tuple[int, int], channels: int) -> np.ndarray:
    import cv2

    image = to_channels(image, channels)
    if image.shape[:2] != tuple(size):
        interp = cv2.INTER_AREA if image.shape[0] > size[0] else cv2.INTER_LINEAR
        image = cv2.resize(image, (size[1], size[0]), interpolation=interp)
        if image.ndim == 2:
            image = image[..., None]
    return image
