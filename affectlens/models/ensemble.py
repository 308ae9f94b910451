"""Probability-averaging ensembles that behave like any single model.

An ensemble is one ``nn.Module`` whose members sit side by side; it returns the *log of the mean
of the members' probabilities*, so the usual softmax downstream (training validation, evaluation,
the ONNX probability head) turns it back into exactly that mean. It is therefore saved as one
safetensors file with one card (architecture ``ensemble``, the members in ``model_options``),
exported as one ONNX graph, and used by ``predict``, ``evaluate`` and the Python API unchanged.

Members must share the input crop size and normalisation (checked when the ensemble is built from
trained models), because the prediction path prepares one input per face.

Ensembles are shipped *by reference* instead (:mod:`affectlens.models.ensemble_card`: a card that
names its members, no weights of its own). :func:`load_card_ensemble` turns such a card into one
:class:`ProbabilityEnsemble` (for export or as a distillation teacher), and
:func:`ensemble_probabilities` scores a dataset with it in torch, each member with its own input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
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
                 member_weights: list[float] | None = None) -> None:
        super().__init__()
        if len(members) < 2:
            raise AffectlensError("an ensemble needs at least two members")
        self.members = nn.ModuleList(
            _registry.build(m["architecture"], num_classes, in_channels, **m.get("options", {}))
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


@_registry.register_model("ensemble")
def ensemble(num_classes: int, in_channels: int = 1, *, members: list[dict[str, Any]] | None = None,
             member_weights: list[float] | None = None) -> ProbabilityEnsemble:
    """Probability average of trained models (build one with affectlens.models.weights.build_ensemble)."""
    if not members:
        raise AffectlensError("model 'ensemble' needs options.members: [{architecture: ..., options: {...}}, ...]")
    return ProbabilityEnsemble(num_classes, in_channels, members, member_weights)


def load_card_ensemble(card_path: str | Path, device: str | torch.device = "cpu"):
    """An ensemble card as one :class:`ProbabilityEnsemble` and its single-file card ``(model, card)``.

    One module sees one input, so this needs members with the same crop size and normalisation;
    :func:`ensemble_probabilities` and the predictor's ensemble classifier have no such limit.
    """
    from affectlens.models.ensemble_card import load_ensemble
    from affectlens.models.weights import build_ensemble

    ensemble = load_ensemble(card_path)
    try:
        model, card = build_ensemble([str(m.path) for m in ensemble.members], ensemble.weights)
    except AffectlensError as exc:
        raise AffectlensError(f"ensemble card {card_path}: cannot be one torch module ({exc})") from None
    card.description = ensemble.card.description
    card.extra = {**card.extra, "members": [m.spec for m in ensemble.members], "ensemble_card": Path(card_path).name}
    return model.to(device).eval(), card


def ensemble_probabilities(card_path: str | Path, faces: Any, *, ten_crop: bool = False, batch_size: int = 256,
                           device: str | torch.device = "cpu") -> np.ndarray:
    """Weighted mean of the members' torch probabilities for uint8 faces or an EmotionDataset.

    Members are loaded one at a time, each scoring with its own crop size, normalisation and
    ten-crop views, so a whole ensemble is never in memory at once.
    """
    from affectlens.data.preprocessing import Normalization
    from affectlens.models.ensemble_card import load_ensemble
    from affectlens.models.prediction.head import predict_probabilities
    from affectlens.models.weights import load_weights

    ensemble = load_ensemble(card_path)
    total: np.ndarray | None = None
    for member in ensemble.members:
        model, card = load_weights(member.path, device=device)
        probs = predict_probabilities(model, faces, Normalization.from_dict(card.normalization), card.input_size,
                                      batch_size=batch_size, ten_crop=ten_crop, device=device,
                                      num_classes=card.num_classes).astype(np.float64)
        total = member.weight * probs if total is None else total + member.weight * probs
    assert total is not None  # load_ensemble guarantees two or more members
    return total.astype(np.float32)
