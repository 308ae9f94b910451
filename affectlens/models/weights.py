"""Saving and loading trained weights: safetensors + a JSON sidecar (the "model card").

Never a pickled module: a safetensors file holds only tensors, so it loads safely and survives
refactors of our code; everything needed to rebuild and use the model (architecture, classes,
input size, normalisation) lives in the human-readable sidecar next to it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from affectlens.errors import AffectlensError

CARD_FORMAT = "affectlens-weights/1"


@dataclass
class ModelCard:
    """Everything about a weight file except the tensors."""

    architecture: str
    class_names: list[str]
    in_channels: int = 1
    image_size: int = 48
    input_size: int = 40
    normalization: dict = field(default_factory=lambda: {"mode": "unit", "mean": [0.0], "std": [1.0]})
    model_options: dict = field(default_factory=dict)
    task: str = "classification"
    training_data: str = ""
    metrics: dict = field(default_factory=dict)
    licence: str = ""
    description: str = ""
    created: str = field(default_factory=lambda: date.today().isoformat())
    affectlens_version: str = ""
    format: str = CARD_FORMAT
    extra: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelCard:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def sidecar_path(weights_path: Path) -> Path:
    return weights_path.with_suffix(".json")


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


def read_card(path: str | Path) -> ModelCard:
    """Read the sidecar of a weights file (or the sidecar itself)."""
    path = Path(path)
    card_file = path if path.suffix == ".json" else sidecar_path(path)
    if not card_file.exists():
        raise AffectlensError(f"{path}: no model card {card_file.name} beside the weights")
    try:
        return ModelCard.from_dict(json.loads(card_file.read_text()))
    except (json.JSONDecodeError, TypeError) as exc:
        raise AffectlensError(f"{card_file}: not a valid model card ({exc})") from None


def load_weights(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelCard]:
    """Rebuild the model described by the sidecar and load its safetensors weights."""
    from affectlens.models import create_model

    path = Path(path)
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    if not path.exists():
        raise AffectlensError(f"{path}: weights file does not exist")
    card = read_card(path)
    model = create_model(card.architecture, num_classes=card.num_classes, in_channels=card.in_channels,
                         **card.model_options)
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
