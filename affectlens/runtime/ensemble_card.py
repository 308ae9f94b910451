"""Ensembles by reference: a small JSON card that names trained models and how to combine them.

Shipping an ensemble as one weights file would ship every member's weights a second time. An
ensemble card instead names its members (shipped names such as ``vgg_fer_small.fer2013``, or
paths to ``.safetensors`` / ``.onnx`` files or run folders, relative to the card's folder) with
one weight each; the ensemble's probabilities are the weighted mean of the members' probabilities
(:data:`COMBINATION`). A card may also say ``mirror: true`` (:data:`MIRROR_COMBINATION`): each member
then answers for the face and its left-right mirror image and the two are averaged, test-time
augmentation at twice the cost (ten-crop, which holds the mirrored crops already, is unchanged by
it). Each member prepares its own input from the aligned face (its own crop size,
normalisation and ten-crop views), so members may differ in those; they must agree on what the
face crop is and what the answer means: class names, channels, aligned face size and alignment
template, all checked whenever a card is loaded.

The card is a model card (:class:`~affectlens.runtime.card.ModelCard`, ``format`` :data:`ENSEMBLE_FORMAT`,
architecture ``ensemble``, members in ``model_options``), so every place that shows a card shows
this one. Its ``input_size`` and ``normalization`` are the first member's, for display only.
Torch-free: the ONNX Runtime path loads ensembles through it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectlens.errors import AffectlensError
from affectlens.runtime.card import ModelCard, has_valence_arousal, read_card, write_card
from affectlens.runtime.pretrained import find_shipped, resolve_model

ENSEMBLE_FORMAT = "affectlens-ensemble/1"
COMBINATION = "weighted mean of member probabilities"
MIRROR_COMBINATION = COMBINATION + ", each averaged over the face and its mirror image"
#: what members must share: the aligned face they are given and the meaning of their outputs
SHARED_KEYS = ("class_names", "in_channels", "image_size")


@dataclass(frozen=True)
class EnsembleMember:
    """One member: the name or path the card gives, the weights file it resolves to, its card and weight."""

    spec: str
    path: Path
    card: ModelCard
    weight: float


@dataclass(frozen=True)
class Ensemble:
    """A loaded, checked ensemble card; member weights sum to one."""

    path: Path
    card: ModelCard
    members: tuple[EnsembleMember, ...]

    @property
    def weights(self) -> list[float]:
        return [m.weight for m in self.members]

    @property
    def mirror(self) -> bool:
        """Whether every member also sees the mirrored face (checked to be a bool when the card loads)."""
        return bool(self.card.model_options.get("mirror", False) or self.card.mirror)

    def member_mirrors(self) -> list[bool]:
        """Per member, whether it also sees the mirrored face: when this card says so for all, or when
        the member's own card does (a mirrored model mirrors in any ensemble, as it does alone)."""
        return [self.mirror or m.card.mirror for m in self.members]

    @property
    def combination(self) -> str:
        return combination(self.mirror)


def combination(mirror: bool) -> str:
    """How an ensemble card combines its members' answers, in words (the card's ``combination``)."""
    return MIRROR_COMBINATION if mirror else COMBINATION


