"""Evaluate a trained model on a dataset split and write the full report into a folder."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from affectlens.data.conform import conform
from affectlens.data.dataset import EmotionDataset
from affectlens.data.labels import canonical_class_name
from affectlens.data.preprocessing import Normalization
from affectlens.errors import AffectlensError
from affectlens.evaluation.metrics import classification_metrics
from affectlens.evaluation.report import write_evaluation_report
from affectlens.models.prediction.head import predict_probabilities
from affectlens.models.weights import load_weights
from affectlens.runtime.calibration import apply_calibration
from affectlens.runtime.card import ModelCard, has_valence_arousal
from affectlens.runtime.ensemble_card import is_ensemble_card, load_ensemble
from affectlens.runtime.prior import correct_probabilities, prior_weights
from affectlens.runtime.steps import DEFAULT_BATCH_SIZE


def align_classes(dataset: EmotionDataset, class_names: list[str]) -> EmotionDataset:
    """Map dataset labels onto the model's classes by name (case-insensitive).

    A model trained on FER2013 names classes differently from CK+ ("happy" / "Happy"); evaluating
    across datasets needs the same index for the same emotion. Dataset classes the model lacks
    (e.g. CK+ contempt for a FER2013 model) are dropped and reported.
    """
    if [c.lower() for c in dataset.class_names] == [c.lower() for c in class_names]:
        return dataset

    def key(name: str) -> str:  # the shared vocabulary's spelling, compared case-insensitively
        return canonical_class_name(name).lower()

    model_index = {key(c): i for i, c in enumerate(class_names)}
    mapping = np.array([model_index.get(key(c), -1) for c in dataset.class_names])
    if (mapping < 0).all():
        raise AffectlensError(
            f"dataset classes {dataset.class_names} share no class with the model's {class_names}"
        )
    new_labels = np.where(dataset.labels >= 0, mapping[np.maximum(dataset.labels, 0)], -1)
    keep = np.flatnonzero(new_labels >= 0)
    mapped = dataset.with_labels(new_labels, list(class_names)).subset(keep)
    dropped = [c for c, m in zip(dataset.class_names, mapping, strict=True) if m < 0]
    mapped.meta = {**mapped.meta, "dropped_classes": dropped}
    return mapped


def evaluate_weights(weights: str | Path, dataset: EmotionDataset, out_dir: str | Path, ten_crop: bool = False,
                     device: str | torch.device = "cpu", title: str | None = None,
                     batch_size: int = DEFAULT_BATCH_SIZE, chunk: int = 256, videos: list[str] | None = None,
                     prior_correction: float = 0.0, mirror: bool | None = None, calibrate: bool = True) -> dict:
    """Classify every labelled sample of ``dataset`` and write metrics.json, report.md and plots.

    ``prior_correction`` (0 to 1) scores the probabilities with the training class frequencies divided
    out, as ``predict --prior-correction`` answers (:mod:`affectlens.runtime.prior`).

    ``weights`` may be an ensemble card: its members then score the faces one after the other, each
    with its own input preparation, and their probabilities are averaged with the card's weights.
    A card that says ``mirror`` is scored as it predicts: each face averaged with its mirror image;
    ``mirror`` True or False overrides the card (every member of an ensemble), as ``predict --mirror``.
    The card's calibration (a temperature, perhaps a confidence map) is applied, as every classifier
    built from the card answers, unless ``calibrate`` is False (the raw probabilities it is fitted on).
    A valence/arousal model is scored video by video instead (:func:`evaluate_va`); ``chunk`` and
    ``videos`` (the videos whose timelines are drawn) apply to it only.
    """
    if is_ensemble_card(weights):  # members found and agreeing before any face is read
        ensemble = load_ensemble(weights)
        model, card, mirrored = None, ensemble.card, ensemble.mirror if mirror is None else mirror
    else:
        model, card = load_weights(weights, device=device)
        mirrored = card.mirror if mirror is None else mirror
    if has_valence_arousal(card):
        if prior_correction:
            raise AffectlensError("--prior-correction does not apply to valence/arousal models (they are scored "
                                  "video by video)")
        if ten_crop:
            raise AffectlensError("--ten-crop does not apply to valence/arousal models (they score whole videos)")
        if mirror:
            raise AffectlensError("--mirror does not apply to valence/arousal models (they score whole videos)")
        return evaluate_va(model, card, weights, dataset, out_dir, device, title, chunk, videos)
    correction = prior_weights(card, prior_correction, str(weights))
    dataset = align_classes(dataset, card.class_names)
    dataset = conform(dataset, card.image_size, card.in_channels)
    labelled = dataset.subset(np.flatnonzero(dataset.labels >= 0))
    if len(labelled) == 0:
        raise AffectlensError(f"dataset '{dataset.name}' has no labelled samples to evaluate")
    started = time.time()
    if model is None:
        probs = ensemble_probabilities(weights, labelled, ten_crop=ten_crop, batch_size=batch_size, device=device,
                                       mirror=mirror)
    else:
        probs = predict_probabilities(model, labelled, Normalization.from_dict(card.normalization), card.input_size,
                                      batch_size=batch_size, ten_crop=ten_crop, device=device,
                                      num_classes=card.num_classes, mirror=mirrored)
    temperature = card.temperature if calibrate else 1.0
    confidence_map = card.confidence_map if calibrate else None
    probs = correct_probabilities(apply_calibration(probs, temperature, confidence_map), correction)
    seconds = time.time() - started
    metrics = classification_metrics(labelled.labels, probs, card.class_names)
    extra = {
        "model": str(weights), "architecture": card.architecture, "dataset": dataset.name,
        "samples": len(labelled), "ten_crop": ten_crop, "mirror": mirrored,
        "prior_correction": float(prior_correction), "temperature": temperature,
        "confidence_map": confidence_map is not None,
        "seconds": round(seconds, 2),
        "dropped_classes": dataset.meta.get("dropped_classes", []),
    }
    out_dir = Path(out_dir)
    write_evaluation_report(metrics, out_dir, title or f"{card.architecture} on {dataset.name}",
                            labelled.labels, probs, card.class_names, extra=extra)
    np.save(out_dir / "probabilities.npy", probs.astype(np.float32))
    np.save(out_dir / "labels.npy", labelled.labels.astype(np.int64))
    (out_dir / "evaluation.json").write_text(json.dumps(extra, indent=2) + "\n")
    return metrics


def ensemble_probabilities(card_path: str | Path, faces: Any, *, ten_crop: bool = False,
                           batch_size: int = DEFAULT_BATCH_SIZE,
                           device: str | torch.device = "cpu", mirror: bool | None = None) -> np.ndarray:
    """Weighted mean of the members' torch probabilities for uint8 faces or an EmotionDataset.

    Members are loaded one at a time, each scoring with its own crop size, normalisation and
    views (ten-crop, or the mirror image too when the card says ``mirror``), so a whole ensemble is
    never in memory at once. ``mirror`` True or False overrides the cards for every member.
    """
    from affectlens.data.preprocessing import Normalization
    from affectlens.models.prediction.head import predict_probabilities
    from affectlens.runtime.ensemble_card import EnsembleMember, load_ensemble, weighted_mean

    ensemble = load_ensemble(card_path)
    mirrors = ensemble.member_mirrors() if mirror is None else [mirror] * len(ensemble.members)

    def member_probabilities(member: EnsembleMember, mirrored: bool) -> np.ndarray:
        model, card = load_weights(member.path, device=device)
        return predict_probabilities(model, faces, Normalization.from_dict(card.normalization), card.input_size,
                                     batch_size=batch_size, ten_crop=ten_crop, device=device,
                                     num_classes=card.num_classes, mirror=mirrored)

    # a generator: one member's network in memory at a time
    return weighted_mean((member_probabilities(m, mirrored) for m, mirrored in zip(ensemble.members, mirrors,
                                                                                       strict=True)),
                         ensemble.weights)


def evaluate_va(model: torch.nn.Module, card: ModelCard, weights: str | Path, dataset: EmotionDataset,
                out_dir: str | Path, device: str | torch.device = "cpu", title: str | None = None, chunk: int = 256,
                videos: list[str] | None = None) -> dict:
    """CCC, MSE and Pearson r of a valence/arousal model on every video of ``dataset`` (also a dataset
    other than its training data: cross-dataset), plus class metrics when both have the same classes."""
    from affectlens.evaluation.regression import regression_metrics
    from affectlens.evaluation.va_report import write_va_report
    from affectlens.models.prediction.sequence import predict_videos

    if not dataset.has_regression_targets:
        raise AffectlensError(f"dataset '{dataset.name}' has no valence/arousal annotations to evaluate against")
    dataset = conform(dataset, card.image_size, card.in_channels)
    started = time.time()
    probs, va = predict_videos(model, dataset, Normalization.from_dict(card.normalization), card.input_size,
                               card.num_classes, device, chunk)
    seconds = time.time() - started
    target = np.stack([dataset.valence, dataset.arousal], axis=1)  # type: ignore[list-item]
    metrics: dict = {"valence_arousal": regression_metrics(target, va)}
    same_classes = [c.lower() for c in dataset.class_names] == [c.lower() for c in card.class_names]
    labelled = dataset.labels >= 0
    if card.num_classes and same_classes and labelled.any():
        metrics.update(classification_metrics(dataset.labels[labelled], probs[labelled], card.class_names))
    extra = {"model": str(weights), "architecture": card.architecture, "dataset": dataset.name,
             "frames": len(dataset), "seconds": round(seconds, 2)}
    write_va_report(metrics, dataset, va, out_dir, title or f"{card.architecture} on {dataset.name}", extra, videos)
    np.save(Path(out_dir) / "valence_arousal.npy", va.astype(np.float32))
    (Path(out_dir) / "evaluation.json").write_text(json.dumps(extra, indent=2) + "\n")
    return metrics
