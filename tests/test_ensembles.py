"""Ensembles by reference: a card naming trained models, usable wherever a model is.

Built in tmp_path from the two shipped FER2013 models (``default``, ``fast``) and real FER2013,
CK+ and photo inputs; the shipped table is copied into tmp_path (weights linked, not copied) when
a test needs an ensemble entry in it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch

from affectlens.data.fer2013 import load_fer2013
from affectlens.data.registry import load_dataset
from affectlens.errors import AffectlensError
from affectlens.evaluation.runner import align_classes, ensemble_probabilities
from affectlens.inference.recognizer import Recognizer
from affectlens.models.ensemble import ProbabilityEnsemble
from affectlens.models.weights import load_weights
from affectlens.runtime import pretrained
from affectlens.runtime.card import read_card
from affectlens.runtime.classifiers import EnsembleClassifier
from affectlens.runtime.ensemble_card import (
    COMBINATION,
    ENSEMBLE_FORMAT,
    MIRROR_COMBINATION,
    load_ensemble,
    write_ensemble_card,
)
from affectlens.runtime.factory import create_classifier
from affectlens.runtime.resolve import verify_pretrained
from affectlens.serve.engine import Engine
from affectlens.training.distillation import Teacher

if TYPE_CHECKING:
    from conftest import RunMain

WEIGHTS = [3.0, 1.0]  # unequal, so a plain mean would not pass


@pytest.fixture(scope="module")
def faces(data_dir: Path) -> np.ndarray:
    return load_fer2013(data_dir / "fer2013").select_splits("PrivateTest").images[:48]


@pytest.fixture
def card(tmp_path: Path) -> Path:
    return write_ensemble_card(["default", "fast"], WEIGHTS, tmp_path / "pair.json")


def weighted_mean(parts: list[np.ndarray]) -> np.ndarray:
    return (WEIGHTS[0] * parts[0] + WEIGHTS[1] * parts[1]) / sum(WEIGHTS)


def member_probs(faces: np.ndarray, backend: str, ten_crop: bool = False) -> np.ndarray:
    """The members' mean as an ensemble takes it: each member as trained (the ensemble has its own temperature)."""
    return weighted_mean([create_classifier(pretrained.resolve_model(name), backend=backend, ten_crop=ten_crop,
                                            calibrate=False).predict(faces) for name in ("default", "fast")])


