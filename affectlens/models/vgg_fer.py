"""VGG variant of Khaireddin & Chen (2021), "Facial Emotion Recognition: State of the Art
Performance on FER2013" (73.28 % single-model test accuracy).

Four stages of two [conv3x3-BN-ReLU] + max-pool (64-128-256-512), then two 4096-wide FC layers and
the classifier. It is designed for 40x40 crops of 48x48 FER2013 faces: 40 -> 20 -> 10 -> 5 -> 2.
An adaptive average pool to 2x2 before flattening is the identity at 40 px and lets other input
sizes (e.g. a full 48x48 face, 48 -> 3 -> 2) reuse the same FC weights.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from affectlens.models.registry import register_model


class GridAvgPool2d(nn.Module):
    """``nn.AdaptiveAvgPool2d`` that also exports to ONNX when the grid does not divide the input.

    The TorchScript ONNX exporter rejects adaptive pooling to e.g. 2x2 from 3x3 (a 48 px input to
    vgg_fer); during export the same bins (floor start, ceil end) are averaged with static slices.
    Identity, and free, when the input already has the output size.
    """

    def __init__(self, output_size: int | tuple[int, int]) -> None:
        super().__init__()
        self.output_size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with warnings.catch_warnings():  # sizes are constants of an export; the warning is noise
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            h, w = int(x.shape[-2]), int(x.shape[-1])
        oh, ow = self.output_size
        if (h, w) == (oh, ow):
            return x
        if not (torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()) or (h % oh == 0 and w % ow == 0):
            return F.adaptive_avg_pool2d(x, (oh, ow))
        rows = []
        for i in range(oh):
            h0, h1 = (i * h) // oh, -(-((i + 1) * h) // oh)
            cells = []
            for j in range(ow):
                w0, w1 = (j * w) // ow, -(-((j + 1) * w) // ow)
                cells.append(x[..., h0:h1, w0:w1].mean(dim=(-2, -1)))
            rows.append(torch.stack(cells, dim=-1))
        return torch.stack(rows, dim=-2)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class VGGFer(nn.Module):
    """Khaireddin & Chen VGG for FER; ``width`` is the stage-1 channel count (doubled per stage)."""

    default_input_size: int = 40

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 1,
        width: int = 64,
        fc_dim: int = 4096,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for stage in range(4):
            cout = width * 2**stage
            layers += _conv_bn_relu(cin, cout) + _conv_bn_relu(cout, cout) + [nn.MaxPool2d(2)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = GridAvgPool2d(2)
        self.fc = nn.Sequential(
            nn.Linear(cin * 2 * 2, fc_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_dim, fc_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        self.num_features = fc_dim
        self.head = nn.Linear(fc_dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding after the second FC block (ReLU + dropout applied), shape ``(B, fc_dim)``."""
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


@register_model("vgg_fer", default_input_size=40)
def vgg_fer(
    num_classes: int, in_channels: int = 1, *, width: int = 64, fc_dim: int = 4096, dropout: float = 0.2
) -> VGGFer:
    """Khaireddin & Chen 2021 VGG (64-128-256-512, FC 4096x2), ~29.9M params, for 40x40 crops."""
    return VGGFer(num_classes, in_channels, width=width, fc_dim=fc_dim, dropout=dropout)


@register_model("vgg_fer_small", default_input_size=40)
def vgg_fer_small(
    num_classes: int, in_channels: int = 1, *, width: int = 32, fc_dim: int = 1024, dropout: float = 0.3
) -> VGGFer:
    """Half-width vgg_fer (32-64-128-256, FC 1024x2), ~3.3M params: trainable on a CPU."""
    return VGGFer(num_classes, in_channels, width=width, fc_dim=fc_dim, dropout=dropout)
