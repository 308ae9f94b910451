"""Probability-averaging ensembles that behave like any single model.

An ensemble is one ``nn.Module`` whose members sit side by side; it returns the *log of the mean
of the members' probabilities*, so the usual softmax downstream (training validation, evaluation,
the ONNX probability head) turns it back into exactly that mean. It is therefore saved as one
safetensors file with one card (architecture ``ensemble``, the members in ``model_options``),
exported as one ONNX graph, and used by ``predict``, ``evaluate`` and the Python API unchanged.

Members must share the input crop size and normalisation (checked when the ensemble is built from
trained models), because the prediction path prepares one input per face.

Ensembles are shipped *by reference* instead (:mod:`affectlens.runtime.ensemble_card`: a card that
names its members, no weights of its own). :func:`affectlens.models.weights.load_card_ensemble`
turns such a card into one :class:`ProbabilityEnsemble` (for export or as a distillation teacher),
and :func:`affectlens.evaluation.runner.ensemble_probabilities` scores a dataset with it in torch,
each member with its own input.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from affectlens.errors import AffectlensError
from affectlens.models import _registry, architectures  # noqa: F401  (architectures registers the members' models)


class ProbabilityEnsemble(nn.Module):
    """Mean of the members' softmax probabilities, returned as log-probabilities."""

    #: the shipped members' crop; weights.build_ensemble checks that all members share one input size
    default_input_size = 40
    weights_format = "affectlens"

    def __init__(self, num_classes: int, in_channels: int, members: list[dict[str, Any]],
                 member_weights: list[float] | None = None, mirror: bool | list[bool] = False) -> None:
        super().__init__()
        if len(members) < 2:
            raise AffectlensError("an ensemble needs at least two members")
        #: per member: average it over the input and its left-right mirror image (an ensemble card's
        #: ``mirror`` for all, or a member whose own card says ``mirror``)
        self.mirror = [bool(f) for f in mirror] if isinstance(mirror, list) else [bool(mirror)] * len(members)
        if len(self.mirror) != len(members):
            raise AffectlensError(f"ensemble mirror flags must be one per member, got {len(self.mirror)} for "
                                  f"{len(members)}")
        self.members = nn.ModuleList(
            _registry.build(m["architecture"], num_classes, in_channels, **m.get("options", {}))
            for m in members
        )
        weights = torch.tensor(member_weights or [1.0] * len(members), dtype=torch.float32)
        if weights.numel() != len(members) or bool((weights < 0).any()) or float(weights.sum()) <= 0:
            raise AffectlensError("ensemble member weights must be one non-negative number per member")
        self.register_buffer("member_weights", weights / weights.sum(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        both = torch.cat([x, x.flip(-1)]) if any(self.mirror) else x
        parts = []
        for member, mirrored in zip(self.members, self.mirror, strict=True):
            if mirrored:
                parts.append(torch.softmax(member(both).float(), dim=1).view(2, x.shape[0], -1).mean(dim=0))
            else:
                parts.append(torch.softmax(member(x).float(), dim=1))
        probs = torch.stack(parts)  # (M, B, K)
        mean = (probs * self.member_weights.view(-1, 1, 1)).sum(dim=0)
        return torch.log(mean.clamp_min(1e-12))


@_registry.register_model("ensemble")
def ensemble(num_classes: int, in_channels: int = 1, *, members: list[dict[str, Any]] | None = None,
             member_weights: list[float] | None = None, mirror: bool | list[bool] = False) -> ProbabilityEnsemble:
    """Probability average of trained models (build one with affectlens.models.weights.build_ensemble)."""
    if not members:
        raise AffectlensError("model 'ensemble' needs options.members: [{architecture: ..., options: {...}}, ...]")
    return ProbabilityEnsemble(num_classes, in_channels, members, member_weights, mirror)

