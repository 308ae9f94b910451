"""A dataset at the size and channels a model expects, and the dataset a data config describes.

Training (its data section), evaluation (a model card) and the command line all need "these
images, as S x S x C"; keeping it here, below the model and training layers, lets evaluation use
it without importing training. Configs are read by duck typing (:class:`DatasetSpec`), so this
module knows nothing of the training config classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from affectlens.data.dataset import EmotionDataset
from affectlens.data.image_io import to_channels
from affectlens.data.registry import load_dataset, loader_accepts


class DatasetSpec(Protocol):
    """What :func:`load_configured` reads from a config (e.g. the ``data`` section of a training config)."""

    kind: str
    path: str
    image_size: int
    channels: int
    options: Mapping[str, Any]


def conform(dataset: EmotionDataset, size: int, channels: int) -> EmotionDataset:
    """Resize / convert an in-memory dataset to ``size`` x ``size`` x ``channels``.

    A dataset read lazily from files (no ``images`` array) gets the new ``image_size`` and
    ``channels``: it fits each image to them when read (an Aff-Wild2 folder of 112 px RGB frames
    evaluated by a 48 px grey model).
    """
    if dataset.images is None:  # read lazily: each file is fitted to these on reading
        return replace(dataset, image_size=(size, size), channels=channels)
    if dataset.image_size == (size, size) and dataset.channels == channels:
        return dataset
    import cv2

    out = np.empty((len(dataset), size, size, channels), np.uint8)
    for i, image in enumerate(dataset.images):
        image = to_channels(image, channels)
        if image.shape[:2] != (size, size):
            image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
            image = image.reshape(size, size, channels)
        out[i] = image
    return replace(dataset, images=out, image_size=(size, size), channels=channels)


def load_configured(spec: DatasetSpec) -> EmotionDataset:
    """Load the dataset ``spec`` describes, at its ``image_size`` and ``channels``.

    Loaders that resize or convert themselves are given the size and channels (unless the
    config's options set them); every other dataset is conformed after loading.
    """
    options = dict(spec.options)
    for name, value in (("image_size", spec.image_size), ("channels", spec.channels)):
        if loader_accepts(spec.kind, name):
            options.setdefault(name, value)
    dataset = load_dataset(spec.kind, spec.path, **options)
    return conform(dataset, spec.image_size, spec.channels)
