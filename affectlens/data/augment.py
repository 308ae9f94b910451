"""Training augmentation (Kornia, on whole batches); test-time crops live in :mod:`affectlens.data.crops`.

Augmenting whole batches with Kornia keeps the CPU data path cheap (one vectorised op per batch
instead of a Python call per image) and runs on the GPU unchanged when there is one.

Two groups: the geometric steps of Khaireddin & Chen (crop, flip, rotation, scale, erasing), on by
default, and :class:`CameraShiftConfig`, the photometric steps that imitate other cameras and
other light (illumination gradients, gamma, blur, sensor noise, JPEG re-compression, a little
out-of-plane pose). The second group is off by default so that every existing config trains
exactly as before; a config switches it on under ``augment.camera``.
"""

from __future__ import annotations

from typing import Annotated, Self

import kornia.augmentation as K
import torch
from pydantic import Field, model_validator
from torch import nn

from affectlens.config_io import ConfigModel, Count, Number, Positive, Probability

__all__ = ["AugmentConfig", "CameraShiftConfig", "build_train_augmentation"]


class CameraShiftConfig(ConfigModel):
    """Photometric changes between FER2013's web photos and other cameras; each value is the
    probability that a training image gets that change (0 = never), the strengths are fixed at
    what a phone, webcam or lab camera plausibly differs by at 48x48 pixels."""

    #: a linear light gradient across the face (side light, shadow), gain up to 0.25
    illumination: Probability = 0.0
    #: gamma 0.6-1.6 with gain 0.8-1.2: exposure and tone curve
    gamma: Probability = 0.0
    #: Gaussian blur, sigma 0.3-1.2 px: focus, downscaled video
    blur: Probability = 0.0
    #: motion blur, 5-px kernel at any angle: hand or head movement
    motion_blur: Probability = 0.0
    #: Gaussian sensor noise, standard deviation 0.03 of the grey range
    noise: Probability = 0.0
    #: JPEG re-compression at quality 30-90
    jpeg: Probability = 0.0
    #: perspective warp (distortion 0.2): small yaw and pitch the 5-point alignment leaves in
    pose: Probability = 0.0

    @property
    def any(self) -> bool:
        """True when at least one change is switched on."""
        return any(getattr(self, name) > 0 for name in type(self).model_fields)


class _GreyJPEG(nn.Module):
    """Kornia's differentiable JPEG works on RGB: a grey batch is coded as three equal channels
    and read back as their mean, so JPEG's blocking and ringing reach 1-channel faces too."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.jpeg = K.RandomJPEG(jpeg_quality=(30.0, 90.0), p=p)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] != 1:
            return self.jpeg(images)
        return self.jpeg(images.expand(-1, 3, -1, -1)).mean(dim=1, keepdim=True)


def _camera_shift_steps(cfg: CameraShiftConfig) -> list[nn.Module]:
    """The photometric steps in the order a camera applies them: pose, light, optics, sensor, codec."""
    steps: list[nn.Module] = []
    if cfg.pose:
        steps.append(K.RandomPerspective(distortion_scale=0.2, p=cfg.pose))
    if cfg.illumination:
        steps.append(K.RandomLinearIllumination(gain=(0.05, 0.25), p=cfg.illumination))
    if cfg.gamma:
        steps.append(K.RandomGamma(gamma=(0.6, 1.6), gain=(0.8, 1.2), p=cfg.gamma))
    if cfg.blur:
        steps.append(K.RandomGaussianBlur(kernel_size=5, sigma=(0.3, 1.2), p=cfg.blur))
    if cfg.motion_blur:
        steps.append(K.RandomMotionBlur(kernel_size=5, angle=(-90.0, 90.0), direction=(-1.0, 1.0), p=cfg.motion_blur))
    if cfg.noise:
        steps.append(K.RandomGaussianNoise(std=0.03, p=cfg.noise))
    if cfg.jpeg:
        steps.append(_GreyJPEG(p=cfg.jpeg))
    return steps


class _Clamp(nn.Module):
    """Noise and gain can leave [0, 1]; the network only ever sees valid grey values."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.clamp(0.0, 1.0)


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
    #: photometric changes for the shift to other cameras (off unless a config sets them)
    camera: CameraShiftConfig = Field(default_factory=CameraShiftConfig)
    enabled: bool = True

    @model_validator(mode="after")
    def _scale_range_is_ordered(self) -> Self:
        if self.scale_min > self.scale_max:
            raise ValueError(f"scale_min ({self.scale_min:g}) is larger than scale_max ({self.scale_max:g})")
        return self


def build_train_augmentation(cfg: AugmentConfig, image_size: int) -> nn.Module:
    """Rotation/shift/scale + flip + camera shift + random crop + random erasing, on float batches in [0, 1]."""
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
        if cfg.camera.any:
            steps.extend(_camera_shift_steps(cfg.camera))
            steps.append(_Clamp())
    if cfg.crop_size and cfg.crop_size < image_size:
        steps.append(K.RandomCrop((cfg.crop_size, cfg.crop_size)) if cfg.enabled else K.CenterCrop(cfg.crop_size))
    if cfg.enabled and cfg.erasing > 0:
        steps.append(K.RandomErasing(p=cfg.erasing, scale=(0.02, 0.2)))
    return nn.Sequential(*steps) if steps else nn.Identity()
