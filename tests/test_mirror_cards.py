"""A single model whose card says ``mirror``: every path that scores faces (ONNX Runtime, torch,
evaluation, ensembles holding it) averages each face with its left-right mirror image, on real
FER2013 faces and a copy of the shipped fast model."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from affectlens.cli import main
from affectlens.data.fer2013 import load_fer2013
from affectlens.errors import AffectlensError
from affectlens.evaluation.runner import ensemble_probabilities, evaluate_weights
from affectlens.inference.recognizer import Recognizer
from affectlens.models.weights import load_weights
from affectlens.runtime.card import read_card
from affectlens.runtime.ensemble_card import write_ensemble_card
from affectlens.runtime.factory import create_classifier
from affectlens.runtime.pretrained import resolve_model


def copy_of_fast(folder: Path, **card_changes: object) -> Path:
    """The shipped fast model's three files, copied, with ``card_changes`` written into its card."""
    source = resolve_model("fast")
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (".safetensors", ".onnx"):
        shutil.copyfile(source.with_suffix(suffix), folder / f"fast{suffix}")
    card = json.loads(source.with_suffix(".json").read_text())
    card.pop("mirror", None)
    card.pop("calibration", None)  # these tests are of the mirror; the temperature has tests of its own
    (folder / "fast.json").write_text(json.dumps({**card, **card_changes}))
    return folder / "fast.safetensors"


@pytest.fixture(scope="module")
def rows(data_dir: Path):
    return load_fer2013(data_dir / "fer2013").select_splits("PrivateTest").subset(np.arange(64))


@pytest.fixture
def mirrored(tmp_path: Path) -> Path:
    return copy_of_fast(tmp_path / "mirrored", mirror=True)


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    return copy_of_fast(tmp_path / "plain")


def flipped(faces: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(faces[:, :, ::-1])


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_a_mirror_card_averages_the_face_and_its_mirror_image(mirrored: Path, plain: Path, rows,
                                                              backend: str) -> None:
    faces = rows.images
    alone = create_classifier(plain, backend=backend)
    expected = (alone.predict(faces) + alone.predict(flipped(faces))) / 2
    got = create_classifier(mirrored, backend=backend).predict(faces)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.abs(got - alone.predict(faces)).max() > 1e-3  # the card changed the answer
    np.testing.assert_allclose(create_classifier(mirrored, backend=backend).predict(flipped(faces)), got, atol=1e-5)


def test_evaluation_scores_a_mirror_card_as_it_predicts(mirrored: Path, rows, tmp_path: Path) -> None:
    metrics = evaluate_weights(mirrored, rows, tmp_path / "report")
    predicted = create_classifier(mirrored, backend="onnx").predict(rows.images).argmax(1)
    assert metrics["accuracy"] == pytest.approx(float(np.mean(predicted == rows.labels)), abs=1e-9)
    assert json.loads((tmp_path / "report" / "evaluation.json").read_text())["mirror"] is True
    unmirrored = evaluate_weights(mirrored, rows, tmp_path / "plain", mirror=False)
    predicted = create_classifier(mirrored, backend="onnx", mirror=False).predict(rows.images).argmax(1)
    assert unmirrored["accuracy"] == pytest.approx(float(np.mean(predicted == rows.labels)), abs=1e-9)
    assert json.loads((tmp_path / "plain" / "evaluation.json").read_text())["mirror"] is False


def test_a_mirrored_member_mirrors_inside_an_ensemble_too(mirrored: Path, plain: Path, rows, tmp_path: Path) -> None:
    faces = rows.images
    card = write_ensemble_card([mirrored, "default"], [1.0, 1.0], tmp_path / "pair.json")
    # members answer as trained (uncalibrated); default stays unmirrored: the ensemble card does not say mirror
    default = create_classifier(resolve_model("default"), backend="onnx", calibrate=False).predict(faces)
    mirrored_fast = create_classifier(mirrored, backend="onnx", calibrate=False).predict(faces)
    expected = (default + mirrored_fast) / 2
    np.testing.assert_allclose(create_classifier(card, backend="onnx").predict(faces), expected, atol=1e-5)
    np.testing.assert_allclose(ensemble_probabilities(card, faces), expected, atol=1e-5)
    module, _ = load_weights(card)  # the one-module form (export, teacher) mirrors that member only
    assert module.mirror == [True, False]
    plain_pair = write_ensemble_card([plain, "default"], [1.0, 1.0], tmp_path / "plain_pair.json")
    assert np.abs(create_classifier(plain_pair, backend="onnx").predict(faces) - expected).max() > 1e-4


def test_cards_without_mirror_are_written_as_before_and_a_bad_value_is_refused(plain: Path, tmp_path: Path) -> None:
    card = read_card(plain)
    assert not card.mirror and "mirror" not in card.to_dict()
    bad = copy_of_fast(tmp_path / "bad", mirror="yes")
    with pytest.raises(AffectlensError, match=r"fast\.json: not a valid model card \(mirror must be true or false"):
        create_classifier(bad, backend="onnx")


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_the_mirror_option_overrides_the_card_either_way(mirrored: Path, plain: Path, rows, tmp_path: Path,
                                                         backend: str) -> None:
    faces = rows.images
    np.testing.assert_allclose(create_classifier(mirrored, backend=backend, mirror=False).predict(faces),
                               create_classifier(plain, backend=backend).predict(faces), atol=1e-6)
    np.testing.assert_allclose(create_classifier(plain, backend=backend, mirror=True).predict(faces),
                               create_classifier(mirrored, backend=backend).predict(faces), atol=1e-6)
    card = write_ensemble_card([mirrored, "default"], [1.0, 1.0], tmp_path / "pair.json", mirror=True)
    unmirrored = create_classifier(card, backend=backend, mirror=False)  # every member, the mirrored one too
    assert [m.mirror for m in unmirrored.members] == [False, False]
    np.testing.assert_allclose(ensemble_probabilities(card, faces, mirror=False), unmirrored.predict(faces),
                               atol=1e-5)


def test_predict_takes_no_mirror(mirrored: Path, media_dir: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    photo = media_dir / "single_face.jpg"
    monkeypatch.setattr(logging.root, "handlers", [])
    try:
        main(["predict", "--model", str(mirrored), "--no-mirror", str(photo), "-o", str(tmp_path / "out")])
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr().err
    (record,) = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    (unmirrored,) = Recognizer(model=mirrored, mirror=False).predict(photo).faces
    (as_card,) = Recognizer(model=mirrored).predict(photo).faces
    written = record["faces"][0]["probabilities"]
    written = [written[c] for c in unmirrored.class_names] if isinstance(written, dict) else written
    np.testing.assert_allclose(written, unmirrored.probabilities, atol=1e-4)
    assert np.abs(np.asarray(written) - as_card.probabilities).max() > 1e-3  # the flag was not ignored
