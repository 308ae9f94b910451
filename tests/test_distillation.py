"""Knowledge distillation and probability ensembles, on real FER2013 faces and the shipped models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from affectlens.config_io import load_config
from affectlens.data.fer2013 import load_fer2013
from affectlens.data.preprocessing import Normalization
from affectlens.errors import AffectlensError
from affectlens.models.prediction import predict_probabilities
from affectlens.models.weights import build_ensemble, load_weights, save_weights
from affectlens.runtime.pretrained import resolve_model
from affectlens.training import runs
from affectlens.training.config import TrainConfig
from affectlens.training.distillation import Teacher, distillation_loss


def _config(data_dir: Path, out: Path, name: str, **extra: object) -> TrainConfig:
    overrides = {
        "data.path": str(data_dir / "fer2013"), "data.max_per_split": 160, "model.name": "fast_cnn",
        "epochs": 1, "batch_size": 32, "checkpoint_every_steps": 0, "optim.lr": 0.01, "scheduler.name": "cosine",
        "output_dir": str(out), "run_name": name, "threads": 1, "ten_crop": False, **extra,
    }
    return load_config(TrainConfig, None, [f"{k}={v}" for k, v in overrides.items()])


def test_distillation_loss_is_zero_only_when_student_matches_teacher() -> None:
    logits = torch.randn(8, 7)
    teacher = torch.softmax(logits / 4.0, dim=1)
    assert float(distillation_loss(logits, teacher, 4.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(distillation_loss(torch.randn(8, 7), teacher, 4.0)) > 1e-3


def test_teacher_averages_its_members_softened_probabilities() -> None:
    model, card = load_weights(resolve_model("fast"))
    other, _ = load_weights(resolve_model("default"))
    norm = Normalization.from_dict(card.normalization)
    x = torch.rand(4, 1, 40, 40)
    teacher = Teacher([model, other], [norm, norm], list(card.class_names), [40, 40])
    with torch.no_grad():
        expected = (torch.softmax(model(x) / 2.0, 1) + torch.softmax(other(x) / 2.0, 1)) / 2
    torch.testing.assert_close(teacher(x, 2.0), expected)
    teacher.train()
    assert not teacher.training  # dropout and batch-norm statistics stay frozen


def test_mirrored_teacher_averages_each_member_over_the_face_and_its_mirror(data_dir: Path) -> None:
    faces = load_fer2013(data_dir / "fer2013").select_splits("PrivateTest").images[:16]
    x = torch.from_numpy(faces[:, 4:44, 4:44, :]).permute(0, 3, 1, 2).float() / 255.0
    model, card = load_weights(resolve_model("fast"))
    norm = Normalization.from_dict(card.normalization)
    plain = Teacher([model], [norm], list(card.class_names), [40])
    mirrored = Teacher([model], [norm], list(card.class_names), [40], mirror=True)
    expected = (plain(x, 4.0) + plain(x.flip(-1), 4.0)) / 2
    torch.testing.assert_close(mirrored(x, 4.0), expected)
    torch.testing.assert_close(mirrored(x.flip(-1), 4.0), mirrored(x, 4.0))  # flip-invariant targets
    assert not torch.allclose(plain(x, 4.0), plain(x.flip(-1), 4.0), atol=1e-3)  # which plain is not


def test_training_with_a_teacher_changes_the_loss_and_refuses_other_classes(data_dir: Path, tmp_path: Path) -> None:
    plain = runs.train(_config(data_dir, tmp_path, "plain"))
    taught = runs.train(_config(data_dir, tmp_path, "taught", **{"distill.teacher": "[default]", "distill.alpha": 0.9}))
    mirrored = runs.train(_config(data_dir, tmp_path, "mirrored", **{"distill.teacher": "[default]",
                                                                     "distill.alpha": 0.9, "distill.mirror": True}))
    plain_row = json.loads((Path(plain["run_dir"]) / "metrics.json").read_text())[0]
    taught_row = json.loads((Path(taught["run_dir"]) / "metrics.json").read_text())[0]
    mirrored_row = json.loads((Path(mirrored["run_dir"]) / "metrics.json").read_text())[0]
    assert plain_row["train_loss"] != pytest.approx(taught_row["train_loss"], rel=1e-3)
    assert mirrored_row["train_loss"] != pytest.approx(taught_row["train_loss"], rel=1e-4)  # the option arrives
    with pytest.raises(AffectlensError, match="teacher classes"):
        runs.train(_config(data_dir, tmp_path, "wrong", **{"distill.teacher": "[ferplus]"}))


def test_ensemble_is_the_mean_of_its_members_and_survives_saving(data_dir: Path, tmp_path: Path) -> None:
    faces = load_fer2013(data_dir / "fer2013").select_splits("PrivateTest")
    subset = faces.images[:64]
    model, card = build_ensemble(["default", "fast"])
    norm = Normalization.from_dict(card.normalization)
    members = [load_weights(resolve_model(name)) for name in ("default", "fast")]
    expected = np.mean([predict_probabilities(m, subset, norm, card.input_size, mirror=c.mirror)  # as each answers
                        for m, c in members], axis=0)
    got = predict_probabilities(model, subset, norm, card.input_size)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    path = save_weights(model, card, tmp_path / "ensemble.safetensors")
    reloaded, reloaded_card = load_weights(path)
    assert reloaded_card.architecture == "ensemble"
    np.testing.assert_allclose(predict_probabilities(reloaded, subset, norm, card.input_size), got, atol=1e-6)
    with pytest.raises(AffectlensError, match="differs"):
        build_ensemble(["default", "ferplus"])
