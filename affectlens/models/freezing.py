"""Freeze a backbone for transfer learning: train the head plus the last ``n`` weight layers.

A "layer" is a Conv or Linear module of the backbone in registration order (which is forward
order for every affectlens model); a normalisation layer belongs to the conv/linear registered just
before it, so a frozen conv's BatchNorm is frozen too.

Frozen BatchNorm layers must also stop updating their running statistics, otherwise a few epochs on
a small FER set silently overwrite the ImageNet statistics the frozen convs depend on. They are
listed in ``model._frozen_bn``; the training loop calls :func:`apply_frozen_bn_eval` right after
every ``model.train()``.
"""

from __future__ import annotations

import logging

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

logger = logging.getLogger(__name__)

_WEIGHT_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)
_NORM_LAYERS = (_BatchNorm, nn.GroupNorm, nn.LayerNorm)


def backbone_layers(model: nn.Module) -> list[list[nn.Module]]:
    """Backbone weight layers in order, each with the norm layers that follow it (head excluded)."""
    head = getattr(model, "head", None)
    head_ids = {id(m) for m in head.modules()} if isinstance(head, nn.Module) else set()
    units: list[list[nn.Module]] = []
    for m in model.modules():
        if id(m) in head_ids:
            continue
        if isinstance(m, _WEIGHT_LAYERS):
            units.append([m])
        elif isinstance(m, _NORM_LAYERS) and units:
            units[-1].append(m)
    return units


def freeze_all_but_last(model: nn.Module, n: int | None) -> int:
    """Freeze everything except the head and the last ``n`` backbone layers; return trainable params.

    ``n = 0`` trains only the head; ``n = None`` or negative trains everything (and unfreezes).
    Parameters outside Conv/Linear/norm layers stay trainable only when ``n`` covers every layer.
    """
    units = backbone_layers(model)
    train_all = n is None or n < 0 or n >= len(units)
    for p in model.parameters():
        p.requires_grad_(train_all)
    frozen_bn: list[nn.Module] = []
    if not train_all:
        assert n is not None
        head = getattr(model, "head", None)
        if isinstance(head, nn.Module):
            for p in head.parameters():
                p.requires_grad_(True)
        cut = len(units) - n
        for i, unit in enumerate(units):
            for m in unit:
                if i >= cut:
                    for p in m.parameters():
                        p.requires_grad_(True)
                elif isinstance(m, _BatchNorm):
                    frozen_bn.append(m)
    # A plain list attribute: the BN modules are already registered elsewhere, so no duplicate keys.
    model._frozen_bn = frozen_bn
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    logger.info(
        "trainable layers: %s of %d backbone layers + head; %d of %d parameters trainable; %d frozen BN",
        "all" if train_all else n,
        len(units),
        trainable,
        total,
        len(frozen_bn),
    )
    return trainable


def apply_frozen_bn_eval(model: nn.Module) -> int:
    """Put the BatchNorm layers frozen by :func:`freeze_all_but_last` in eval mode; return how many.

    Call it after every ``model.train()`` (which switches them back to training mode).
    A model that was never frozen is left unchanged.
    """
    frozen = getattr(model, "_frozen_bn", [])
    for m in frozen:
        m.eval()
    return len(frozen)