def assert_one_line(code: int, err: str, *fragments: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert all(f in lines[0] for f in fragments), lines[0]


# --------------------------------------------------------------------------- the card and its maths
def test_card_names_members_and_weights_and_holds_no_weights(card: Path) -> None:
    raw = json.loads(card.read_text())
    assert raw["format"] == ENSEMBLE_FORMAT and raw["architecture"] == "ensemble"
    assert raw["model_options"] == {"members": ["default", "fast"], "member_weights": [0.75, 0.25],
                                    "combination": COMBINATION}
    assert sorted(p.name for p in card.parent.iterdir()) == ["pair.json"]  # no weights copied
    ensemble = load_ensemble(card)
    assert [m.path for m in ensemble.members] == [pretrained.resolve_model("default"), pretrained.resolve_model("fast")]
    assert ensemble.card.class_names == read_card(pretrained.resolve_model("default")).class_names


@pytest.mark.parametrize(("backend", "ten_crop"), [("onnx", False), ("onnx", True), ("torch", False)])
def test_probabilities_are_the_weighted_mean_of_the_members(card: Path, faces: np.ndarray, backend: str,
                                                            ten_crop: bool) -> None:
    classifier = create_classifier(card, backend=backend, ten_crop=ten_crop)
    assert isinstance(classifier, EnsembleClassifier) and classifier.backend == backend
    got = classifier.predict(faces)
    np.testing.assert_allclose(got, member_probs(faces, backend, ten_crop), atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_torch_paths_agree_one_module_and_member_by_member(card: Path, faces: np.ndarray) -> None:
    expected = member_probs(faces, "torch")
    np.testing.assert_allclose(ensemble_probabilities(card, faces), expected, atol=1e-6)
    model, single = load_weights(card)  # the one-module form: for export or as a teacher
    assert isinstance(model, ProbabilityEnsemble) and single.architecture == "ensemble"
    with torch.no_grad():
        x = torch.from_numpy(faces[:, 4:44, 4:44, :].transpose(0, 3, 1, 2).astype(np.float32) / 255)
        np.testing.assert_allclose(torch.exp(model(x)).numpy(), expected, atol=1e-5)


# --------------------------------------------------------------------------- mirror (test-time flip)
@pytest.fixture
def mirror_card(tmp_path: Path) -> Path:
    return write_ensemble_card(["default", "fast"], WEIGHTS, tmp_path / "mirror.json", mirror=True)


def mirrored_member_probs(faces: np.ndarray, backend: str) -> np.ndarray:
    """What a mirror card must answer: each member's mean over the face and its left-right mirror image."""
    flipped = np.ascontiguousarray(faces[:, :, ::-1])
    return (member_probs(faces, backend) + member_probs(flipped, backend)) / 2


def test_mirror_card_says_so_and_loads(mirror_card: Path) -> None:
    raw = json.loads(mirror_card.read_text())
    assert raw["model_options"]["mirror"] is True and raw["model_options"]["combination"] == MIRROR_COMBINATION
    assert load_ensemble(mirror_card).mirror


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_mirror_card_averages_each_member_over_the_face_and_its_mirror(mirror_card: Path, faces: np.ndarray,
                                                                      backend: str) -> None:
    got = create_classifier(mirror_card, backend=backend).predict(faces)
    expected = mirrored_member_probs(faces, backend)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert np.abs(got - member_probs(faces, backend)).max() > 1e-3  # the mirror changed the answer


def test_mirror_card_evaluation_and_one_module_agree(mirror_card: Path, faces: np.ndarray) -> None:
    expected = mirrored_member_probs(faces, "torch")
    np.testing.assert_allclose(ensemble_probabilities(mirror_card, faces), expected, atol=1e-6)
    model, single = load_weights(mirror_card)  # the one-module form (export) mirrors inside the graph
    assert single.model_options["mirror"] is True
    with torch.no_grad():
        x = torch.from_numpy(faces[:, 4:44, 4:44, :].transpose(0, 3, 1, 2).astype(np.float32) / 255)
        np.testing.assert_allclose(torch.exp(model(x)).numpy(), expected, atol=1e-5)


def test_mirror_card_exports_to_one_onnx_graph_that_answers_the_same(mirror_card: Path, faces: np.ndarray,
                                                                     tmp_path: Path) -> None:
    from affectlens.inference.export import export_onnx

    graph = tmp_path / "exported" / "ensemble.onnx"
    export_onnx(mirror_card, graph)
    np.testing.assert_allclose(create_classifier(graph).predict(faces), mirrored_member_probs(faces, "onnx"),
                               atol=1e-5)


def test_ten_crop_already_holds_the_mirrored_views(mirror_card: Path, card: Path, faces: np.ndarray) -> None:
    np.testing.assert_allclose(create_classifier(mirror_card, ten_crop=True).predict(faces),
                               create_classifier(card, ten_crop=True).predict(faces), atol=1e-7)


def test_a_mirror_value_that_is_not_a_bool_is_refused(mirror_card: Path) -> None:
    raw = json.loads(mirror_card.read_text())
    raw["model_options"]["mirror"] = "yes"
    mirror_card.write_text(json.dumps(raw))
    with pytest.raises(AffectlensError, match="mirror must be true or false"):
        load_ensemble(mirror_card)


def test_members_may_differ_in_input_size(tmp_path: Path, faces: np.ndarray) -> None:
    """A member that sees the whole 48 px face beside one that sees the 40 px centre crop."""
    source = pretrained.resolve_model("default")
    member = tmp_path / "vgg48.safetensors"
    shutil.copyfile(source, member)
    raw = json.loads(source.with_suffix(".json").read_text())
    member.with_suffix(".json").write_text(json.dumps({**raw, "input_size": 48, "extra": {}}))
    card = write_ensemble_card([member, "fast"], WEIGHTS, tmp_path / "mixed.json")
    assert load_ensemble(card).members[0].spec == "vgg48.safetensors"  # written relative to the card
    expected = weighted_mean([create_classifier(member, calibrate=False).predict(faces),
                              create_classifier(pretrained.resolve_model("fast"), calibrate=False).predict(faces)])
    np.testing.assert_allclose(create_classifier(card).predict(faces), expected, atol=1e-6)
    np.testing.assert_allclose(ensemble_probabilities(card, faces), expected, atol=1e-5)
    with pytest.raises(AffectlensError, match="cannot be one torch module.*input_size"):
        load_weights(card)


def test_a_teacher_given_an_ensemble_card_uses_its_members_and_weights(card: Path) -> None:
    teacher = Teacher.from_specs([str(card)])
    assert teacher.member_weights == pytest.approx([0.75, 0.25])
    x = torch.rand(4, 1, 40, 40)
    members = [load_weights(pretrained.resolve_model(name))[0] for name in ("default", "fast")]
    with torch.no_grad():
        expected = weighted_mean([torch.softmax(m(x) / 2.0, 1).numpy() for m in members])
    np.testing.assert_allclose(teacher(x, 2.0).numpy(), expected, atol=1e-6)


# ------------------------------------------------------------------------------------ bad cards
def test_class_name_mismatch_is_a_one_line_error(tmp_path: Path, media_dir: Path, run_main: RunMain) -> None:
    with pytest.raises(AffectlensError, match="member 'ferplus' has class_names") as info:
        write_ensemble_card(["default", "ferplus"], None, tmp_path / "bad.json")
    assert "\n" not in str(info.value)
    # a card edited by hand is checked when it is loaded, by every command
    card = write_ensemble_card(["default", "fast"], None, tmp_path / "edited.json")
    raw = json.loads(card.read_text())
    raw["model_options"]["members"] = ["default", "ferplus"]
    card.write_text(json.dumps(raw))
    photo = media_dir / "single_face.jpg"
    code, _, err = run_main(["predict", "--model", str(card), "-o", str(tmp_path / "out"), str(photo)])
    assert_one_line(code, err, str(card), "'ferplus'", "class_names")


def test_a_missing_member_file_is_a_one_line_error(tmp_path: Path, data_dir: Path, run_main: RunMain) -> None:
    source = pretrained.resolve_model("fast")
    for suffix in (".safetensors", ".json"):
        shutil.copyfile(source.with_suffix(suffix), tmp_path / f"member{suffix}")
    card = write_ensemble_card(["default", tmp_path / "member.safetensors"], None, tmp_path / "ens.json")
    (tmp_path / "member.safetensors").unlink()
    with pytest.raises(AffectlensError, match="member 'member.safetensors' cannot be loaded"):
        create_classifier(card)
    code, _, err = run_main(["evaluate", "--model", str(card), "--data", str(data_dir / "ckplus48"),
                             "-o", str(tmp_path / "report")])
    assert_one_line(code, err, str(card), "member.safetensors")
    assert not (tmp_path / "report" / "report.md").exists()


# ------------------------------------------------------------------------ commands and the API
def test_evaluate_command_scores_the_weighted_mean(card: Path, tmp_path: Path, data_dir: Path,
                                                   run_main: RunMain) -> None:
    out = tmp_path / "report"
    code, stdout, err = run_main(["evaluate", "--model", str(card), "--data", str(data_dir / "ckplus48"),
                                  "-o", str(out), "--device", "cpu"])
    assert code == 0, err
    assert "acc=" in stdout
    assert json.loads((out / "evaluation.json").read_text())["architecture"] == "ensemble"
    ck = align_classes(load_dataset("ckplus", data_dir / "ckplus48"), read_card(card).class_names)  # no contempt
    expected = member_probs(ck.images, "torch")
    np.testing.assert_allclose(np.load(out / "probabilities.npy"), expected, atol=1e-5)


def test_predict_command_and_python_api(card: Path, tmp_path: Path, media_dir: Path, run_main: RunMain) -> None:
    photo = media_dir / "single_face.jpg"
    code, _, err = run_main(["predict", "--model", str(card), str(photo), "-o", str(tmp_path / "out")])
    assert code == 0, err
    (record,) = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    recognizer = Recognizer(model=card)
    (face,) = recognizer.predict(photo).faces
    assert record["faces"][0]["label"] == face.label
    members = [Recognizer(model=name, detector=recognizer.detector, calibrate=False).predict(photo)
               .faces[0].probabilities for name in ("default", "fast")]
    np.testing.assert_allclose(face.probabilities, weighted_mean(members), atol=1e-6)
    engine = Engine(model=card, detector=recognizer.detector, extra_models=[])
    assert engine.describe()[0]["architecture"] == "ensemble"


# ------------------------------------------------------------------------ a shipped ensemble entry
@pytest.fixture
def table_with_ensemble(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped table copied into tmp_path (files linked) plus an ``ensemble`` entry as ship_model writes it."""
    folder = tmp_path / "weights"
    folder.mkdir()
    for path in pretrained.WEIGHTS_DIR.iterdir():
        # large weights are linked; JSON cards and the table are copied, so writing them here
        # (as this fixture and the test below do) never writes through into the installed package
        if path.suffix == ".json":
            shutil.copyfile(path, folder / path.name)
        else:
            (folder / path.name).symlink_to(path)
    table = json.loads(pretrained.TABLE_FILE.read_text())
    names = [pretrained.find_shipped(alias) for alias in ("default", "fast")]
    monkeypatch.setattr(pretrained, "TABLE_FILE", folder / pretrained.TABLE_FILE.name)
    card = write_ensemble_card(names, WEIGHTS, folder / "fer2013_ensemble.json")
    raw = json.loads(card.read_text())
    table["models"]["ensemble.fer2013"] = {
        **{k: raw[k] for k in ("architecture", "class_names", "in_channels", "image_size", "input_size",
                               "normalization", "description", "task", "training_data", "licence", "metrics")},
        "tag": "fer2013", "aliases": ["ensemble"], "files": {"card": card.name},
        "sha256": {"card": pretrained.file_sha256(card)}, "members": names, "member_weights": [0.75, 0.25],
        "combination": COMBINATION,
    }
    pretrained.TABLE_FILE.write_text(json.dumps(table))
    return card


def test_a_shipped_ensemble_resolves_verifies_and_is_listed(table_with_ensemble: Path, faces: np.ndarray,
                                                            run_main: RunMain) -> None:
    card = table_with_ensemble
    assert pretrained.resolve_model("ensemble") == card
    assert pretrained.resolve_model("ensemble.fer2013") == card == pretrained.resolve_model("fer2013_ensemble")
    assert pretrained.pretrained_entry("ensemble")["members"] == ["vgg_fer_small.fer2013", "fast_cnn.fer2013"]
    verify_pretrained("ensemble")
    row = next(r for r in pretrained.list_pretrained() if r["name"] == "ensemble.fer2013")
    assert row["path"] == str(card)
    np.testing.assert_allclose(Recognizer(model="ensemble").classifier.predict(faces),
                               member_probs(faces, "onnx"), atol=1e-6)
    code, out, err = run_main(["models"])
    assert code == 0, err
    assert "ensemble.fer2013" in out and "0.75 x vgg_fer_small.fer2013 + 0.25 x fast_cnn.fer2013" in out
    card.write_text(card.read_text().replace("0.75", "0.7"))  # a changed card no longer matches its sha256
    with pytest.raises(AffectlensError, match="sha256 differs"):
        verify_pretrained("ensemble")


def test_models_ensemble_writes_a_card_that_predicts_the_weighted_mean(tmp_path: Path, faces: np.ndarray,
                                                                       run_main: RunMain) -> None:
    card = tmp_path / "mine.json"
    code, out, err = run_main(["models", "ensemble", "vgg_fer_small.fer2013", "fast_cnn.fer2013",
                               "-w", str(WEIGHTS[0]), "-w", str(WEIGHTS[1]), "-o", str(card)])
    assert code == 0, err
    assert str(card) in out and load_ensemble(card).weights == pytest.approx([0.75, 0.25])
    np.testing.assert_allclose(create_classifier(card, calibrate=False).predict(faces), member_probs(faces, "onnx"),
                               atol=1e-6)
    # an existing card is kept without --exist-ok; members of other classes are refused, nothing written
    code, _, err = run_main(["models", "ensemble", "default", "fast", "-o", str(card)])
    assert code == 2 and "already exists" in err and "--exist-ok" in err
    code, _, err = run_main(["models", "ensemble", "default", "ferplus", "-o", str(tmp_path / "bad.json")])
    assert code == 2 and "must match" in err and not (tmp_path / "bad.json").exists()
    code, _, err = run_main(["models", "ensemble", "default", "fast", "-w", "1", "-o", str(tmp_path / "w.json")])
    assert code == 2 and "weights" in err and not (tmp_path / "w.json").exists()
