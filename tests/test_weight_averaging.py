"""Stochastic weight averaging in the training loop, on real FER2013 rows.

With a constant learning rate, a run of 2 epochs is the first 2 epochs of a run of 3, so a
3-epoch run averaging from epoch 2 must ship exactly the mean of those two runs' weights, with
BatchNorm statistics measured for the averaged weights, and must train the very same raw
weights as a run without averaging. A kill in the averaged phase resumes to the same average.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from affectlens.config_io import load_config
from affectlens.data.preprocessing import Normalization
from affectlens.errors import AffectlensError
from affectlens.models.prediction.head import predict_probabilities
from affectlens.models.weights import load_weights
from affectlens.training import loop
from affectlens.training import runs as training_runs
from affectlens.training.config import TrainConfig


def config(data_dir: Path, out: Path, name: str, epochs: int, **extra: object) -> TrainConfig:
    overrides = {
        "data.path": str(data_dir / "fer2013"), "data.max_per_split": 200, "model.name": "fast_cnn",
        "augment.crop_size": 40, "epochs": epochs, "batch_size": 40, "checkpoint_every_steps": 2,
        "optim.lr": 0.02, "scheduler.name": "constant", "output_dir": str(out), "run_name": name, "threads": 1,
        "data.test_split": "null", **extra,
    }
    return load_config(TrainConfig, None, [f"{k}={v}" for k, v in overrides.items()])


def is_batchnorm_statistic(key: str) -> bool:
    return key.endswith(("running_mean", "running_var", "num_batches_tracked"))


@pytest.fixture(scope="module")
def runs(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("swa")
    training_runs.train(config(data_dir, out, "plain2", 2))
    training_runs.train(config(data_dir, out, "plain3", 3))
    training_runs.train(config(data_dir, out, "swa", 3, **{"swa.start_epoch": 2}))
    return out


def test_the_shipped_weights_are_the_mean_of_the_averaged_epochs(runs: Path) -> None:
    two, three = (load_file(str(runs / name / "last.safetensors")) for name in ("plain2", "plain3"))
    averaged = load_file(str(runs / "swa" / "last.safetensors"))
    assert averaged.keys() == three.keys()
    statistics = [key for key in averaged if is_batchnorm_statistic(key) and "running" in key]
    assert statistics, "fast_cnn has BatchNorm: the test must cover the recomputed statistics"
    for key in averaged:
        if is_batchnorm_statistic(key):
            continue
        torch.testing.assert_close(averaged[key], (two[key] + three[key]) / 2, rtol=1e-5, atol=1e-6, msg=key)
    # statistics were measured for the averaged weights, not copied from either run
    assert all(not torch.allclose(averaged[key], three[key]) for key in statistics)

    # averaging observes training without disturbing it: the raw weights equal the plain run's
    raw = torch.load(runs / "swa" / "checkpoint.pt", weights_only=True)["model"]
    plain = torch.load(runs / "plain3" / "checkpoint.pt", weights_only=True)["model"]
    for key in plain:
        torch.testing.assert_close(raw[key], plain[key], rtol=1e-5, atol=1e-6, msg=key)


def test_validation_selection_and_card_describe_the_averaged_network(runs: Path, data_dir: Path) -> None:
    history = json.loads((runs / "swa" / "metrics.json").read_text())
    assert [row.get("epochs_averaged") for row in history] == [None, 1, 2]
    card = json.loads((runs / "swa" / "last.json").read_text())
    assert card["extra"]["weight_averaging"] == {"method": "swa", "start_epoch": 2, "epochs_averaged": 2, "lr": None}

    # the epoch-3 validation accuracy is the accuracy of the saved averaged weights
    trainer = training_runs.make_trainer(config(data_dir, runs, "probe", 3), runs / "probe")
    model, saved = load_weights(runs / "swa" / "last.safetensors")
    probs = predict_probabilities(model, trainer.data.val, Normalization.from_dict(saved.normalization), 40)
    labels = trainer.data.val.labels
    assert float((probs.argmax(1) == labels).mean()) == pytest.approx(history[-1]["val_accuracy"], abs=1e-9)


def test_a_run_killed_while_averaging_resumes_to_the_same_average(runs: Path, data_dir: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    original_save = loop.Trainer.save_checkpoint

    def save_then_die(self: loop.Trainer) -> None:
        original_save(self)
        if self.epoch == 2 and self.step_in_epoch == 2:
            raise KeyboardInterrupt  # mid-epoch 3, after epoch 2 joined the average

    monkeypatch.setattr(loop.Trainer, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        training_runs.train(config(data_dir, runs, "killed", 3, **{"swa.start_epoch": 2}))
    monkeypatch.setattr(loop.Trainer, "save_checkpoint", original_save)
    assert torch.load(runs / "killed" / "checkpoint.pt", weights_only=True)["swa"]["averaged"]["n_averaged"] == 1

    training_runs.resume(runs / "killed")
    a = load_file(str(runs / "swa" / "last.safetensors"))
    b = load_file(str(runs / "killed" / "last.safetensors"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


def test_a_constant_averaging_lr_replaces_the_schedule_and_sequences_refuse_averaging(
        data_dir: Path, tmp_path: Path) -> None:
    training_runs.train(config(data_dir, tmp_path, "held", 2, **{"swa.start_epoch": 2, "swa.lr": 0.005,
                                                        "scheduler.name": "cosine"}))
    history = json.loads((tmp_path / "held" / "metrics.json").read_text())
    assert history[0]["lr"] != 0.005 and history[1]["lr"] == pytest.approx(0.005)
    with pytest.raises(AffectlensError, match="swa.start_epoch"):
        training_runs.train(config(data_dir, tmp_path, "va", 1, task="va", select_metric="val_ccc",
                                   **{"swa.start_epoch": 1}))
