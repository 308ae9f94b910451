"""Model size and cost: parameter counts and multiply-adds (MACs) measured with forward hooks.

Measuring (rather than deriving by hand) keeps the numbers in docstrings honest when an
architecture changes. Only Conv and Linear layers are counted: they dominate the cost, and
BatchNorm folds into the preceding conv at ONNX/inference time.
"""

from __future__ import annotations

import torch
from torch import nn


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (only those with ``requires_grad`` if ``trainable_only``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_macs(model: nn.Module, input_size: int | tuple[int, int], in_channels: int = 1) -> int:
    """Multiply-adds of one forward pass for a single ``in_channels x H x W`` image."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    total = 0

    def conv_hook(module: nn.Module, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.modules.conv._ConvNd)
        kernel = 1
        for k in module.kernel_size:
            kernel *= k
        total += out.numel() * (module.in_channels // module.groups) * kernel

    def linear_hook(module: nn.Module, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.Linear)
        total += out.numel() * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, in_channels, h, w))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total
