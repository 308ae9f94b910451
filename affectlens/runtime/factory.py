"""Building the classifier for a model: the one place that decides which classifier a model file needs.

Why here and not in :mod:`.classifiers`: the decision needs the calibration and prior-correction
wrappers and the sequence runtime, which themselves build on the classifier classes; keeping the
factory above them all gives the runtime no import cycle. The torch backend is looked up by name
(:mod:`.torch_bridge`), so building an ONNX classifier never imports torch.
"""

from __future__ import annotations

import time
from pathlib import Path

from affectlens.errors import AffectlensError, unknown_name_error
from affectlens.runtime import sequence
from affectlens.runtime.calibration import CalibratedClassifier
from affectlens.runtime.classifiers import Classifier, EnsembleClassifier, OnnxClassifier, exported_from
from affectlens.runtime.prior import PriorCorrectedClassifier, prior_weights
from affectlens.runtime.resolve import ResolvedModel, resolve
from affectlens.runtime.steps import DEFAULT_BATCH_SIZE
from affectlens.runtime.torch_bridge import torch_backend

BACKENDS = ("onnx", "torch")


def create_classifier(
    model: str | Path | ResolvedModel,
    backend: str = "onnx",
    device: str = "cpu",
    ten_crop: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    num_threads: int | None = None,
    prior_correction: float = 0.0,
    mirror: bool | None = None,
    calibrate: bool = True,
) -> Classifier:
    """Build the classifier for a model: a :class:`~.resolve.ResolvedModel`, or anything
    :func:`~.resolve.resolve` takes (a shipped name, run folder, ``.safetensors``/``.onnx`` file or an
    ensemble card), resolved here once.

    ``calibrate`` applies the card's ``calibration`` (a temperature and perhaps a confidence map,
    fitted on validation data; :mod:`affectlens.runtime.calibration`), before any prior correction;
    False answers with the probabilities as trained (what a calibration is fitted on).

    ``prior_correction`` (0 to 1) divides the training class frequencies out of the probabilities
    (:mod:`affectlens.runtime.prior`); 0 leaves them as trained. ``mirror`` overrides the card's
    ``mirror`` (every member of an ensemble): False answers at twice the speed of a mirrored model,
    and not with the accuracy its card states; None keeps what the card says.
    """
    if backend not in BACKENDS:
        raise unknown_name_error("inference backend", backend, BACKENDS)
    model = resolve(model)
    path, card = model.path, model.card
    if model.is_ensemble:
        prior_weights(card, prior_correction, str(path))  # before any member loads
        classifier: Classifier = ensemble_classifier(model, backend, device, ten_crop, batch_size, num_threads)
    else:
        if model.is_sequence:
            if mirror:
                raise AffectlensError(f"{path}: mirroring applies to per-face classifiers, not to a sequence "
                                      "(CNN-GRU) model")
            if prior_correction:
                raise AffectlensError(f"{path}: prior correction applies to per-face classifiers, not to a "
                                      "sequence (CNN-GRU) model")
            return _sequence_classifier(path, backend, device, ten_crop, batch_size, num_threads)
        prior_weights(card, prior_correction, str(path))  # a bad strength or a card without a prior fails first
        if backend == "onnx":
            _check_onnx_device(device)
            classifier = OnnxClassifier.from_path(path, ten_crop, batch_size, num_threads)
        else:
            classifier = torch_backend("the torch backend").TorchClassifier(path, device, ten_crop, batch_size)
    if mirror is not None:
        for network in classifier.members if isinstance(classifier, EnsembleClassifier) else [classifier]:
            network.mirror = bool(mirror)
    if calibrate and classifier.card.calibrated:
        classifier = CalibratedClassifier(classifier, classifier.card.temperature, classifier.card.confidence_map)
    return PriorCorrectedClassifier(classifier, prior_correction) if prior_correction else classifier


def ensemble_classifier(model: ResolvedModel, backend: str = "onnx", device: str = "cpu", ten_crop: bool = False,
                        batch_size: int = DEFAULT_BATCH_SIZE, num_threads: int | None = None) -> EnsembleClassifier:
    """An ensemble's members, each a classifier of ``backend``, combined by the card's weights."""
    started = time.perf_counter()
    # members answer as trained: the ensemble's mean is calibrated as a whole, by its own card's
    # temperature (as ``evaluate`` scores it), not by each member's
    members = [create_classifier(m, backend, device, ten_crop, batch_size, num_threads, calibrate=False)
               for m in model.members]
    for member, mirrored in zip(members, model.member_mirrors, strict=True):
        member.mirror = mirrored
    out = EnsembleClassifier(model.card, model.path, members, list(model.member_weights), ten_crop, batch_size)
    out.load_seconds = time.perf_counter() - started
    return out


def _check_onnx_device(device: str) -> None:
    if device not in ("cpu", "auto"):
        raise AffectlensError(f"the onnx backend runs on cpu only; use backend='torch' for device '{device}'")


def _sequence_classifier(path: Path, backend: str, device: str, ten_crop: bool, batch_size: int,
                         num_threads: int | None) -> Classifier:
    """A CNN-GRU model (:mod:`.sequence`): exported graphs beside the weights are used when they
    were exported from them, else the graphs are exported in memory (onnx) or torch runs it."""
    if ten_crop:
        raise AffectlensError(f"{path}: ten-crop does not apply to a sequence (CNN-GRU) model")
    if backend == "torch":
        if path.suffix == ".onnx":
            raise AffectlensError(f"{path}: the torch backend needs a .safetensors model; use backend='onnx'")
        return torch_backend("the torch backend").torch_sequence_classifier(path, device, batch_size)
    _check_onnx_device(device)
    exported = path.with_suffix(".onnx")
    if path.suffix != ".onnx" and exported.exists() and exported_from(exported, path) \
            and sequence.step_graph_path(exported).exists():
        path = exported
    if path.suffix == ".onnx":
        return sequence.load_onnx_sequence(path, batch_size, num_threads)
    return sequence.export_sequence_classifier(path, batch_size, num_threads)
