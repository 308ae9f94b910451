"""Building blocks the architectures share: the classifier base, the conv/FC stacks, the weight init.

Why one module: the in-house networks all end in "features -> pool -> flatten -> FC stack -> head",
and every model must answer ``forward_features``/``forward``/``head``/``num_features`` alike so that
freezing, ensembles, export and the prediction path treat them the same. Written once here, a fix
reaches every architecture. The helpers build modules in the order the architectures always did and
under the same attribute names, so state_dict keys of shipped weights and seeded initial weights
are unchanged.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn


class FeatureClassifier(nn.Module):
    """A model that is an embedding (``forward_features``) followed by a classifier layer (``head``).

    Subclasses set ``head``, ``num_features`` (the embedding width the head reads) and may override
    the class-level defaults below, which the registry reads without building the model.
    """

    #: side of the square crop the architecture is designed for, in pixels
    default_input_size: int = 40
    #: state_dict key layout: "affectlens", or "torchvision" for backbones that read ImageNet files as-is
    weights_format: str = "affectlens"
    num_features: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define forward_features")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


class ConvFCClassifier(FeatureClassifier):
    """``features`` (convs) -> ``pool`` to a fixed grid -> flatten -> ``fc`` stack -> ``head``.

    The fixed-grid pool decouples the FC size from the input size, so one set of FC weights serves
    several crop sizes. The embedding is the output of the last FC block (after ReLU and dropout).
    """

    def __init__(
        self,
        features: nn.Module,
        pool: nn.Module,
        pooled_features: int,
        num_classes: int,
        *,
        fc_dim: int,
        fc_layers: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.features = features
        self.pool = pool
        self.fc = fc_stack(pooled_features, fc_dim, fc_layers, dropout)
        self.num_features = fc_dim
        self.head = nn.Linear(fc_dim, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the last FC block (after ReLU + dropout), shape ``(B, fc_dim)``."""
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def fc_stack(in_features: int, dim: int, layers: int, dropout: float) -> nn.Sequential:
    """``layers`` x [Linear(dim)-ReLU-Dropout]; keys ``0, 1, 2, 3, ...`` as the shipped weights have them."""
    modules: list[nn.Module] = []
    for i in range(layers):
        modules += [nn.Linear(in_features if i == 0 else dim, dim), nn.ReLU(inplace=True), nn.Dropout(dropout)]
    return nn.Sequential(*modules)


def conv_bn_relu(cin: int, cout: int, stride: int = 1, *, bias: bool = True) -> list[nn.Module]:
    """[conv3x3-BN-ReLU] as a list, to splice into an ``nn.Sequential`` (flat keys ``features.N``)."""
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=bias), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def init_weights(model: nn.Module, linear_std: float | None = None) -> None:
    """He init for convs (fan-out, as for ReLU nets), unit/zero BN, and ``N(0, linear_std)`` FC layers.

    Linear layers keep PyTorch's default init unless ``linear_std`` is given (torchvision's
    VGG/AlexNet use 0.01). Modules are visited in registration order, so a seeded model draws the
    same random numbers whichever architecture calls this.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            nn.init.normal_(m.weight, 0, linear_std)
            nn.init.zeros_(m.bias)


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
