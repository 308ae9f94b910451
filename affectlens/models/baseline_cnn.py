"""The classic small FER baseline CNN (two conv-conv-pool blocks, two 256-wide FC layers).

It is the reference point that any new architecture should beat. An adaptive average pool to a
fixed grid before flattening decouples the FC size from the input size, so any face >= 16 px works.
"""

from __future__ import annotations

from torch import nn

from affectlens.models._registry import register_model
from affectlens.models.blocks import ConvFCClassifier


class BaselineCNN(ConvFCClassifier):
    """[conv3x3(32)-ReLU x2, max-pool], [conv3x3(64)-ReLU x2, max-pool], FC(256) x2, head."""

    default_input_size = 48

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 1,
        fc_dim: int = 256,
        dropout: float = 0.5,
        pool_size: int = 6,
    ) -> None:
        features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        # 48 px -> 12x12 after the pools; averaging to 6x6 keeps the first FC at 0.6M weights.
        pool = nn.AdaptiveAvgPool2d((pool_size, pool_size))
        super().__init__(
            features, pool, 64 * pool_size * pool_size, num_classes, fc_dim=fc_dim, fc_layers=2, dropout=dropout
        )


@register_model("baseline_cnn")
def baseline_cnn(
    num_classes: int, in_channels: int = 1, *, fc_dim: int = 256, dropout: float = 0.5, pool_size: int = 6
) -> BaselineCNN:
    """Classic two-block CNN baseline (32-32-64-64 convs, FC 256x2), ~0.7M params, for 48x48 faces."""
    return BaselineCNN(num_classes, in_channels, fc_dim=fc_dim, dropout=dropout, pool_size=pool_size)
