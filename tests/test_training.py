"""Training end to end on a small FER2013 slice: train, evaluate, resume after a kill, fine-tune."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from affectlens.config_io import load_config
from affectlens.errors import AffectlensError
from affectlens.training import loop, runs
from affectlens.training.config import TrainConfig


def small_config(data_dir: Path, out: Path, name: str, **extra: str) -> TrainConfig:
    overrides = {
        "data.path": str(data_dir / "fer2013"), "data.max_per_split": 280, "model.name": "baseline_cnn",
        "augment.crop_size": 40, "epochs": 2, "batch_size": 32, "checkpoint_every_steps": 3,
        "optim.lr": 0.01, "scheduler.name": "cosine", "output_dir": str(out), "run_name": name, "threads": 1,
        **extra,
    }
    return load_config(TrainConfig, None, [f"{k}={v}" for k, v in overrides.items()])


def test_train_then_evaluate_writes_the_run_folder(data_dir: Path, tmp_path: Path) -> None:
    summary = runs.train(small_config(data_dir, tmp_path, "run"))
    run = tmp_path / "run"
    for name in ("config.yaml", "metrics.csv", "metrics.json", "curves.png", "checkpoint.pt", "best.safetensors",
                 "best.json", "last.safetensors", "summary.json", "eval_PrivateTest/report.md",
                 "eval_PrivateTest/confusion_matrix.png", "eval_PrivateTest_tencrop/metrics.json"):
        assert (run / name).exists(), name
    history = json.loads((run / "metrics.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    assert {"train_loss", "val_accuracy", "val_macro_f1", "val_recall_Disgust", "lr"} <= set(history[0])
    card = json.loads((run / "best.json").read_text())
    assert card["class_names"][1] == "Disgust" and card["input_size"] == 40 and card["licence"]
    prior = card["class_prior"]  # the Training slice's class frequencies, for prior correction
    assert len(prior) == 7 and sum(prior) == pytest.approx(1.0, abs=1e-5) and 0 < prior[1] < prior[3]
    assert 0 <= summary["test_accuracy"] <= 1 and "test_accuracy_tencrop" in summary


@pytest.mark.slow
def test_resume_after_kill_matches_an_uninterrupted_run(data_dir: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    reference = runs.train(small_config(data_dir, tmp_path, "reference"))
    assert reference["epochs"] == 2

    original_save = loop.Trainer.save_checkpoint

    def save_then_die(self: loop.Trainer) -> None:
        original_save(self)
        if self.epoch == 1 and self.step_in_epoch == 6:
            raise KeyboardInterrupt  # killed mid-epoch 2, just after a step checkpoint

    monkeypatch.setattr(loop.Trainer, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        runs.train(small_config(data_dir, tmp_path, "killed"))
    monkeypatch.setattr(loop.Trainer, "save_checkpoint", original_save)
    state = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)
    assert (state["epoch"], state["step_in_epoch"]) == (1, 6)

    resumed = runs.resume(tmp_path / "killed")
    assert resumed["epochs"] == 2
    a = load_file(str(tmp_path / "reference" / "last.safetensors"))
    b = load_file(str(tmp_path / "killed" / "last.safetensors"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


@pytest.mark.slow
def test_finetune_on_train_plus_val(data_dir: Path, tmp_path: Path) -> None:
    runs.train(small_config(data_dir, tmp_path, "base", epochs=1))
    summary = runs.finetune(tmp_path / "base", epochs=1, lr=1e-3)
    run = Path(summary["run_dir"])
    cfg = load_config(TrainConfig, run / "config.yaml")
    assert cfg.data.train_splits == ["Training", "PublicTest"] and cfg.data.val_split is None
    assert cfg.scheduler.name == "cosine" and cfg.init_weights.endswith("best.safetensors")


@pytest.mark.parametrize("optimizer", ["sgd", "sgd_nesterov", "asgd", "adam", "adamw", "amsgrad", "adadelta",
                                       "adagrad"])
def test_every_optimizer_builds_and_steps(optimizer: str) -> None:
    from affectlens.training.config import OptimConfig
    from affectlens.training.optim import build_optimizer

    param = torch.nn.Parameter(torch.ones(3))
    opt = build_optimizer([param], OptimConfig(name=optimizer, lr=0.1))
    (param**2).sum().backward()
    opt.step()
    assert not torch.equal(param.detach(), torch.ones(3))


@pytest.mark.parametrize("scheduler", ["onecycle", "cosine"])
def test_resuming_with_more_epochs_follows_the_longer_schedule(scheduler: str) -> None:
    """``train --resume RUN --epochs N``: the schedule takes the new length from where the run stopped
    (one-cycle used to keep its old length and raise past its end)."""
    from affectlens.training.config import SchedulerConfig
    from affectlens.training.schedulers import LRSchedule

    def schedule(epochs: int) -> tuple[torch.optim.SGD, LRSchedule]:
        opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
        return opt, LRSchedule(opt, SchedulerConfig(name=scheduler, max_lr=0.5), epochs=epochs, steps_per_epoch=5,
                               base_lr=0.1)

    def run(opt: torch.optim.SGD, sched: LRSchedule, epochs: int) -> None:
        for _ in range(epochs):
            for _ in range(5):
                opt.step()
                sched.after_batch()
            sched.after_epoch(None)

    short_opt, short = schedule(4)
    run(short_opt, short, 2)
    long_opt, longer = schedule(8)
    longer.load_state_dict(short.state_dict())
    long_opt.param_groups[0]["lr"] = short_opt.param_groups[0]["lr"]
    reference_opt, reference = schedule(8)
    run(reference_opt, reference, 2)
    resumed_lrs, reference_lrs = [], []
    for _ in range(6):  # past the old end without an error
        run(long_opt, longer, 1)
        run(reference_opt, reference, 1)
        resumed_lrs.append(long_opt.param_groups[0]["lr"])
        reference_lrs.append(reference_opt.param_groups[0]["lr"])
    if scheduler == "onecycle":  # the whole rest of the curve is the 8-epoch one
        assert resumed_lrs == pytest.approx(reference_lrs, rel=1e-9)
    else:  # cosine re-times the rest of its curve from where it was: same end, no bounce back up
        assert resumed_lrs[-1] == pytest.approx(reference_lrs[-1], abs=1e-9)
        assert resumed_lrs == sorted(resumed_lrs, reverse=True)
    assert resumed_lrs[-1] < 0.01


@pytest.mark.parametrize("scheduler", ["plateau", "cosine", "cosine_restarts", "onecycle", "step"])
def test_every_scheduler_changes_the_lr(scheduler: str) -> None:
    from affectlens.training.config import SchedulerConfig
    from affectlens.training.schedulers import LRSchedule

    param = torch.nn.Parameter(torch.ones(1))
    opt = torch.optim.SGD([param], lr=0.1)
    schedule = LRSchedule(opt, SchedulerConfig(name=scheduler, patience=0, step_size=1, restart_period=3),
                          epochs=4, steps_per_epoch=5, base_lr=0.1)
    seen = set()
    for _ in range(4):
        for _ in range(5):
            opt.step()
            schedule.after_batch()
        schedule.after_epoch(0.5)
        seen.add(round(opt.param_groups[0]["lr"], 8))
    assert len(seen) > 1


def test_bad_names_are_one_line_errors(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(AffectlensError, match="unknown optimizer 'adamm'.*valid names"):
        runs.train(small_config(data_dir, tmp_path, "x1", **{"optim.name": "adamm"}))
    with pytest.raises(AffectlensError, match="unknown model 'vgg99'"):
        runs.train(small_config(data_dir, tmp_path, "x2", **{"model.name": "vgg99"}))
    with pytest.raises(AffectlensError, match="does not exist"):
        runs.train(small_config(data_dir, tmp_path, "x3", **{"data.path": str(tmp_path / "missing")}))


def test_train_on_a_class_per_folder_tree(data_dir: Path, tmp_path: Path) -> None:
    """CK+ faces written as root/<class>/<file>.png, no split folders: 20% is held out for validation."""
    import numpy as np
    from PIL import Image

    raw = np.load(data_dir / "ckplus48" / "ckplus48.npz")
    root = tmp_path / "ck_folder"
    for i in range(0, len(raw["images"]), 6):
        cls = str(raw["class_names"][raw["labels"][i]])
        (root / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(raw["images"][i]).save(root / cls / f"{i}.png")
    cfg = small_config(data_dir, tmp_path, "folder", **{"data.kind": "folder", "data.path": str(root),
                                                         "data.val_fraction": 0.2, "data.max_per_split": 0,
                                                         "epochs": 1})
    summary = runs.train(cfg)
    card = json.loads((tmp_path / "folder" / "best.json").read_text())
    assert card["class_names"] == sorted(str(c) for c in raw["class_names"])
    assert summary["epochs"] == 1 and "test_accuracy" not in summary


@pytest.mark.slow
def test_evaluate_command_on_a_run(data_dir: Path, tmp_path: Path) -> None:
    """`affectlens evaluate RUN` reports on the full test split of the run's dataset."""
    from click.testing import CliRunner

    from affectlens.cli import cli

    runs.train(small_config(data_dir, tmp_path, "evalrun", epochs=1))
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["evaluate", "--model", str(tmp_path / "evalrun"), "--ten-crop", "--out",
                                      str(out)])
    assert result.exit_code == 0, result.output
    assert "macro-F1" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 3589 and len(metrics["per_class"]) == 7 and "majority_baseline" in metrics
    for name in ("report.md", "confusion_matrix.png", "confusion_matrix_normalized.png", "roc.png"):
        assert (out / name).exists(), name
