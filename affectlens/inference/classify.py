"""Batched classification of already-cropped faces with a PyTorch model.

Shared by training (validation every epoch), evaluation and the predictor, so that "how a face
array becomes probabilities" (scale, crop or ten-crop, normalise, softmax) exists exactly once.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from affectlens.data.augment import center_crop, ten_crop
from affectlens.data.preprocessing import Normalization


def faces_to_tensor(faces: np.ndarray) -> torch.Tensor:
    """uint8 ``(B, H, W, C)`` -> float ``(B, C, H, W)`` in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(faces)).permute(0, 3, 1, 2).float().div_(255.0)


@torch.inference_mode()
def classify_tensor(model: nn.Module, images: torch.Tensor, normalization: Normalization, input_size: int,
                    use_ten_crop: bool = False) -> torch.Tensor:
    """Probabilities for a float batch in [0, 1] ``(B, C, H, W)``; ten-crop averages 10 views."""
    if use_ten_crop and input_size < images.shape[-1]:
        crops = ten_crop(images, input_size)  # (10, B, C, s, s)
        n_views, batch = crops.shape[:2]
        logits = model(normalization(crops.flatten(0, 1)))
        return torch.softmax(logits.float(), dim=1).view(n_views, batch, -1).mean(dim=0)
    logits = model(normalization(center_crop(images, input_size)))
    return torch.softmax(logits.float(), dim=1)


def predict_probabilities(model: nn.Module, faces: np.ndarray | object, normalization: Normalization,
                          input_size: int, batch_size: int = 256, use_ten_crop: bool = False,
                          device: torch.device | str = "cpu") -> np.ndarray:
    """Probabilities ``(N, K)`` for uint8 faces ``(N, H, W, C)`` or an EmotionDataset."""
    model.eval()
    total = len(faces)  # type: ignore[arg-type]
    out: list[np.ndarray] = []
    for start in range(0, total, batch_size):
        idx = np.arange(start, min(start + batch_size, total))
        chunk = faces.batch(idx) if hasattr(faces, "batch") else faces[idx]  # type: ignore[index,union-attr]
        images = faces_to_tensor(chunk).to(device)
        out.append(classify_tensor(model, images, normalization, input_size, use_ten_crop).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)
