"""A model resolved once: what a ``--model`` value names, read and checked one time, then passed on.

Why: a model name used to travel as a bare ``Path`` that each layer re-read (is it an ensemble card?
which suffix? which members, mirrors, temperature?). Like timm's ``pretrained_cfg``, a
:class:`ResolvedModel` carries everything prediction needs to know about a model: its files (and,
for a shipped model, the sha256 the table records), its card (preprocessing, classes, calibration,
prior), and for an ensemble its members (each resolved), their weights and mirrors. Resolving reads
only JSON (cards and the shipped table), never weights, and never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from affectlens.errors import AffectlensError
from affectlens.runtime import pretrained
from affectlens.runtime.card import ModelCard, has_valence_arousal, is_sequence_model, read_card
from affectlens.runtime.ensemble_card import is_ensemble_card, load_ensemble
from affectlens.runtime.pretrained import file_sha256, find_shipped, pretrained_entry, read_table, resolve_model


@dataclass(frozen=True)
class ResolvedModel:
    """One model (or ensemble), resolved: its main file, card and, for an ensemble, resolved members."""

    #: what was asked for (a shipped name, run folder or file), for messages
    spec: str
    #: the main file: ``.safetensors`` / ``.onnx`` weights, or an ensemble card (``.json``)
    path: Path
    card: ModelCard
    #: the shipped table's ``arch.tag`` name; None for a user's own model
    shipped_name: str | None = None
    #: an ensemble's members, each resolved, with the normalised weights and mirrors its card gives
    members: tuple[ResolvedModel, ...] = ()
    member_weights: tuple[float, ...] = ()
    member_mirrors: tuple[bool, ...] = ()
    #: sha256 per file kind (``weights``, ``onnx``, ``card``) that the shipped table records
    sha256: dict[str, str] = field(default_factory=dict)

    @property
    def is_ensemble(self) -> bool:
        return bool(self.members)

    @property
    def is_sequence(self) -> bool:
        return is_sequence_model(self.card)

    @property
    def valence_arousal(self) -> bool:
        return has_valence_arousal(self.card)

    @property
    def class_names(self) -> list[str]:
        return list(self.card.class_names)

    @property
    def temperature(self) -> float:
        return self.card.temperature

    def __str__(self) -> str:
        return str(self.path)


def resolve(model: str | Path | ResolvedModel) -> ResolvedModel:
    """Resolve a shipped name, run folder, weights file or ensemble card (a resolved model is returned
    as it is). Fails with one line when the model or any ensemble member cannot be found or read."""
    if isinstance(model, ResolvedModel):
        return model
    spec = str(model)
    path = resolve_model(model)
    shipped = find_shipped(spec)
    sha = dict(read_table()[shipped].get("sha256", {})) if shipped else {}
    if is_ensemble_card(path):
        ensemble = load_ensemble(path)
        members = tuple(_resolve_file(m.spec, m.path) for m in ensemble.members)
        return ResolvedModel(spec, path, ensemble.card, shipped, members, tuple(ensemble.weights),
                             tuple(ensemble.member_mirrors()), sha)
    return _resolve_file(spec, path, shipped, sha)


def _resolve_file(spec: str, path: Path, shipped: str | None = None,
                  sha: dict[str, str] | None = None) -> ResolvedModel:
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    if shipped is None:
        shipped = find_shipped(spec)
        sha = dict(read_table()[shipped].get("sha256", {})) if shipped else {}
    return ResolvedModel(spec, path, read_card(path), shipped, sha256=sha or {})


def verify_pretrained(name: str) -> None:
    """Check that every file of a shipped model exists and has the sha256 the table records.

    A damaged or swapped file would otherwise give plausible but wrong predictions. An ensemble's
    members are checked too, and its card must load (members found, classes agreeing).
    """
    entry = pretrained_entry(name)
    if entry["architecture"] == "ensemble":
        for member in entry.get("members", []):
            if find_shipped(member) is None:
                raise AffectlensError(f"shipped ensemble '{entry['name']}' names member '{member}', which is not a "
                                      "shipped model; reinstall affectlens")
            verify_pretrained(member)
    for kind, file_name in entry["files"].items():
        path = pretrained.TABLE_FILE.parent / file_name
        if not path.exists():
            raise AffectlensError(f"{path}: file of shipped model '{entry['name']}' is missing; reinstall affectlens")
        expected = entry["sha256"][kind]
        if file_sha256(path) != expected:
            raise AffectlensError(
                f"{path}: sha256 differs from {pretrained.TABLE_FILE.name} (expected {expected[:12]}...); "
                "the file was changed"
            )
    if entry["architecture"] == "ensemble":
        members = [m.spec for m in load_ensemble(pretrained.TABLE_FILE.parent / entry["files"]["card"]).members]
        if [find_shipped(m) for m in members] != entry.get("members"):
            raise AffectlensError(f"shipped ensemble '{entry['name']}': its card's members {members} differ from "
                                  f"{pretrained.TABLE_FILE.name}'s {entry.get('members')}")
