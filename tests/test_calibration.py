"""Calibrated confidence: the temperature fit, the expected calibration error, the card's calibration
applied on every prediction path, and ``evaluate --fit-temperature --write-card`` end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from affectlens.cli.evaluate import evaluate_command
from affectlens.data.registry import load_dataset
from affectlens.errors import AffectlensError
from affectlens.evaluation.calibration import calibrate_with_record, fit_from_report
from affectlens.runtime.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
)
from affectlens.runtime.card import ModelCard, read_card, write_card
from affectlens.runtime.confidence_map import ConfidenceMap
from affectlens.runtime.factory import create_classifier
from affectlens.runtime.pretrained import resolve_model


def tempered_sample(true_temperature: float, n: int = 6000, k: int = 7, seed: int = 0):
    """Labels drawn from softmax(logits / T): the model's softmax(logits) is miscalibrated by exactly T."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 3.0
    truth = np.exp(logits / true_temperature)
    truth /= truth.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(k, p=row) for row in truth])
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return labels, probs


@pytest.mark.parametrize("true_temperature", [0.6, 1.0, 2.5])
def test_fit_recovers_the_temperature_and_lowers_the_error(true_temperature: float) -> None:
    labels, probs = tempered_sample(true_temperature)
    fitted = fit_temperature(labels, probs)
    assert fitted == pytest.approx(true_temperature, rel=0.08)
    calibrated = apply_temperature(probs, fitted)
    assert expected_calibration_error(labels, calibrated) < 0.03
    if true_temperature != 1.0:
        assert expected_calibration_error(labels, probs) > 2 * expected_calibration_error(labels, calibrated)


def test_temperature_never_changes_the_winner_and_one_is_identity() -> None:
    _, probs = tempered_sample(1.0, n=500)
    for temperature in (0.3, 0.9, 4.0):
        scaled = apply_temperature(probs, temperature)
        assert np.array_equal(scaled.argmax(axis=1), probs.argmax(axis=1))
        assert np.allclose(scaled.sum(axis=1), 1.0, atol=1e-5)
    assert apply_temperature(probs, 1.0) is probs


def test_ece_by_hand() -> None:
    # four faces at 0.9 confidence, three right: |0.75 - 0.9| = 0.15 over all four; two at 0.55, both wrong
    probs = np.array([[0.9, 0.1]] * 4 + [[0.55, 0.45]] * 2)
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert expected_calibration_error(labels, probs) == pytest.approx((4 * 0.15 + 2 * 0.55) / 6)
    bins = reliability_bins(labels, probs)
    assert len(bins) == 15 and sum(b["count"] for b in bins) == 6
    assert [b for b in bins if b["count"]][-1]["accuracy"] == pytest.approx(0.75)


def test_card_temperature_is_applied_by_every_classifier(tmp_path: Path) -> None:
    shipped = resolve_model("fast")
    for path in shipped.parent.glob(shipped.stem + ".*"):
        shutil.copy(path, tmp_path / path.name)
    copy = tmp_path / shipped.name
    card = read_card(copy)
    plain = ModelCard.from_dict({k: v for k, v in card.to_dict().items() if k != "calibration"})
    assert plain.temperature == 1.0 and "calibration" not in plain.to_dict()  # older cards stay as they were
    card.calibration = {"temperature": 2.0, "fitted_on": "test"}
    write_card(card, copy)
    assert ModelCard.from_dict(json.loads(copy.with_suffix(".json").read_text())).temperature == 2.0
    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48, 1), dtype=np.uint8)
    raw = create_classifier(shipped, calibrate=False).predict(faces)
    for backend in ("onnx", "torch"):
        calibrated = create_classifier(copy, backend=backend).predict(faces)
        assert np.allclose(calibrated, apply_temperature(raw, 2.0), atol=1e-4), backend
        assert np.allclose(create_classifier(copy, backend=backend, calibrate=False).predict(faces), raw, atol=1e-4)


