"""The command line: one grammar in every command, one-line errors.

Most rows run in-process through :func:`affectlens.cli.main` (the console entry point, so its
error handling is what is tested); the entry points themselves (``python -m affectlens``,
``python -m affectlens.cli``) run as real subprocesses.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

from affectlens.cli import COMMANDS
from affectlens.runtime.pretrained import list_pretrained, pretrained_file

if TYPE_CHECKING:
    from conftest import RunCliSubprocess, RunMain

WARNING = "affectlens: warning: "
ERROR = "affectlens: error: "


def stderr_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = stderr_lines(err)
    assert len(lines) == 1, err
    assert lines[0].startswith(ERROR), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ---------------------------------------------------------------------------------- entry points
def test_help_lists_every_command(run_cli_subprocess: RunCliSubprocess) -> None:
    result = run_cli_subprocess("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert re.search(rf"^\s+{command.name}\s", result.stdout, re.MULTILINE), command.name
    assert {c.name for c in COMMANDS} >= {"train", "finetune", "evaluate", "models", "predict", "camera", "export",
                                          "inspect", "split", "serve"}


def test_python_dash_m_affectlens_predicts_five_faces(media_dir: Path, tmp_path: Path,
                                                     run_cli_subprocess: RunCliSubprocess) -> None:
    """``python -m affectlens predict`` on the five-face photo: records, table summary, annotated image."""
    out = tmp_path / "out"
    result = run_cli_subprocess("predict", media_dir / "multi_face.jpg", "-o", out, module="affectlens")
    assert result.returncode == 0, result.stderr
    assert "1 of 1 inputs processed (1 images, 0 videos, 0 frames, 5 faces)" in result.stdout
    (record,) = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(record["faces"]) == 5
    assert (out / "multi_face.annotated.jpg").stat().st_size > 0


# ------------------------------------------------------------------------------ one-line errors
@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["train", "--data", "/nonexistent/fer", "--epochs", "1"], ["/nonexistent/fer", "does not exist"]),
        (["train", "--epochs", "1"], ["data.path is not set", "--data"]),  # no dataset beside the checkout
        (["train", "--arch", "vgg99"], ["unknown model 'vgg99'", "vgg_fer"]),
        (["train", "--model", "vgg99"], ["'vgg99'", "--arch"]),
        (["train", "--model", "fast_cnn"], ["'fast_cnn'", "--arch"]),  # an architecture is --arch, not weights
        (["train", "--set", "optim.name=rmsprop"], ["optim.name", "rmsprop", "sgd_nesterov"]),
        (["train", "--set", "optimiser.lr=1"], ["optimiser"]),
        (["train", "-c", "/nonexistent/config.yaml"], ["/nonexistent/config.yaml", "does not exist"]),
        (["evaluate", "--model", "/nonexistent/run"], ["/nonexistent/run"]),
        (["evaluate", "--model", "fast"], ["--data is required"]),
        (["train", "--resume", "/nonexistent/run"], ["/nonexistent/run", "not a run folder"]),
        (["finetune"], ["RUN_DIR or --model"]),
        (["predict"], ["give one or more PATHs"]),
        (["inspect"], ["DATASET or --data"]),
        (["split", "--data", "x.csv"], ["--out"]),
        (["predict", "--frobnicate"], ["--frobnicate"]),
        (["predict", "--camera", "0"], ["--camera"]),  # the camera is `camera --source N`
        (["export", "--output", "x.onnx"], ["--output"]),  # every output is -o/--out
    ],
)
def test_bad_input_is_one_line(args: list[str], fragments: list[str], run_main: RunMain) -> None:
    code, _, err = run_main(args)
    assert_one_line_error(code, err, *fragments)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["train", "--epochs", "0"], "--epochs"),
        (["train", "--epochs", "2.5"], "--epochs"),
        (["train", "--batch-size", "0"], "--batch-size"),
        (["train", "--lr", "nan"], "--lr"),
        (["train", "--lr", "inf"], "--lr"),
        (["train", "--lr", "-0.1"], "--lr"),
        (["train", "--trainable-layers", "-1"], "--trainable-layers"),
        (["finetune", "run", "--epochs", "0"], "--epochs"),
        (["finetune", "run", "--lr", "0"], "--lr"),
        (["predict", "x.jpg", "--every", "0"], "--every"),
        (["predict", "x.jpg", "--threshold", "1.5"], "--threshold"),
        (["predict", "x.jpg", "--threshold", "nan"], "--threshold"),
        (["predict", "x.jpg", "--smoothing", "1"], "--smoothing"),
        (["predict", "x.jpg", "--min-face-size", "-1"], "--min-face-size"),
        (["predict", "x.jpg", "--min-face-size", "inf"], "--min-face-size"),
        (["predict", "x.jpg", "--max-side", "-1"], "--max-side"),
        (["predict", "x.jpg", "--threads", "0"], "--threads"),
        (["predict", "x.jpg", "--max-frames", "0"], "--max-frames"),
        (["camera", "--max-frames", "-5"], "--max-frames"),
        (["export", "--opset", "3"], "--opset"),
        (["inspect", "x", "--near-threshold", "40"], "--near-threshold"),
        (["inspect", "x", "--image-size", "0"], "--image-size"),
        (["split", "x", "-o", "y.csv", "--seed", "-1"], "--seed"),
    ],
)
def test_bad_numbers_are_refused_when_parsed(args: list[str], option: str, run_main: RunMain,
                                             monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may be written, not even in the working folder
    code, out, err = run_main(args)
    assert_one_line_error(code, err, f"'{option}'", f"affectlens {args[0]} --help")
    assert out == "" and list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------- train and outputs
@pytest.fixture
def captured_training(monkeypatch: pytest.MonkeyPatch) -> list:
    """Stand-in for the training loop: records the config ``train`` resolved instead of training for minutes."""
    import affectlens.training.runs as runs

    configs: list = []
    monkeypatch.setattr(runs, "train", lambda cfg: configs.append(cfg) or {"run": "captured"})
    return configs


def test_train_arch_and_model_weights(captured_training: list, run_main: RunMain, tmp_path: Path) -> None:
    code, _, err = run_main(["train", "--arch", "baseline_cnn", "-o", str(tmp_path / "runs")])
    assert code == 0 and err == ""
    assert captured_training[-1].model.name == "baseline_cnn"
    assert captured_training[-1].output_dir == str(tmp_path / "runs")
    # --model is weights to start from: the architecture follows them
    code, _, err = run_main(["train", "--model", "fast"])
    assert code == 0 and err == ""
    cfg = captured_training[-1]
    assert Path(cfg.init_weights) == pretrained_file("fast") and cfg.model.name == "fast_cnn"


def test_export_writes_onnx_and_card_and_keeps_them(run_main: RunMain, tmp_path: Path) -> None:
    code, out, err = run_main(["export", "-m", "fast", "-o", str(tmp_path / "fast.onnx"), "--no-check"])
    assert code == 0, err
    assert (tmp_path / "fast.onnx").stat().st_size > 0 and (tmp_path / "fast.json").exists()
    # the same output again: refused without --exist-ok, the files kept
    before = (tmp_path / "fast.onnx").read_bytes()
    code, _, err = run_main(["export", "-m", "fast", "-o", str(tmp_path / "fast.onnx"), "--no-check"])
    assert_one_line_error(code, err, "fast.onnx", "already exists", "--exist-ok")
    assert (tmp_path / "fast.onnx").read_bytes() == before


def test_camera_writes_an_annotated_video(media_dir: Path, run_main: RunMain, tmp_path: Path) -> None:
    video = tmp_path / "cam.mp4"
    code, out, err = run_main(["camera", "--source", str(media_dir / "single_face.mp4"), "-m", "fast", "--no-window",
                               "-o", str(video), "--max-frames", "3", "--threads", "1"])
    assert code == 0, err
    assert "3 frames, 3 faces" in out and video.stat().st_size > 0


@pytest.fixture(scope="module")
def ck_manifest(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """24 real CK+ faces of two classes and six subjects as PNG files with a manifest (class order not sorted)."""
    root = tmp_path_factory.mktemp("ck")
    ck = np.load(data_dir / "ckplus48" / "ckplus48.npz")
    rows = []
    for label, name in ((6, "surprise"), (4, "happy")):
        for i in np.flatnonzero(ck["labels"] == label)[:12]:
            file = root / f"{i:04d}.png"
            Image.fromarray(ck["images"][i]).save(file)
            rows.append([file.name, name, f"S{int(ck['subject'][i]):03d}"])
    manifest = root / "faces.csv"
    with open(manifest, "w", newline="") as handle:
        csv.writer(handle).writerows([["path", "label", "subject"], *rows])
    return manifest


def without_timestamps(report: dict) -> dict:
    """The report minus when it was made: two runs seconds apart must agree on everything else."""
    return {key: value for key, value in report.items() if key not in {"created", "seconds"}}


def test_inspect_set_and_dataset_spellings(ck_manifest: Path, run_main: RunMain, tmp_path: Path) -> None:
    code, out, err = run_main(["inspect", str(ck_manifest), "-s", "class_names=[surprise,happy]", "--no-near",
                               "-o", str(tmp_path / "rep")])
    assert code == 0, err
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["class_distribution"]["class_names"] == ["surprise", "happy"]
    # the dataset as --data: the same report, no warning
    code, _, err = run_main(["inspect", "--data", str(ck_manifest), "--kind", "manifest", "--set",
                             "class_names=[surprise,happy]", "--no-near", "-o", str(tmp_path / "rep2")])
    assert code == 0 and WARNING not in err
    again = json.loads((tmp_path / "rep2" / "report.json").read_text())
    assert without_timestamps(again) == without_timestamps(report)


def test_split_set_keeps_the_class_order(ck_manifest: Path, run_main: RunMain, tmp_path: Path) -> None:
    out_csv = tmp_path / "split.csv"
    code, out, err = run_main(["split", "--data", str(ck_manifest), "-o", str(out_csv), "--set",
                               "class_names=[surprise,happy]", "--fractions", "train=0.5,val=0.5"])
    assert code == 0, err
    assert "subjects: none shared between splits" in out
    assert "--set data.options.class_names=[surprise,happy]" in out  # the train hint keeps the class order
    with open(out_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 24 and {r["split"] for r in rows} == {"train", "val"}


# ----------------------------------------------------------------------------------------- models
def test_models_prints_an_aligned_table(run_main: RunMain) -> None:
    code, out, err = run_main(["models"])
    assert code == 0, err
    lines = out.splitlines()
    header, rule, *rest = lines
    rows = list_pretrained()
    body = rest[:len(rows)]
    for column in ("model", "aliases", "architecture", "classes", "input", "params", "FER2013", "10-crop", "CK+"):
        assert column in header.split()
    starts = [m.start() for m in re.finditer(r"-+", rule)]
    assert len(starts) == len(header.split())
    for line, row in zip(body, rows, strict=True):  # every cell starts or ends on its column's bounds
        assert line.startswith(row["name"] + " ")
        assert line[starts[1]:].startswith(",".join(row["aliases"]))
        assert line[starts[2]:].startswith(row["architecture"])
    default = next(line for line in body if " default " in line)
    score = 100 * next(r for r in rows if "default" in r["aliases"])["metrics"]["PrivateTest_accuracy"]
    assert f"{score:.1f}" in default.split()
    assert "PrivateTest_tencrop_macro_f1" not in out  # no raw metric keys


def test_models_json(run_main: RunMain) -> None:
    code, out, _ = run_main(["models", "--json"])
    assert code == 0
    payload = json.loads(out)
    assert [r["name"] for r in payload["pretrained"]] == [r["name"] for r in list_pretrained()]
    assert "architectures" not in payload
    code, out, _ = run_main(["models", "--json", "--all"])
    names = {a["name"] for a in json.loads(out)["architectures"]}
    assert {"vgg_fer_small", "fast_cnn"} <= names
