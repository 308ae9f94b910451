"""Saving and loading trained weights: safetensors + a JSON sidecar (the "model card").

Never a pickled module: a safetensors file holds only tensors, so it loads safely and survives
refactors of our code; everything needed to rebuild and use the model (architecture, classes,
input size, normalisation) lives in the human-readable sidecar next to it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from affectlens.errors import AffectlensError
from affectlens.models.card import CARD_FORMAT, ModelCard, has_valence_arousal, read_card, sidecar_path

__all__ = ["CARD_FORMAT", "ModelCard", "load_weights", "read_card", "save_weights", "sidecar_path"]


def save_weights(model: nn.Module, card: ModelCard, path: str | Path) -> Path:
    """Write ``path`` (.safetensors) and its ``.json`` sidecar; returns the weights path."""
    from affectlens import __version__

    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    card.affectlens_version = __version__
    save_file(state, str(path), metadata={"format": CARD_FORMAT, "architecture": card.architecture})
    sidecar_path(path).write_text(json.dumps(card.to_dict(), indent=2) + "\n")
    return path


def load_weights(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelCard]:
    """Rebuild the model described by the sidecar and load its safetensors weights.

    A valence/arousal card lists K class names but its head ends in K class logits followed by
    valence and arousal, so such a model is built with ``K + 2`` outputs. An ensemble card
    (:mod:`affectlens.models.ensemble_card`) loads its members into one probability ensemble.
    """
    from affectlens.models import create_model
    from affectlens.models.ensemble_card import is_ensemble_card

    path = Path(path)
    if is_ensemble_card(path):
        from affectlens.models.ensemble import load_card_ensemble

        return load_card_ensemble(path, device)
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    if not path.exists():
        raise AffectlensError(f"{path}: weights file does not exist")
    card = read_card(path)
    outputs = card.num_classes + (2 if has_valence_arousal(card) else 0)
    model = create_model(card.architecture, num_classes=outputs, in_channels=card.in_channels, **card.model_options)
    try:
        state = load_file(str(path), device=str(device))
    except (SafetensorError, OSError) as exc:
        raise AffectlensError(f"{path}: cannot read weights ({exc})") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise AffectlensError(f"{path}: weights do not fit {card.architecture} ({first})") from None
    return model.to(device).eval(), card
