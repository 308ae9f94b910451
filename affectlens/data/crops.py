"""Centre crop and ten-crop by slicing, for NumPy arrays and torch tensors alike.

One definition serves training (torch), evaluation (torch) and the ONNX Runtime predictor (NumPy),
so every path sees exactly the same views; nothing here imports torch.
"""

from __future__ import annotations

from typing import Any


def center_crop(batch: Any, size: int) -> Any:
    """Centre crop ``(..., H, W)`` to ``size``; a no-op when the batch is already that size."""
    h, w = batch.shape[-2:]
    if size <= 0 or (h == size and w == size):
        return batch
    top, left = (h - size) // 2, (w - size) // 2
    return batch[..., top : top + size, left : left + size]


def ten_crop_views(batch: Any, size: int) -> list[Any]:
    """Four corners + centre, then each mirrored left-right: ten ``(..., size, size)`` views."""
    h, w = batch.shape[-2:]
    views = [
        batch[..., :size, :size],
        batch[..., :size, w - size :],
        batch[..., h - size :, :size],
        batch[..., h - size :, w - size :],
        center_crop(batch, size),
    ]
    # torch tensors flip with .flip (they have no negative-step slicing); NumPy arrays with [..., ::-1]
    return views + [v.flip(-1) if hasattr(v, "flip") else v[..., ::-1] for v in views]
