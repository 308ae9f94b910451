"""The model card: the JSON sidecar that travels with every weights file.

Kept free of torch so that the ONNX Runtime path (the default for prediction on a CPU) can read
a model's classes, input size and normalisation without importing PyTorch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

from affectlens.errors import AffectlensError

#: ONNX graph names and the task tag of models that also output valence and arousal
INPUT_NAME = "input"
PROBS_NAME = "probabilities"
VA_NAME = "valence_arousal"
#: ``ModelCard.task`` of models whose last two outputs are valence and arousal after K class logits.
VA_TASK = "classification+va"

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


def has_valence_arousal(card: ModelCard) -> bool:
    """Whether the model outputs ``K`` class logits followed by valence and arousal."""
    return card.task == VA_TASK or bool(card.extra.get("valence_arousal"))
