"""VGG variant of Khaireddin & Chen (2021), "Facial Emotion Recognition: State of the Art
Performance on FER2013" (73.28 % single-model test accuracy).

Four stages of two [conv3x3-BN-ReLU] + max-pool (64-128-256-512), then two 4096-wide FC layers and
the classifier. It is designed for 40x40 crops of 48x48 FER2013 faces: 40 -> 20 -> 10 -> 5 -> 2.
An adaptive average pool to 2x2 before flattening is the identity at 40 px and lets other input
sizes (e.g. a full 48x48 face, 48 -> 3 -> 2) reuse the same FC weights.
"""

from __future__ import annotations

from torch import nn

from affectlens.models._registry import register_model
from affectlens.models.blocks import ConvFCClassifier, GridAvgPool2d, conv_bn_relu, init_weights


class VGGFer(ConvFCClassifier):
    """Khaireddin & Chen VGG for FER; ``width`` is the stage-1 channel count (doubled per stage)."""

    default_input_size = 40

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 1,
        width: int = 64,
        fc_dim: int = 4096,
        dropout: float = 0.2,
    ) -> None:
        layers: list[nn.Module] = []
        cin = in_channels
        for stage in range(4):
            cout = width * 2**stage
            layers += conv_bn_relu(cin, cout) + conv_bn_relu(cout, cout) + [nn.MaxPool2d(2)]
            cin = cout
        super().__init__(
            nn.Sequential(*layers), GridAvgPool2d(2), cin * 2 * 2, num_classes, fc_dim=fc_dim, fc_layers=2,
            dropout=dropout,
        )
        init_weights(self)


@register_model("vgg_fer")
def vgg_fer(
    num_classes: int, in_channels: int = 1, *, width: int = 64, fc_dim: int = 4096, dropout: float = 0.2
) -> VGGFer:
    """Khaireddin & Chen 2021 VGG (64-128-256-512, FC 4096x2), ~29.9M params, for 40x40 crops."""
    return VGGFer(num_classes, in_channels, width=width, fc_dim=fc_dim, dropout=dropout)


@register_model("vgg_fer_small")
def vgg_fer_small(
    num_classes: int, in_channels: int = 1, *, width: int = 32, fc_dim: int = 1024, dropout: float = 0.3
) -> VGGFer:
    """Half-width vgg_fer (32-64-128-256, FC 1024x2), ~3.3M params: trainable on a CPU."""
    return VGGFer(num_classes, in_channels, width=width, fc_dim=fc_dim, dropout=dropout)
