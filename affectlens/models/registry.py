"""Model registry: build any architecture by name, optionally from a weights file, optionally frozen.

Builders are plain functions ``builder(num_classes, in_channels=1, *, option=default, ...)`` registered
with :func:`register_model` (the core in :mod:`affectlens.models._registry`, which imports no
architecture). This module imports the built-in architectures and the ensemble, so by the time any
function here runs every built-in name is registered. :func:`create_model` checks the options
against the builder's signature so that a typo in a config file is a one-line :class:`AffectlensError`
rather than a ``TypeError``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from affectlens.errors import AffectlensError
from affectlens.models import _registry, architectures, ensemble, sequence  # noqa: F401  registers the built-in models
from affectlens.models._registry import register_model

__all__ = ["create_model", "list_models", "load_pretrained", "model_info", "register_model"]

logger = logging.getLogger(__name__)


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return _registry.registered_names()


def model_info(name: str) -> dict[str, Any]:
    """Describe a registered model: summary line, default input size, options, pretrained support."""
    builder = _registry.get_builder(name)
    doc = inspect.getdoc(builder) or ""
    summary = doc.strip().splitlines()[0] if doc.strip() else ""
    # The model class declares its input size and key layout; a third-party builder that does not
    # annotate its return type is asked through a tiny instance.
    cls = _registry.model_class(name)
    described: Any = cls if cls is not None and hasattr(cls, "default_input_size") else builder(num_classes=2)
    size = getattr(described, "default_input_size", None)
    options, _ = _registry.builder_options(builder)
    return {
        "name": name,
        "summary": summary,
        "default_input_size": int(size) if size else None,
        "options": options,
        # Any model loads a state_dict of its own architecture (see load_pretrained); the transfer
        # backbones additionally read torchvision ImageNet files without renaming.
        "accepts_pretrained": True,
        "weights_format": getattr(described, "weights_format", "affectlens"),
    }


def create_model(
    name: str,
    num_classes: int,
    in_channels: int = 1,
    pretrained: str | Path | None = None,
    trainable_layers: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build model ``name``; load matching tensors from ``pretrained``; freeze all but the last layers.

    ``trainable_layers`` is passed to :func:`affectlens.models.freezing.freeze_all_but_last`
    (``None`` trains everything, ``0`` only the head). ``pretrained`` is a weights file or a shipped
    model name (``default``). A model with a ``pretrained_target`` (the CNN inside a CNN-GRU) gets
    both on that submodule; the rest of it (the GRU and its head) starts fresh and stays trainable.
    """
    model = _registry.build(name, num_classes, in_channels, **kwargs)
    target_name = getattr(model, "pretrained_target", None)
    target = model.get_submodule(target_name) if target_name else model
    if pretrained is not None:
        load_pretrained(target, _weights_file(pretrained))
    if trainable_layers is not None:
        from affectlens.models.freezing import freeze_all_but_last

        freeze_all_but_last(target, trainable_layers)
        if target is not model:  # the training loop asks the top model which BatchNorms are frozen
            model._frozen_bn = target._frozen_bn
    return model


def _weights_file(spec: str | Path) -> Path:
    """A weights file as given, or the file of a shipped model or run folder named by ``spec``."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    from affectlens.runtime.pretrained import resolve_model

    resolved = resolve_model(spec)
    return resolved.with_suffix(".safetensors") if resolved.suffix != ".safetensors" else resolved


# --------------------------------------------------------------------------------------------------
# Pretrained weights
# --------------------------------------------------------------------------------------------------


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file or a torch state_dict/checkpoint into a flat name -> tensor dict."""
    if not path.is_file():
        raise AffectlensError(f"pretrained weights file not found: {path}")
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            obj: Any = load_file(str(path), device="cpu")
        except Exception as exc:  # any reader failure is a user problem with this file
            reason = " ".join(str(exc).split())[:200]
            raise AffectlensError(f"cannot read pretrained weights {path}: {reason}") from None
    else:  # torch's own message for a file of pickled objects suggests weights_only=False: never that
        from affectlens.models.torch_files import load_torch_file

        obj = load_torch_file(path, "weights file")
    # Training checkpoints wrap the weights: {"state_dict": ...} (Lightning) or {"model": ...}.
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping):
        raise AffectlensError(f"pretrained weights {path} hold a {type(obj).__name__}, not a state_dict")
    state = {}
    for key, value in obj.items():
        if isinstance(value, torch.Tensor):
            # DataParallel/DistributedDataParallel prefix every key with "module.".
            state[key[len("module.") :] if key.startswith("module.") else key] = value
    if not state:
        raise AffectlensError(f"pretrained weights {path} contain no tensors")
    return state


def _head_param_names(model: nn.Module) -> set[str]:
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Module):
        return set()
    ids = {id(p) for p in head.parameters()}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def _adapt_channels(src: torch.Tensor, dst_shape: torch.Size) -> torch.Tensor | None:
    """Fit a first-conv kernel saved for RGB to grey input (sum) or vice versa (spread), else None."""
    if (
        src.dim() != 4
        or len(dst_shape) != 4
        or src.shape[0] != dst_shape[0]
        or src.shape[2:] != dst_shape[2:]
    ):
        return None
    if src.shape[1] == 3 and dst_shape[1] == 1:
        return src.sum(dim=1, keepdim=True)  # grey = R = G = B, so the responses add up
    if src.shape[1] == 1 and dst_shape[1] == 3:
        return src.repeat(1, 3, 1, 1) / 3.0
    return None


def load_pretrained(model: nn.Module, path: str | Path) -> dict[str, list[str]]:
    """Copy every tensor of ``path`` whose name and shape match ``model``'s state_dict.

    The classifier head is never copied, even when its shape matches: pretrained weights come from
    another task, whose classes (or their order) differ, so the new head starts fresh. Raises
    :class:`AffectlensError` when the file is missing/unreadable or matches fewer than half of the
    model's backbone (non-head) parameters, which means it is for another architecture.
    Returns ``{"loaded": [...], "skipped": [...], "unused": [...]}`` key lists.
    """
    path = Path(path)
    source = _read_state_dict(path)
    target = model.state_dict()
    loaded: list[str] = []
    skipped: list[str] = []
    new_state: dict[str, torch.Tensor] = {}
    head_names = _head_param_names(model)
    for key, dst in target.items():
        src = source.get(key)
        if src is None or key in head_names:
            skipped.append(key)
            continue
        if src.shape != dst.shape:
            adapted = _adapt_channels(src, dst.shape)
            if adapted is None:
                skipped.append(key)
                continue
            src = adapted
        new_state[key] = src.to(dtype=dst.dtype)
        loaded.append(key)
    unused = sorted(set(source) - set(target))

    backbone = [n for n, _ in model.named_parameters() if n not in head_names]
    matched = sum(1 for n in backbone if n in new_state)
    if backbone and matched * 2 < len(backbone):
        raise AffectlensError(
            f"pretrained weights {path} do not fit this model: only {matched} of {len(backbone)} "
            f"backbone tensors match by name and shape (weights for another architecture?)"
        )
    model.load_state_dict(new_state, strict=False)
    logger.info(
        "loaded %d of %d tensors from %s; skipped (missing or other shape): %s",
        len(loaded),
        len(target),
        path,
        ", ".join(skipped) if skipped else "none",
    )
    if unused:
        logger.info(
            "%d tensors in %s are not used by the model: %s", len(unused), path, ", ".join(unused[:20])
        )
    return {"loaded": loaded, "skipped": skipped, "unused": unused}
