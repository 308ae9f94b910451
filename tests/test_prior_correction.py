"""Prior correction: the training class frequencies divided out of a model's probabilities.

Checked on the maths, on the shipped FER2013 models (copied into tmp_path with their card's
``class_prior`` set from FER2013 Training here, so the test does not trust the card it checks),
through every path a user takes (Recognizer, ensemble, ``predict``, ``evaluate``), and on real
faces from another source: CK+, where disgust is common and a FER2013 model calls it Angry.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from affectlens.data.fer2013 import load_fer2013
from affectlens.data.registry import load_dataset
from affectlens.errors import AffectlensError
from affectlens.evaluation.runner import evaluate_weights
from affectlens.inference.recognizer import Recognizer
from affectlens.runtime import pretrained
from affectlens.runtime.card import ModelCard, class_frequencies, read_card
from affectlens.runtime.ensemble_card import write_ensemble_card
from affectlens.runtime.factory import create_classifier
from affectlens.runtime.prior import correct_probabilities, prior_weights

if TYPE_CHECKING:
    from conftest import RunMain


def card_with_prior(prior: list[float]) -> ModelCard:
    return ModelCard(architecture="x", class_names=["Angry", "Disgust"], in_channels=1, image_size=48,
                     input_size=48, normalization={"mode": "unit"}, class_prior=prior)


@pytest.fixture(scope="module")
def training_prior(data_dir: Path) -> list[float]:
    return class_frequencies(load_fer2013(data_dir / "fer2013").select_splits("Training").class_counts())


def copy_model(name: str, folder: Path, prior: list[float] | None) -> Path:
    """The shipped model's files under ``folder``, its card's class_prior replaced (None: removed)."""
    source = pretrained.resolve_model(name)
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (".safetensors", ".onnx", ".json"):
        shutil.copyfile(source.with_suffix(suffix), folder / f"{source.stem}{suffix}")
    card_path = folder / f"{source.stem}.json"
    card = json.loads(card_path.read_text())
    card["class_prior"] = prior or []
    card_path.write_text(json.dumps(card))
    return folder / f"{source.stem}.safetensors"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, training_prior: list[float]) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("prior")
    default = copy_model("default", root / "default", training_prior)
    fast = copy_model("fast", root / "fast", training_prior)
    return {"default": default, "fast": fast, "no_prior": copy_model("default", root / "bare", None),
            "ensemble": write_ensemble_card([default, fast], [2.0, 1.0], root / "ensemble.json")}


# ------------------------------------------------------------------------------------------ maths
def test_a_close_call_goes_to_the_rarer_class() -> None:
    weights = prior_weights(card_with_prior([0.8, 0.2]), 1.0)
    corrected = correct_probabilities(np.array([[0.6, 0.4]], np.float32), weights)
    # 0.6 / 0.8 against 0.4 / 0.2, renormalised
    np.testing.assert_allclose(corrected, [[0.75 / 2.75, 2.0 / 2.75]], rtol=1e-6)
    half = correct_probabilities(np.array([[0.6, 0.4]], np.float32), prior_weights(card_with_prior([0.8, 0.2]), 0.5))
    assert 0.4 < half[0, 1] < corrected[0, 1]  # strength moves smoothly between as-trained and balanced


def test_zero_strength_or_a_uniform_prior_changes_nothing() -> None:
    probs = np.array([[0.7, 0.3], [0.1, 0.9]], np.float32)
    assert prior_weights(card_with_prior([0.9, 0.1]), 0.0) is None
    np.testing.assert_allclose(correct_probabilities(probs, prior_weights(card_with_prior([0.5, 0.5]), 1.0)), probs,
                               rtol=1e-6)


def test_bad_strengths_and_cards_without_a_prior_are_refused() -> None:
    with pytest.raises(AffectlensError, match=r"prior correction must be in \[0, 1\]"):
        prior_weights(card_with_prior([0.5, 0.5]), 1.5)
    with pytest.raises(AffectlensError, match="holds no class_prior"):
        prior_weights(card_with_prior([]), 1.0, "m.safetensors")
    with pytest.raises(AffectlensError, match="must hold 2 non-negative fractions"):
        prior_weights(card_with_prior([0.2, 0.3, 0.5]), 1.0)
    # a class never seen in training gets a finite factor, not a division by zero
    assert np.isfinite(prior_weights(card_with_prior([1.0, 0.0]), 1.0)).all()


def test_training_records_the_prior_its_probabilities_carry() -> None:
    """Imbalance remedies change the prior a trained model carries; correcting for the raw
    frequencies after a balanced sampler or logit adjustment would correct twice."""
    from affectlens.training.config import LossConfig
    from affectlens.training.losses import learned_prior

    counts = np.array([400.0, 100.0, 0.0, 500.0])
    plain = learned_prior(LossConfig(), counts, counts, balanced_sampler=False)
    assert plain == pytest.approx([0.4, 0.1, 0.0, 0.5])
    assert learned_prior(LossConfig(), counts, counts, balanced_sampler=True) == pytest.approx([0.25] * 4)
    inverse = learned_prior(LossConfig(class_weights="inverse"), counts[[0, 1, 3]], counts[[0, 1, 3]], False)
    assert inverse == pytest.approx([1 / 3] * 3, abs=1e-6)
    half = learned_prior(LossConfig(name="logit_adjusted", logit_tau=0.5), counts[[0, 1, 3]], counts[[0, 1, 3]],
                         False)
    root = np.sqrt([0.4, 0.1, 0.5])
    assert half == pytest.approx(list(root / root.sum()), abs=1e-6)
    assert learned_prior(LossConfig(), np.zeros(0), np.zeros(0), False) == []  # valence/arousal only


# ------------------------------------------------------------------------------ every user's path
def test_recognizer_ensemble_and_backends_apply_the_same_correction(models: dict[str, Path], media_dir: Path,
                                                                    data_dir: Path,
                                                                    training_prior: list[float]) -> None:
    photo = media_dir / "multi_face.jpg"
    weights = np.asarray(training_prior) ** -1.0
    plain = Recognizer(model=models["default"])
    expected = correct_probabilities(np.stack([f.probabilities for f in plain.predict(photo).faces]), weights)
    assert len(expected) >= 2
    for backend in ("onnx", "torch"):
        corrected = Recognizer(model=models["default"], detector=plain.detector, backend=backend, prior_correction=1.0)
        got = np.stack([f.probabilities for f in corrected.predict(photo).faces])
        np.testing.assert_allclose(got, expected, atol=1e-5)
    # the ensemble's prior is its members' (here both FER2013 Training), weighted like their probabilities
    assert read_card(models["ensemble"]).class_prior == pytest.approx(training_prior, abs=1e-5)
    faces = load_fer2013(data_dir / "fer2013").select_splits("PrivateTest").images[:32]
    corrected = create_classifier(models["ensemble"], prior_correction=1.0)
    np.testing.assert_allclose(corrected.predict(faces),
                               correct_probabilities(create_classifier(models["ensemble"]).predict(faces), weights),
                               atol=1e-5)


def test_on_ckplus_disgust_is_no_longer_called_angry(models: dict[str, Path], data_dir: Path,
                                                      tmp_path: Path) -> None:
    """CK+ faces were never trained on; 19% of them show disgust, which FER2013 (1.5%) makes rare."""
    ckplus = load_dataset("ckplus", data_dir / "ckplus48")
    plain = evaluate_weights(models["default"], ckplus, tmp_path / "plain")
    balanced = evaluate_weights(models["default"], ckplus, tmp_path / "balanced", prior_correction=1.0)
    def recall(metrics: dict, name: str) -> float:
        (row,) = [row for row in metrics["per_class"] if row["class"] == name]
        return row["recall"]

    assert recall(balanced, "Disgust") > recall(plain, "Disgust") + 0.1
    assert balanced["balanced_accuracy"] > plain["balanced_accuracy"]
    assert json.loads((tmp_path / "balanced" / "evaluation.json").read_text())["prior_correction"] == 1.0
    saved = np.load(tmp_path / "balanced" / "probabilities.npy")
    np.testing.assert_allclose(saved.sum(axis=1), 1.0, atol=1e-5)


# ------------------------------------------------------------------------------------ the commands
def test_predict_and_evaluate_take_the_option(models: dict[str, Path], media_dir: Path, data_dir: Path, tmp_path: Path,
                                              run_main: RunMain) -> None:
    photo = media_dir / "single_face.jpg"
    code, _, err = run_main(["predict", "--model", str(models["default"]), "--prior-correction", "1", str(photo),
                             "-o", str(tmp_path / "out")])
    assert code == 0, err
    (record,) = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    (face,) = Recognizer(model=models["default"], prior_correction=1.0).predict(photo).faces
    (plain,) = Recognizer(model=models["default"]).predict(photo).faces
    written = record["faces"][0]["probabilities"]
    written = [written[c] for c in face.class_names] if isinstance(written, dict) else written
    assert record["faces"][0]["label"] == face.label
    np.testing.assert_allclose(written, face.probabilities, atol=1e-4)
    assert np.abs(np.asarray(written) - plain.probabilities).max() > 0.01  # the option was not ignored
    code, _, err = run_main(["evaluate", "--model", str(models["ensemble"]), "--data", str(data_dir / "ckplus48"),
                             "--prior-correction", "0.5", "-o", str(tmp_path / "eval")])
    assert code == 0, err
    assert json.loads((tmp_path / "eval" / "evaluation.json").read_text())["prior_correction"] == 0.5


def test_a_card_without_a_prior_is_a_one_line_error(models: dict[str, Path], media_dir: Path, data_dir: Path,
                                                    tmp_path: Path, run_main: RunMain) -> None:
    bare = models["no_prior"]
    for argv in (["predict", "--model", str(bare), "--prior-correction", "1", str(media_dir / "single_face.jpg"),
                  "-o", str(tmp_path / "p")],
                 ["evaluate", "--model", str(bare), "--data", str(data_dir / "ckplus48"), "--prior-correction", "1",
                  "-o", str(tmp_path / "e")]):
        code, _, err = run_main(argv)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
        assert bare.name in lines[0] and "class_prior" in lines[0], lines[0]
    assert not (tmp_path / "e").exists()  # refused before any report was started
    code, _, err = run_main(["predict", "--model", str(bare), "--prior-correction", "2",
                             str(media_dir / "single_face.jpg"), "-o", str(tmp_path / "p2")])
    assert code == 2 and "--prior-correction" in err


def test_the_web_app_serves_corrected_probabilities(models: dict[str, Path], media_dir: Path,
                                                    tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from affectlens.serve.app import create_app

    photo = media_dir / "single_face.jpg"
    app = create_app(models["default"], extra_models=[], recognizer_options={"prior_correction": 1.0},
                     temp_root=tmp_path)
    with TestClient(app) as client:
        (info,) = client.get("/v1/models").json()["models"]
        assert info["prior_correction"] == 1.0
        answer = client.post("/v1/predict", files={"file": (photo.name, photo.read_bytes(), "image/jpeg")})
    assert answer.status_code == 200, answer.text
    (face,) = Recognizer(model=models["default"], prior_correction=1.0).predict(photo).faces
    served = answer.json()["faces"][0]["probabilities"]
    np.testing.assert_allclose([served[c] for c in face.class_names] if isinstance(served, dict) else served,
                               face.probabilities, atol=1e-5)
