"""Pre-activation ResNet (He et al. 2016, "Identity Mappings in Deep Residual Networks") for small faces.

v2 ordering (BN-ReLU-conv inside each block, a clean identity path, one BN-ReLU before the global
pool) trains more stably than v1 from scratch. The ImageNet stem (7x7/2 conv + max-pool) would
shrink a 40 px face to 10 px before the first block, so the stem here is a single 3x3/1 conv and the
four stages use strides 1, 2, 2, 2 (40 -> 40 -> 20 -> 10 -> 5), as in CIFAR-style ResNets.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from affectlens.models._registry import register_model
from affectlens.models.blocks import FeatureClassifier, init_weights


class PreActBlock(nn.Module):
    """Two 3x3 convs with BN-ReLU before each; a 1x1 projection shortcut when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        # The projection sees the pre-activated input, as in the paper's full pre-activation design.
        identity = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + identity


class PreActResNet(FeatureClassifier):
    """Pre-activation ResNet with a 3x3 stride-1 stem; ``width`` channels in stage 1, doubled per stage."""

    default_input_size = 40

    def __init__(
        self,
        blocks: tuple[int, int, int, int],
        num_classes: int,
        in_channels: int = 1,
        width: int = 64,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        stages: list[nn.Module] = []
        cin = width
        for i, (n, stride) in enumerate(zip(blocks, (1, 2, 2, 2), strict=True)):
            cout = width * 2**i
            layers = [PreActBlock(cin if j == 0 else cout, cout, stride if j == 0 else 1) for j in range(n)]
            stages.append(nn.Sequential(*layers))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.bn_final = nn.BatchNorm2d(cin)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.num_features = cin
        self.head = nn.Linear(cin, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally pooled final activations (dropout applied in training), shape ``(B, 8 * width)``."""
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = F.relu(self.bn_final(x))
        return self.dropout(torch.flatten(self.pool(x), 1))


@register_model("resnet18_preact")
def resnet18_preact(
    num_classes: int, in_channels: int = 1, *, width: int = 64, dropout: float = 0.0
) -> PreActResNet:
    """Pre-activation ResNet-18 for small faces (3x3 stem, no max-pool); ~11.2M params at width 64."""
    return PreActResNet((2, 2, 2, 2), num_classes, in_channels, width=width, dropout=dropout)


@register_model("resnet34_preact")
def resnet34_preact(
    num_classes: int, in_channels: int = 1, *, width: int = 64, dropout: float = 0.0
) -> PreActResNet:
    """Pre-activation ResNet-34 for small faces (3x3 stem, no max-pool); ~21.3M params at width 64."""
    return PreActResNet((3, 4, 6, 3), num_classes, in_channels, width=width, dropout=dropout)