def test_evaluate_fits_writes_and_then_applies_a_temperature(tmp_path: Path, data_dir: Path) -> None:
    shipped = resolve_model("fast")
    for path in shipped.parent.glob(shipped.stem + ".*"):
        shutil.copy(path, tmp_path / path.name)
    copy = tmp_path / shipped.name
    runner = CliRunner()
    data = ["--data", str(data_dir / "ckplus48"), "--kind", "ckplus"]
    fitted = runner.invoke(evaluate_command, ["-m", str(copy), *data, "--fit-temperature", "--write-card", "-o",
                                              str(tmp_path / "fit")])
    assert fitted.exit_code == 0, fitted.output
    record = json.loads((tmp_path / "fit" / "calibration.json").read_text())
    assert read_card(copy).calibration == record and record["samples"] > 900
    assert record["nll_after"] <= record["nll_before"]  # what the fit minimises (ECE usually follows)
    assert (tmp_path / "fit" / "reliability.png").stat().st_size > 1000
    scored = runner.invoke(evaluate_command, ["-m", str(copy), *data, "-o", str(tmp_path / "scored")])
    assert scored.exit_code == 0, scored.output
    metrics = json.loads((tmp_path / "scored" / "metrics.json").read_text())
    assert metrics["ece"] == pytest.approx(record["ece_after"], abs=1e-3)  # the card's temperature was used
    assert metrics["info"]["temperature"] == record["temperature"]
    refused = runner.invoke(evaluate_command, ["-m", "fast", *data, "--fit-temperature", "--write-card"])
    assert refused.exit_code == 2 and "shipped model" in refused.output


def test_evaluate_photos_scores_the_whole_pipeline_and_counts_missed_faces(tmp_path: Path, media_dir: Path) -> None:
    """``--kind photos``: whole photos through detector, alignment and classifier; a photo without a face is missed."""
    tree = tmp_path / "photos"
    for cls, name in (("happy", "single_face.jpg"), ("happy", "multi_face.jpg"), ("sad", "free-mountain-vector-01.jpg"),
                      ("contempt", "single_face.jpg")):
        (tree / cls).mkdir(parents=True, exist_ok=True)
        shutil.copy(media_dir / name, tree / cls / name)
    result = CliRunner().invoke(evaluate_command, ["-m", "fast", "--data", str(tree), "--kind", "photos", "-o",
                                                   str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "report" / "evaluation.json").read_text())
    pipeline = info["pipeline"]
    assert pipeline["images"] == 3 and pipeline["faces_missed"] == 1 and pipeline["missed_per_class"] == {"Sad": 1}
    assert pipeline["dropped_classes"] == ["contempt"]  # not a class of the model
    rows = (tmp_path / "report" / "per_image.csv").read_text().splitlines()
    assert len(rows) == 4 and all("Happy" in row for row in rows[1:3])  # both photos of smiling people
    assert pipeline["end_to_end_accuracy"] == pytest.approx(2 / 3)
    assert "end to end: accuracy 0.6667 over 3 images, no face found in 1" in result.output
    refused = CliRunner().invoke(evaluate_command, ["-m", "fast", "--data", str(tree), "--kind", "photos",
                                                    "--split", "PublicTest"])
    assert refused.exit_code == 2 and "--split does not apply" in refused.output


