"""Turning an :class:`EmotionDataset` into training batches.

The torch ``Dataset`` here implements ``__getitems__`` so the DataLoader fetches a whole batch
with one fancy-index into the image array instead of one Python call per image; any sampler
(shuffle, class-balanced, distributed) still works because it only yields indices.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from affectlens.data.dataset import EmotionDataset


class BatchDataset(Dataset):
    """Yields dict batches: ``image`` uint8 (B,C,H,W), ``label`` long, and when present ``soft``
    (B,K) label distributions and ``va`` (B,2) valence/arousal targets (NaN = unknown)."""

    def __init__(self, dataset: EmotionDataset) -> None:
        self.dataset = dataset
        if dataset.has_regression_targets:
            self.va = np.stack([dataset.valence, dataset.arousal], axis=1).astype(np.float32)  # type: ignore[list-item]
        else:
            self.va = None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([index])

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        idx = np.asarray(indices, dtype=np.int64)
        images = torch.from_numpy(np.ascontiguousarray(self.dataset.batch(idx))).permute(0, 3, 1, 2)
        batch = {"image": images.contiguous(), "label": torch.from_numpy(self.dataset.labels[idx]),
                 "index": torch.from_numpy(idx)}
        if self.dataset.soft_labels is not None:
            batch["soft"] = torch.from_numpy(self.dataset.soft_labels[idx].astype(np.float32))
        if self.va is not None:
            batch["va"] = torch.from_numpy(self.va[idx])
        return batch


def keep_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Collate function for :class:`BatchDataset`: the batch is already collated."""
    return batch


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B,C,H,W) -> float32 in [0, 1]."""
    return images.float().div_(255.0)


class SequenceBatchDataset(Dataset):
    """Batches of windows: ``image`` uint8 (B,T,C,H,W) (zeros at padding), ``label`` long (B,T)
    (-1 at padding), ``va`` float (B,T,2) (NaN where unlabelled or padding) and ``index`` (B,T)
    sample indices (-1 at padding). Fetched by a batch sampler yielding window indices."""

    def __init__(self, dataset: EmotionDataset, windows: np.ndarray) -> None:
        self.dataset = dataset
        self.windows = np.asarray(windows, np.int64)
        self.frames = BatchDataset(dataset)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([index])

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        rows = self.windows[np.asarray(indices, np.int64)]
        valid = rows >= 0
        flat = self.frames.__getitems__(rows[valid].tolist())
        b, t = rows.shape
        image = torch.zeros((b, t, *flat["image"].shape[1:]), dtype=torch.uint8)
        mask = torch.from_numpy(valid)
        image[mask] = flat["image"]
        label = torch.full((b, t), -1, dtype=torch.long)
        label[mask] = flat["label"]
        batch = {"image": image, "label": label, "index": torch.from_numpy(rows), "mask": mask}
        if "va" in flat:
            va = torch.full((b, t, 2), float("nan"))
            va[mask] = flat["va"]
            batch["va"] = va
        return batch
