"""Training augmentation (Kornia, on whole batches); test-time crops live in :mod:`affectlens.data.crops`.

Augmenting whole batches with Kornia keeps the CPU data path cheap (one vectorised op per batch
instead of a Python call per image) and runs on the GPU unchanged when there is one.
"""

from __future__ import annotations

from typing import Annotated, Self

import kornia.augmentation as K
from pydantic import Field, model_validator
from torch import nn

from affectlens.config_io import ConfigModel, Count, Number, Positive, Probability

__all__ = ["AugmentConfig", "build_train_augmentation"]


class AugmentConfig(ConfigModel):
    """Augmentation settings; the defaults follow Khaireddin & Chen (FER2013 VGG)."""

    #: random crop side for training, centre crop otherwise (0 = no crop)
    crop_size: Count = 40
    hflip: bool = True
    #: largest rotation, in degrees either way
    rotation: Annotated[Number, Field(ge=0, le=180)] = 10.0
    #: largest shift, as a fraction of the image side
    shift: Probability = 0.1
    scale_min: Positive = 0.8
    scale_max: Positive = 1.2
    #: probability of erasing a random rectangle
    erasing: Probability = 0.5
    enabled: bool = True

    @model_validator(mode="after")
    def _scale_range_is_ordered(self) -> Self:
        if self.scale_min > self.scale_max:
            raise ValueError(f"scale_min ({self.scale_min:g}) is larger than scale_max ({self.scale_max:g})")
        return self


def build_train_augmentation(cfg: AugmentConfig, image_size: int) -> nn.Module:
    """Random crop + flip + rotation/shift/scale + random erasing, on float batches in [0, 1]."""
    steps: list[nn.Module] = []
    if cfg.enabled:
        if cfg.rotation or cfg.shift or cfg.scale_min != 1.0 or cfg.scale_max != 1.0:
            steps.append(
                K.RandomAffine(
                    degrees=cfg.rotation,
                    translate=(cfg.shift, cfg.shift) if cfg.shift else None,
                    scale=(cfg.scale_min, cfg.scale_max),
                    padding_mode="reflection",
                    p=0.5,
                )
            )
        if cfg.hflip:
            steps.append(K.RandomHorizontalFlip())
    if cfg.crop_size and cfg.crop_size < image_size:
        steps.append(K.RandomCrop((cfg.crop_size, cfg.crop_size)) if cfg.enabled else K.CenterCrop(cfg.crop_size))
    if cfg.enabled and cfg.erasing > 0:
        steps.append(K.RandomErasing(p=cfg.erasing, scale=(0.02, 0.2)))
    return nn.Sequential(*steps) if steps else nn.Identity()