def middle_overconfident_sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Faces whose chance of being right is an S-shaped function of the model's top probability:
    over-confident in the middle, under-confident at the top (gaps of both signs, like the shipped
    default's), so no single temperature removes them."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, 7)) * rng.uniform(0.5, 3.0, size=(n, 1))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    top = probs.max(axis=1)
    # P(right) for each face's top probability: 0.08 below it between 0.45 and 0.72, 0.08 above it beyond
    right = top + np.where(top > 0.45, 0.08 * np.sin(2 * np.pi * (top - 0.45) / 0.55 + np.pi), 0.0)
    winner = probs.argmax(axis=1)
    wrong = (winner + rng.integers(1, 7, size=n)) % 7
    labels = np.where(rng.random(n) < right, winner, wrong)
    return labels, probs


def test_confidence_map_keeps_the_winner_and_the_rows_probabilities() -> None:
    rng = np.random.default_rng(3)
    for k in (2, 3, 7, 8):
        probs = rng.dirichlet(np.full(k, 0.4), size=400).astype(np.float32)
        # a map that pulls every confidence down hard: the floor must keep each winner ahead
        harsh = ConfidenceMap((0.0, 0.5, 1.0), (0.0, 0.05, 0.3))
        for confidence_map in (harsh, ConfidenceMap((0.0, 1.0), (0.0, 1.0))):
            mapped = confidence_map(probs)
            assert mapped.dtype == np.float32 and mapped.shape == probs.shape
            assert np.array_equal(mapped.argmax(axis=1), probs.argmax(axis=1)), k
            assert np.allclose(mapped.sum(axis=1), 1.0, atol=1e-5) and mapped.min() >= 0
        identity = ConfidenceMap((0.0, 1.0), (0.0, 1.0))(probs)
        assert np.allclose(identity, probs, atol=1e-6)
    # the map's value is used wherever it keeps the winner ahead; the others keep their proportions
    probs = np.array([[0.6, 0.3, 0.1]])
    mapped = ConfidenceMap((0.0, 1.0), (0.0, 0.8))(probs)[0]
    assert mapped[0] == pytest.approx(0.48) and mapped[1] / mapped[2] == pytest.approx(3.0)
    assert np.array_equal(ConfidenceMap((0.0, 1.0), (0.0, 0.5))(np.array([[1.0, 0.0]])), [[1.0, 0.0]])


def test_malformed_confidence_maps_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(AffectlensError, match="non-decreasing"):
        ConfidenceMap((0.0, 0.5, 1.0), (0.2, 0.9, 0.4))
    with pytest.raises(AffectlensError, match="within"):
        ConfidenceMap((0.0, 1.5), (0.0, 1.0))
    with pytest.raises(AffectlensError, match="at least 2 knots"):
        ConfidenceMap((0.5,), (0.5,))
    shipped = resolve_model("fast")
    card = read_card(shipped)
    card.calibration = {"temperature": 1.0, "confidence_map": {"confidence": [0, 1], "calibrated": [1, 0]}}
    write_card(card, tmp_path / "broken.safetensors")
    with pytest.raises(AffectlensError, match=r"broken\.json: not a valid model card .*non-decreasing"):
        read_card(tmp_path / "broken.safetensors")


def test_a_confidence_map_fixes_what_no_temperature_can(tmp_path: Path) -> None:
    labels, probs = middle_overconfident_sample(6000, seed=0)
    np.save(tmp_path / "probabilities.npy", probs.astype(np.float32))
    np.save(tmp_path / "labels.npy", labels)
    record = fit_from_report(tmp_path, "synthetic")
    assert set(record["confidence_map_candidates"]) == {"logistic", "isotonic"}
    assert "confidence_map" in record  # cross-validation found a map that helps
    held_labels, held_probs = middle_overconfident_sample(6000, seed=1)  # faces the fit never saw
    temperature_only = expected_calibration_error(held_labels, apply_temperature(held_probs, record["temperature"]))
    calibrated = calibrate_with_record(held_probs, record)
    assert expected_calibration_error(held_labels, calibrated) < 0.5 * temperature_only
    assert np.array_equal(calibrated.argmax(axis=1), held_probs.argmax(axis=1))  # accuracy untouched
    # a well calibrated model gets no map: none lowers the cross-validated error
    labels, probs = tempered_sample(1.0, n=3000, seed=4)
    np.save(tmp_path / "probabilities.npy", probs.astype(np.float32))
    np.save(tmp_path / "labels.npy", labels)
    assert "confidence_map" not in fit_from_report(tmp_path, "calibrated already")


def test_card_confidence_map_is_applied_by_every_classifier(tmp_path: Path, data_dir: Path) -> None:
    shipped = resolve_model("fast")
    for path in shipped.parent.glob(shipped.stem + ".*"):
        shutil.copy(path, tmp_path / path.name)
    copy = tmp_path / shipped.name
    card = read_card(copy)
    record = {"temperature": 0.8, "confidence_map": ConfidenceMap((0.0, 0.5, 1.0), (0.1, 0.3, 0.95)).to_record()}
    card.calibration = record
    write_card(card, copy)
    faces = load_dataset("fer2013", data_dir / "fer2013").select_splits("PublicTest").subset(np.arange(40)).images
    raw = create_classifier(copy, calibrate=False).predict(faces)
    for backend in ("onnx", "torch"):
        assert np.allclose(create_classifier(copy, backend=backend).predict(faces), calibrate_with_record(raw, record),
                           atol=1e-4), backend


def test_shipped_default_confidence_is_calibrated_on_real_faces(data_dir: Path) -> None:
    """The shipped default's card holds the calibration its measurements were made with, and on the
    first 1,200 PrivateTest faces (never used to fit it) its ECE stays below the uncalibrated one."""
    default = resolve_model("default")
    card = read_card(default)
    assert card.calibration["fitted_on"] == "fer2013 PublicTest"
    faces = load_dataset("fer2013", data_dir / "fer2013").select_splits("PrivateTest").subset(np.arange(1200))
    raw = create_classifier(default, calibrate=False).predict(faces.images)
    calibrated = create_classifier(default).predict(faces.images)
    assert np.array_equal(raw.argmax(axis=1), calibrated.argmax(axis=1))
    assert expected_calibration_error(faces.labels, calibrated) < expected_calibration_error(faces.labels, raw)
