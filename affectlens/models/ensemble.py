"""Probability-averaging ensembles that behave like any single model.

An ensemble is one ``nn.Module`` whose members sit side by side; it returns the *log of the mean
of the members' probabilities*, so the usual softmax downstream (training validation, evaluation,
the ONNX probability head) turns it back into exactly that mean. It is therefore saved as one
safetensors file with one card (architecture ``ensemble``, the members in ``model_options``),
exported as one ONNX graph, and used by ``predict``, ``evaluate`` and the Python API unchanged.

Members must share the input crop size and normalisation (checked when the ensemble is built from
trained models), because the prediction path prepares one input per face.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from affectlens.errors import AffectlensError
from affectlens.models.registry import create_model, register_model


class ProbabilityEnsemble(nn.Module):
    """Mean of the members' softmax probabilities, returned as log-probabilities."""

    def __init__(self, num_classes: int, in_channels: int, members: list[dict[str, Any]],
                 member_weights: list[float] | None = None) -> None:
        super().__init__()
        if len(members) < 2:
            raise AffectlensError("an ensemble needs at least two members")
        self.members = nn.ModuleList(
            create_model(m["architecture"], num_classes=num_classes, in_channels=in_channels, **m.get("options", {}))
            for m in members
        )
        weights = torch.tensor(member_weights or [1.0] * len(members), dtype=torch.float32)
        if weights.numel() != len(members) or bool((weights < 0).any()) or float(weights.sum()) <= 0:
            raise AffectlensError("ensemble member weights must be one non-negative number per member")
        self.register_buffer("member_weights", weights / weights.sum(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([torch.softmax(m(x).float(), dim=1) for m in self.members])  # (M, B, K)
        mean = (probs * self.member_weights.view(-1, 1, 1)).sum(dim=0)
        return torch.log(mean.clamp_min(1e-12))


@register_model("ensemble", default_input_size=40)
def ensemble(num_classes: int, in_channels: int = 1, *, members: list[dict[str, Any]] | None = None,
             member_weights: list[float] | None = None) -> ProbabilityEnsemble:
    """Probability average of trained models (build one with affectlens.models.ensemble.build_ensemble)."""
    if not members:
        raise AffectlensError("model 'ensemble' needs options.members: [{architecture: ..., options: {...}}, ...]")
    return ProbabilityEnsemble(num_classes, in_channels, members, member_weights)


def build_ensemble(specs: list[str], member_weights: list[float] | None = None):
    """Load trained models (shipped names, run folders or weights files) into one ensemble and its card.

    Returns ``(model, card)``; save them with :func:`affectlens.models.weights.save_weights`.
    """
    from affectlens.models.card import ModelCard
    from affectlens.models.pretrained import resolve_model
    from affectlens.models.weights import load_weights

    loaded = [load_weights(resolve_model(spec)) for spec in specs]
    first = loaded[0][1]
    for (_, card), spec in zip(loaded[1:], specs[1:], strict=True):
        for key in ("class_names", "in_channels", "image_size", "input_size", "normalization"):
            if getattr(card, key) != getattr(first, key):
                raise AffectlensError(f"{spec}: {key} {getattr(card, key)!r} differs from {specs[0]}'s "
                                      f"{getattr(first, key)!r}; ensemble members must match")
    members = [{"architecture": card.architecture, "options": dict(card.model_options)} for _, card in loaded]
    model = ensemble(first.num_classes, first.in_channels, members=members, member_weights=member_weights)
    for slot, (member, _) in zip(model.members, loaded, strict=True):
        slot.load_state_dict(member.state_dict())
    card = ModelCard(
        architecture="ensemble",
        class_names=list(first.class_names),
        in_channels=first.in_channels,
        image_size=first.image_size,
        input_size=first.input_size,
        normalization=dict(first.normalization),
        model_options={"members": members, **({"member_weights": member_weights} if member_weights else {})},
        training_data="; ".join(sorted({card.training_data for _, card in loaded})),
        licence=first.licence,
        description="probability average of " + ", ".join(Path(str(s)).name for s in specs),
        extra={"members": [str(s) for s in specs]},
    )
    return model.eval(), card
