"""Calibrated confidence: the temperature fit, the expected calibration error, the card's temperature
applied on every prediction path, and ``evaluate --fit-temperature --write-card`` end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from affectlens.cli.evaluate import evaluate_command
from affectlens.runtime.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
)
from affectlens.runtime.card import ModelCard, read_card, write_card
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
