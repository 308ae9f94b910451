"""ImageNet backbones for transfer learning: vgg16, alexnet, resnet18/34/50, torchvision-compatible.

torchvision cannot be imported beside this torch build, so the architectures are re-implemented
here with module and parameter names identical to torchvision's. A user's torchvision ImageNet
``.pth`` (or a ``.safetensors`` with the same keys) therefore loads with no renaming through
``create_model(name, num_classes, pretrained=path)``; only the 1000-class classifier is replaced.

The new classifier keeps its torchvision name (``fc`` for ResNets, ``classifier.6`` for
VGG/AlexNet) so state_dict keys stay torchvision-like; ``model.head`` is a property aliasing it,
and assigning ``model.head = nn.Linear(...)`` replaces that same layer (no duplicated keys).

Inputs are 3-channel; with ``in_channels=1`` the grey channel is repeated to RGB inside
``forward`` so grey FER faces work with ImageNet weights. ImageNet weights expect inputs normalised
with the ImageNet statistics (``pretrained_mean``/``pretrained_std``; for grey use their average).
The default input size is 96 px (not 224) to keep CPU fine-tuning affordable; adaptive pooling
makes 64..224 px work (alexnet needs >= 63 px).
"""

from __future__ import annotations

import torch
from torch import nn

from affectlens.errors import AffectlensError
from affectlens.models._registry import register_model
from affectlens.models.blocks import FeatureClassifier, GridAvgPool2d, init_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TRANSFER_INPUT_SIZE = 96


def _check_channels(in_channels: int) -> None:
    if in_channels not in (1, 3):
        raise AffectlensError(
            f"ImageNet backbones take in_channels 1 (grey, repeated to RGB) or 3, got {in_channels}"
        )


class _TorchvisionBackbone(FeatureClassifier):
    """Shared behaviour: grey-to-RGB input, ``head`` aliasing the torchvision classifier layer."""

    default_input_size = TRANSFER_INPUT_SIZE
    weights_format = "torchvision"
    pretrained_mean = IMAGENET_MEAN
    pretrained_std = IMAGENET_STD
    _head_path: str = "fc"  # dotted path of the classifier layer inside the torchvision layout

    def __init__(self, in_channels: int) -> None:
        _check_channels(in_channels)
        super().__init__()
        self.in_channels = in_channels

    @property
    def head(self) -> nn.Module:
        """The final classifier (an alias, so state_dict keys keep torchvision's names)."""
        return self.get_submodule(self._head_path)

    def __setattr__(self, name: str, value: object) -> None:
        if name == "head":  # redirect to the torchvision slot rather than registering a second name
            parent_path, _, child = self._head_path.rpartition(".")
            parent = self.get_submodule(parent_path) if parent_path else self
            nn.Module.__setattr__(parent, child, value)
            return
        super().__setattr__(name, value)

    def _to_rgb(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(-1, 3, -1, -1) if self.in_channels == 1 else x


# --------------------------------------------------------------------------------------------------
# VGG16 and AlexNet
# --------------------------------------------------------------------------------------------------

# Configuration "D" of Simonyan & Zisserman: channel counts, "M" = 2x2 max-pool.
_VGG16_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", *([512, 512, 512, "M"] * 2)]


class _ClassicBackbone(_TorchvisionBackbone):
    """VGG/AlexNet layout: ``features`` -> ``avgpool`` -> ``classifier`` whose index 6 is the head."""

    _head_path = "classifier.6"
    features: nn.Sequential
    avgpool: nn.Module
    classifier: nn.Sequential

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the second 4096-wide FC block (classifier.0..5), shape ``(B, 4096)``."""
        x = torch.flatten(self.avgpool(self.features(self._to_rgb(x))), 1)
        for i in range(6):
            x = self.classifier[i](x)
        return x


class VGG16(_ClassicBackbone):
    """VGG-16 without BN (torchvision ``vgg16`` key layout: features.N, classifier.{0,3,6})."""

    def __init__(self, num_classes: int, in_channels: int = 1, dropout: float = 0.5) -> None:
        super().__init__(in_channels)
        layers: list[nn.Module] = []
        cin = 3
        for v in _VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                assert isinstance(v, int)
                layers += [nn.Conv2d(cin, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                cin = v
        self.features = nn.Sequential(*layers)
        self.avgpool = GridAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
        self.num_features = 4096
        init_weights(self, linear_std=0.01)  # torchvision's VGG/AlexNet init


class AlexNet(_ClassicBackbone):
    """AlexNet (torchvision key layout: features.N, classifier.{1,4,6}); needs inputs >= 63 px."""

    def __init__(self, num_classes: int, in_channels: int = 1, dropout: float = 0.5) -> None:
        super().__init__(in_channels)
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = GridAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )
        self.num_features = 4096
        init_weights(self, linear_std=0.01)  # torchvision's VGG/AlexNet init

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the second 4096-wide FC block (classifier.0..5), shape ``(B, 4096)``."""
        if min(x.shape[-2:]) < 63:
            raise AffectlensError(f"alexnet needs inputs of at least 63x63 px, got {tuple(x.shape[-2:])}")
        return super().forward_features(x)


# --------------------------------------------------------------------------------------------------
# ResNets (torchvision v1.5: stride on the 3x3 conv of the bottleneck)
# --------------------------------------------------------------------------------------------------


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(_TorchvisionBackbone):
    """torchvision ResNet layout (conv1, bn1, layer1..4, fc); ``fc`` is the new head."""

    _head_path = "fc"

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: tuple[int, int, int, int],
        num_classes: int,
        in_channels: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(in_channels)
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))  # global pooling exports to ONNX at any size
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.num_features = 512 * block.expansion
        self.fc = nn.Linear(self.num_features, num_classes)
        init_weights(self)

    def _make_layer(
        self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int = 1
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                _conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers: list[nn.Module] = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled layer4 output, shape ``(B, 512 * expansion)``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(self._to_rgb(x)))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.dropout(torch.flatten(self.avgpool(x), 1))


@register_model("vgg16")
def vgg16(num_classes: int, in_channels: int = 1, *, dropout: float = 0.5) -> VGG16:
    """VGG-16 (no BN), torchvision keys: loads ImageNet .pth as-is; 134M params with a 7-class head."""
    return VGG16(num_classes, in_channels, dropout=dropout)


@register_model("alexnet")
def alexnet(num_classes: int, in_channels: int = 1, *, dropout: float = 0.5) -> AlexNet:
    """AlexNet, torchvision keys: loads ImageNet .pth as-is; 57M params, inputs >= 63 px."""
    return AlexNet(num_classes, in_channels, dropout=dropout)


@register_model("resnet18")
def resnet18(num_classes: int, in_channels: int = 1, *, dropout: float = 0.0) -> ResNet:
    """ResNet-18, torchvision keys: loads ImageNet .pth as-is; 11.2M params."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes, in_channels, dropout=dropout)


@register_model("resnet34")
def resnet34(num_classes: int, in_channels: int = 1, *, dropout: float = 0.0) -> ResNet:
    """ResNet-34, torchvision keys: loads ImageNet .pth as-is; 21.3M params."""
    return ResNet(BasicBlock, (3, 4, 6, 3), num_classes, in_channels, dropout=dropout)


@register_model("resnet50")
def resnet50(num_classes: int, in_channels: int = 1, *, dropout: float = 0.0) -> ResNet:
    """ResNet-50 (v1.5), torchvision keys: loads ImageNet .pth as-is; 23.5M params."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, in_channels, dropout=dropout)
