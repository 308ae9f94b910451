"""fast_cnn: a narrow VGG for real-time CPU inference (ONNX Runtime, thousands of faces per second).

Why a plain VGG rather than depthwise-separable blocks: at these tiny channel counts ONNX Runtime
runs dense 3x3 convs (im2col + GEMM, BN folded in at load time) far closer to peak than depthwise
convs, which are memory-bound, so per multiply-add the plain net is faster. Trained alone it reaches
about 67% on FER2013 PrivateTest; distilled from a VGG teacher, more (the shipped ``fast`` card and
BENCHMARKS.md hold the measured numbers and the configs that produced them).
The early stride-2 conv puts most of the compute at 1/4 resolution.

Measured with :func:`affectlens.models.complexity.count_macs` (1 grey channel, 7 classes, width 16):
17.0 M multiply-adds at 40x40 (24.4 M at 48x48), 0.42 M parameters. ONNX Runtime on 2 CPU cores,
batch 64: ~12,700 40x40 faces/s on an idle machine; on a busy shared one still ~3,500 at 40x40 and
~2,300 at 48x48.
"""

from __future__ import annotations

from torch import nn

from affectlens.models._registry import register_model
from affectlens.models.blocks import ConvFCClassifier, GridAvgPool2d, conv_bn_relu, init_weights

# Upper bound asserted by the tests, so the model cannot silently grow past its real-time budget.
MACS_BUDGET_40PX = 20_000_000


def _cbr(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return conv_bn_relu(cin, cout, stride, bias=False)  # BN follows: a conv bias would be redundant


class FastCNN(ConvFCClassifier):
    """Narrow VGG (w, 2w, 4w, 8w channels; w=16) with a stride-2 second conv; ONNX-exportable."""

    default_input_size = 40

    def __init__(
        self, num_classes: int, in_channels: int = 1, width: int = 16, fc_dim: int = 256, dropout: float = 0.4
    ) -> None:
        w = width
        features = nn.Sequential(
            *_cbr(in_channels, w),  # full resolution, few channels: cheap edge detectors
            *_cbr(w, 2 * w, stride=2),  # 40 -> 20
            *_cbr(2 * w, 2 * w),
            nn.MaxPool2d(2),  # -> 10
            *_cbr(2 * w, 4 * w),
            *_cbr(4 * w, 4 * w),
            nn.MaxPool2d(2),  # -> 5
            *_cbr(4 * w, 8 * w),
            *_cbr(8 * w, 8 * w),
            nn.MaxPool2d(2),  # -> 2
        )
        pool = GridAvgPool2d(2)  # identity at 40 px; 48 px gives 3x3 -> 2x2
        super().__init__(features, pool, 8 * w * 4, num_classes, fc_dim=fc_dim, fc_layers=1, dropout=dropout)
        init_weights(self)


@register_model("fast_cnn")
def fast_cnn(
    num_classes: int, in_channels: int = 1, *, width: int = 16, fc_dim: int = 256, dropout: float = 0.4
) -> FastCNN:
    """Narrow VGG for real-time CPU use: 17.0M multiply-adds at 40x40, 0.42M params."""
    return FastCNN(num_classes, in_channels, width=width, fc_dim=fc_dim, dropout=dropout)
