"""The model card: the JSON sidecar that travels with every weights file.

Kept free of torch so that the ONNX Runtime path (the default for prediction on a CPU) can read
a model's classes, input size and normalisation without importing PyTorch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

from affectlens.data.labels import canonical_class_names
from affectlens.errors import AffectlensError
from affectlens.runtime.confidence_map import ConfidenceMap

#: ONNX graph names and the task tag of models that also output valence and arousal
INPUT_NAME = "input"
PROBS_NAME = "probabilities"
VA_NAME = "valence_arousal"
#: ``ModelCard.task`` of models whose last two outputs are valence and arousal after K class logits.
VA_TASK = "classification+va"
#: ``ModelCard.task`` of models that predict only valence and arousal (no class names, two outputs).
VA_ONLY_TASK = "va"
#: ``ModelCard.extra`` key of sequence (CNN-RNN) models: sequence length, state shape, step graph file
SEQUENCE_KEY = "sequence"

CARD_FORMAT = "affectlens-weights/1"
#: keys a card must hold: what the model is and what input it expects
REQUIRED_KEYS = ("architecture", "class_names", "in_channels", "image_size", "input_size", "normalization")


@dataclass
class ModelCard:
    """Everything about a weight file except the tensors.

    The input facts (channels, aligned face size, crop size, normalisation) differ from model to
    model and a wrong one gives plausible but wrong probabilities, so they have no defaults: whoever
    writes a card states them (training derives them from its data and config). Every card this
    package has written holds them, so old cards keep loading.
    """

    architecture: str
    class_names: list[str]
    in_channels: int
    image_size: int
    input_size: int
    normalization: dict
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
    #: how often each class occurs in the training data (fractions in ``class_names`` order; empty when
    #: unknown): the prior the probabilities carry, which ``prior_correction`` divides out
    class_prior: list[float] = field(default_factory=list)
    #: answer for the face and its left-right mirror image, the two probabilities averaged: test-time
    #: augmentation at twice the cost that the card's metrics were measured with (every classifier
    #: built from the card does it; ten-crop holds mirrored crops already and is unchanged by it).
    #: Ensemble cards say it in ``model_options.mirror`` for all their members instead.
    mirror: bool = False
    #: temperature scaling fitted on validation data (:mod:`affectlens.runtime.calibration`):
    #: ``temperature``, the split it was fitted on and the expected calibration error before and after;
    #: optionally a ``confidence_map`` applied after the temperature (:mod:`affectlens.runtime.confidence_map`).
    #: Every classifier built from the card answers with it; empty: the probabilities as trained.
    calibration: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def temperature(self) -> float:
        """The card's fitted temperature; 1.0 (no change) when none was fitted."""
        return float(self.calibration.get("temperature", 1.0))

    @property
    def confidence_map(self) -> ConfidenceMap | None:
        """The top-label confidence map applied after the temperature; None when the card has none."""
        record = self.calibration.get("confidence_map")
        return ConfidenceMap.from_record(record, "model card") if record else None

    @property
    def calibrated(self) -> bool:
        """Whether the card changes the probabilities as trained (a temperature or a confidence map)."""
        return self.temperature != 1.0 or bool(self.calibration.get("confidence_map"))

    def to_dict(self) -> dict:
        """The JSON form; ``mirror`` and ``calibration`` are written only when set, so older cards stay as they were."""
        data = asdict(self)
        if not data["mirror"]:
            del data["mirror"]
        if not data["calibration"]:
            del data["calibration"]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ModelCard:
        """Build a card from its JSON form; unknown keys (from newer versions) are ignored.

        Class names are read in the shared vocabulary (``happiness`` becomes ``Happy``; the order,
        which the weights depend on, is kept), so every model answers the same labels.
        """
        missing = [k for k in REQUIRED_KEYS if k not in data]
        if missing:
            raise TypeError(f"missing {', '.join(missing)}")
        if not isinstance(data.get("mirror", False), bool):
            raise TypeError(f"mirror must be true or false, got {data['mirror']!r}")
        if not isinstance(data.get("calibration", {}), dict):
            raise TypeError(f"calibration must be an object, got {data['calibration']!r}")
        if data.get("calibration", {}).get("confidence_map"):
            try:
                ConfidenceMap.from_record(data["calibration"]["confidence_map"])
            except AffectlensError as exc:
                raise TypeError(str(exc)) from None
        known = set(cls.__dataclass_fields__)
        card = cls(**{k: v for k, v in data.items() if k in known})
        card.class_names = canonical_class_names(card.class_names)
        return card


def sidecar_path(weights_path: Path) -> Path:
    return weights_path.with_suffix(".json")


def class_frequencies(counts: Iterable[float]) -> list[float]:
    """Per-class sample counts as the fractions of a card's ``class_prior`` (rounded to 6 places)."""
    values = [float(c) for c in counts]
    total = sum(values)
    if not values or total <= 0 or min(values) < 0:
        raise AffectlensError(f"class counts must be non-negative with a positive sum, got {values}")
    return [round(v / total, 6) for v in values]


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


def write_card(card: ModelCard, path: str | Path) -> Path:
    """Write ``card`` as the sidecar of weights ``path`` (or to ``path`` itself when it is a ``.json``)."""
    path = Path(path)
    card_file = path if path.suffix == ".json" else sidecar_path(path)
    card_file.write_text(json.dumps(card.to_dict(), indent=2) + "\n")
    return card_file


def has_valence_arousal(card: ModelCard) -> bool:
    """Whether the model outputs ``K`` class logits (K may be 0) followed by valence and arousal."""
    return card.task in (VA_TASK, VA_ONLY_TASK) or bool(card.extra.get("valence_arousal"))


def is_sequence_model(card: ModelCard) -> bool:
    """Whether the model is a CNN-RNN that carries a recurrent state from frame to frame."""
    return isinstance(card.extra.get(SEQUENCE_KEY), dict)
