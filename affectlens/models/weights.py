"""Saving and loading trained weights: safetensors + a JSON sidecar (the "model card").

Never a pickled module: a safetensors file holds only tensors, so it loads safely and survives
refactors of our code; everything needed to rebuild and use the model (architecture, classes,
input size, normalisation) lives in the human-readable sidecar next to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from affectlens.errors import AffectlensError
from affectlens.runtime.card import CARD_FORMAT, ModelCard, has_valence_arousal, read_card, sidecar_path, write_card

if TYPE_CHECKING:
    from affectlens.models.ensemble import ProbabilityEnsemble

__all__ = ["CARD_FORMAT", "ModelCard", "build_ensemble", "load_weights", "read_card", "save_weights", "sidecar_path"]


def save_weights(model: nn.Module, card: ModelCard, path: str | Path) -> Path:
    """Write ``path`` (.safetensors) and its ``.json`` sidecar; returns the weights path."""
    from affectlens import __version__

    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    card.affectlens_version = __version__
    save_file(state, str(path), metadata={"format": CARD_FORMAT, "architecture": card.architecture})
    write_card(card, path)
    return path


def load_weights(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelCard]:
    """Rebuild the model described by the sidecar and load its safetensors weights.

    A valence/arousal card lists K class names but its head ends in K class logits followed by
    valence and arousal, so such a model is built with ``K + 2`` outputs. An ensemble card
    (:mod:`affectlens.runtime.ensemble_card`) loads its members into one probability ensemble.
    """
    from affectlens.models import create_model
    from affectlens.runtime.ensemble_card import is_ensemble_card

    path = Path(path)
    if is_ensemble_card(path):
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


def build_ensemble(
    specs: list[str], member_weights: list[float] | None = None, mirror: bool = False
) -> tuple[ProbabilityEnsemble, ModelCard]:
    """Load trained models (shipped names, run folders or weights files) into one ensemble and its card
    (``mirror``: every member also sees the mirrored input, averaged in; a member whose own card says
    ``mirror`` always does).

    Returns ``(model, card)``; save them with :func:`affectlens.models.weights.save_weights`.
    """
    from affectlens.models.ensemble import ensemble
    from affectlens.runtime.ensemble_card import input_fields, mean_class_prior, normalized_weights
    from affectlens.runtime.pretrained import resolve_model

    loaded = [load_weights(resolve_model(spec)) for spec in specs]
    first = loaded[0][1]
    for (_, card), spec in zip(loaded[1:], specs[1:], strict=True):
        for key in ("class_names", "in_channels", "image_size", "input_size", "normalization"):
            if getattr(card, key) != getattr(first, key):
                raise AffectlensError(f"{spec}: {key} {getattr(card, key)!r} differs from {specs[0]}'s "
                                      f"{getattr(first, key)!r}; ensemble members must match")
    members = [{"architecture": card.architecture, "options": dict(card.model_options)} for _, card in loaded]
    flags = [bool(mirror or card.mirror) for _, card in loaded]  # a member whose card mirrors keeps doing so
    mirrored: bool | list[bool] = flags[0] if len(set(flags)) == 1 else flags
    model = ensemble(first.num_classes, first.in_channels, members=members, member_weights=member_weights,
                     mirror=mirrored)
    for slot, (member, _) in zip(model.members, loaded, strict=True):
        slot.load_state_dict(member.state_dict())
    card = ModelCard(
        architecture="ensemble",
        **input_fields(first),
        model_options={"members": members, **({"member_weights": member_weights} if member_weights else {}),
                       **({"mirror": mirrored} if any(flags) else {})},
        training_data="; ".join(sorted({card.training_data for _, card in loaded})),
        licence=first.licence,
        description="probability average of " + ", ".join(Path(str(s)).name for s in specs),
        extra={"members": [str(s) for s in specs]},
        class_prior=mean_class_prior([card for _, card in loaded],
                                     normalized_weights(member_weights, len(loaded), "ensemble")),
    )
    return model.eval(), card


def load_card_ensemble(card_path: str | Path, device: str | torch.device = "cpu"):
    """An ensemble card as one :class:`ProbabilityEnsemble` and its single-file card ``(model, card)``.

    One module sees one input, so this needs members with the same crop size and normalisation;
    :func:`ensemble_probabilities` and the predictor's ensemble classifier have no such limit.
    """
    from affectlens.runtime.ensemble_card import load_ensemble

    ensemble = load_ensemble(card_path)
    try:
        model, card = build_ensemble([str(m.path) for m in ensemble.members], ensemble.weights, ensemble.mirror)
    except AffectlensError as exc:
        raise AffectlensError(f"ensemble card {card_path}: cannot be one torch module ({exc})") from None
    card.description = ensemble.card.description
    card.extra = {**card.extra, "members": [m.spec for m in ensemble.members], "ensemble_card": Path(card_path).name}
    return model.to(device).eval(), card