def weighted_mean(probabilities: Iterable[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """The one way members' ``(N, K)`` probabilities are combined (prediction and evaluation alike):
    the weighted mean, summed in float64 and returned as float32. ``probabilities`` may be a
    generator, so members can be run (or loaded) one at a time."""
    total: np.ndarray | None = None
    count = 0
    for probs, weight in zip(probabilities, weights, strict=True):
        term = float(weight) * probs
        total = term.astype(np.float64) if total is None else total + term
        count += 1
    if total is None or count < 2:
        raise AffectlensError(f"an ensemble combines two or more members, got {count}")
    return total.astype(np.float32)


def is_ensemble_card(path: str | Path) -> bool:
    """Whether ``path`` is an ensemble card (a ``.json`` file whose format is :data:`ENSEMBLE_FORMAT`)."""
    path = Path(path)
    if path.suffix != ".json" or not path.is_file():
        return False
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return False
    return isinstance(data, dict) and data.get("format") == ENSEMBLE_FORMAT


def normalized_weights(weights: list[float] | None, count: int, where: str) -> list[float]:
    """One non-negative weight per member, scaled to sum to one (equal weights when None)."""
    values = [1.0] * count if weights is None else [float(w) for w in weights]
    if len(values) != count or any(w < 0 for w in values) or sum(values) <= 0:
        raise AffectlensError(f"{where}: member weights must be {count} non-negative numbers, not all zero; "
                              f"got {weights}")
    total = sum(values)
    return [w / total for w in values]


def _member_path(spec: str, base: Path, where: str) -> Path:
    """The weights file a member names: a shipped name, else a path (relative paths from ``base``)."""
    try:
        if find_shipped(spec) is not None:
            path = resolve_model(spec)
        else:
            given = Path(spec).expanduser()
            path = resolve_model(given if given.is_absolute() else base / given)
    except AffectlensError as exc:
        raise AffectlensError(f"{where}: member '{spec}' cannot be loaded: {exc}") from None
    if is_ensemble_card(path):
        raise AffectlensError(f"{where}: member '{spec}' is itself an ensemble; list its members instead")
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    return path


def _member_card(spec: str, path: Path, where: str) -> ModelCard:
    try:
        card = read_card(path)
    except AffectlensError as exc:
        raise AffectlensError(f"{where}: member '{spec}': {exc}") from None
    if has_valence_arousal(card):
        raise AffectlensError(f"{where}: member '{spec}' also predicts valence/arousal; ensembles combine "
                              "class probabilities only")
    return card


def input_fields(card: ModelCard) -> dict:
    """The card fields saying what an ensemble's input and output are: those of its first member."""
    return {"class_names": list(card.class_names), "in_channels": card.in_channels, "image_size": card.image_size,
            "input_size": card.input_size, "normalization": dict(card.normalization)}


def check_members(members: list[tuple[str, ModelCard]], where: str) -> None:
    """Refuse members that disagree on classes, channels, face size or alignment template."""
    first_spec, first = members[0]
    for spec, card in members[1:]:
        for key in SHARED_KEYS:
            if getattr(card, key) != getattr(first, key):
                raise AffectlensError(f"{where}: member '{spec}' has {key} {getattr(card, key)!r} but "
                                      f"'{first_spec}' has {getattr(first, key)!r}; ensemble members must match")
        if card.extra.get("face_template") != first.extra.get("face_template"):
            raise AffectlensError(f"{where}: members '{spec}' and '{first_spec}' align faces to different templates")


def load_ensemble(path: str | Path) -> Ensemble:
    """Read an ensemble card, resolve its members and check that they can be combined."""
    path = Path(path)
    card = read_card(path)
    where = f"ensemble card {path}"
    specs = card.model_options.get("members")
    if card.format != ENSEMBLE_FORMAT or not isinstance(specs, list) or len(specs) < 2 \
            or not all(isinstance(s, str) for s in specs):
        raise AffectlensError(f"{where}: needs model_options.members, two or more model names or paths")
    weights = normalized_weights(card.model_options.get("member_weights"), len(specs), where)
    if not isinstance(card.model_options.get("mirror", False), bool):
        raise AffectlensError(f"{where}: model_options.mirror must be true or false, "
                              f"got {card.model_options['mirror']!r}")
    paths = [_member_path(spec, path.parent, where) for spec in specs]
    cards = [_member_card(spec, p, where) for spec, p in zip(specs, paths, strict=True)]
    check_members([(f"{path.name}", card), *zip(specs, cards, strict=True)], where)
    members = tuple(EnsembleMember(s, p, c, w) for s, p, c, w in zip(specs, paths, cards, weights, strict=True))
    return Ensemble(path, card, members)


def ensemble_card(members: list[str | Path], weights: list[float] | None = None, description: str = "",
                  base: str | Path = ".", mirror: bool = False) -> ModelCard:
    """The card of an ensemble of ``members`` (names, or paths written as given), checked like :func:`load_ensemble`.

    ``base`` is the folder relative member paths are read from (the card's folder); ``mirror``
    averages every member over the face and its mirror image.
    """
    where = "ensemble"
    specs = [str(m) for m in members]
    if len(specs) < 2:
        raise AffectlensError(f"{where}: needs two or more members, got {len(specs)}")
    weights = normalized_weights(weights, len(specs), where)
    cards = [_member_card(s, _member_path(s, Path(base), where), where) for s in specs]
    check_members(list(zip(specs, cards, strict=True)), where)
    first = cards[0]
    licences = list(dict.fromkeys(c.licence for c in cards if c.licence))
    training = list(dict.fromkeys(c.training_data for c in cards if c.training_data))
    return ModelCard(
        architecture="ensemble",
        **input_fields(first),
        model_options={"members": specs, "member_weights": weights, **({"mirror": True} if mirror else {}),
                       "combination": combination(mirror)},
        training_data="; ".join(training),
        licence=" ".join(licences),
        description=description or f"{combination(mirror)} of " + ", ".join(specs),
        format=ENSEMBLE_FORMAT,
        class_prior=mean_class_prior(cards, weights),
        extra={"input_note": "each member prepares its own input (crop size, normalisation); input_size and "
                             "normalization here are the first member's",
               **({"face_template": first.extra["face_template"]} if "face_template" in first.extra else {})},
    )


def mean_class_prior(cards: list[ModelCard], weights: list[float]) -> list[float]:
    """The members' training class frequencies, averaged with the ensemble weights (empty unless every
    member's card has them): what the averaged probabilities carry for prior correction."""
    if not all(len(c.class_prior) == c.num_classes for c in cards):
        return []
    mean = [sum(w * c.class_prior[k] for c, w in zip(cards, weights, strict=True)) for k in range(cards[0].num_classes)]
    return [round(v / sum(mean), 6) for v in mean]


def write_ensemble_card(members: list[str | Path], weights: list[float] | None, path: str | Path,
                        description: str = "", mirror: bool = False) -> Path:
    """Write an ensemble card to ``path`` (.json) and return it; any command takes it as ``--model``.

    Shipped names are written as they are; paths are written relative to the card's folder when
    they lie below it (so a folder holding the card and its members can be moved), else absolute.
    """
    path = Path(path).with_suffix(".json")
    def written(member: str | Path) -> str:
        text = str(member)
        if find_shipped(text) is not None:
            return text
        target = Path(text).expanduser().resolve()
        relative = os.path.relpath(target, path.parent.resolve())
        return relative if not relative.startswith("..") else str(target)

    card = ensemble_card([written(m) for m in members], weights, description, base=path.parent, mirror=mirror)
    from affectlens import __version__

    card.affectlens_version = __version__
    path.parent.mkdir(parents=True, exist_ok=True)
    write_card(card, path)
    return path
