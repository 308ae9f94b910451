"""Pixel normalisation, fitted on the training set and stored in every model's sidecar.

Modes: ``unit`` scales to [0, 1]; ``symmetric`` to [-1, 1]; ``mean`` subtracts the training-set
mean (per channel, on the [0, 1] scale); ``standardize`` also divides by the training-set std.
The fitted numbers travel with the weights so inference normalises exactly as training did.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch stays unimported on the ONNX Runtime prediction path
    import torch

from affectlens.errors import unknown_name_error

MODES = ("unit", "symmetric", "mean", "standardize")


@dataclass
class Normalization:
    mode: str = "unit"
    mean: list[float] = field(default_factory=lambda: [0.0])
    std: list[float] = field(default_factory=lambda: [1.0])

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise unknown_name_error("normalisation", self.mode, MODES)
        if self.mode == "symmetric":
            self.mean = [0.5] * len(self.mean)
            self.std = [0.5] * len(self.std)
        elif self.mode == "unit":
            self.mean = [0.0] * len(self.mean)
            self.std = [1.0] * len(self.std)

    @classmethod
    def fit(cls, mode: str, images: np.ndarray, max_samples: int = 20_000, seed: int = 0) -> Normalization:
        """Fit per-channel mean/std on (a random sample of) uint8 ``(N, H, W, C)`` training images."""
        channels = images.shape[-1]
        if mode in ("unit", "symmetric"):
            return cls(mode, [0.0] * channels, [1.0] * channels)
        rng = np.random.default_rng(seed)
        sample = images if len(images) <= max_samples else images[rng.choice(len(images), max_samples, replace=False)]
        pixels = sample.reshape(-1, channels).astype(np.float64) / 255.0
        mean = pixels.mean(axis=0).tolist()
        std = pixels.std(axis=0).clip(min=1e-6).tolist() if mode == "standardize" else [1.0] * channels
        return cls(mode, mean, std)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Normalization:
        return cls(data.get("mode", "unit"), list(data.get("mean", [0.0])), list(data.get("std", [1.0])))

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """Normalise a float batch ``(B, C, H, W)`` already scaled to [0, 1]."""
        import torch

        mean = torch.tensor(self.mean, dtype=batch.dtype, device=batch.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=batch.dtype, device=batch.device).view(1, -1, 1, 1)
        return (batch - mean) / std

    def numpy(self, batch: np.ndarray) -> np.ndarray:
        """Normalise a float32 NumPy batch ``(B, C, H, W)`` in [0, 1] (ONNX Runtime path)."""
        mean = np.asarray(self.mean, np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, np.float32).reshape(1, -1, 1, 1)
        return (batch - mean) / std
