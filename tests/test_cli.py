"""The command line: one grammar in every command, old spellings that warn, one-line errors.

Most rows run in-process through :func:`affectlens.cli.main` (the console entry point, so its
error handling is what is tested); the entry points themselves (``python -m affectlens``,
``python -m affectlens.cli``) run as real subprocesses.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from affectlens.cli import COMMANDS, main
from affectlens.runtime.pretrained import list_pretrained, pretrained_file

WARNING = "affectlens: warning: "
ERROR = "affectlens: error: "


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "affectlens.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str],
             monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """``affectlens ARGV`` in this process: (exit status, stdout, stderr)."""
    monkeypatch.setattr(logging.root, "handlers", [])  # log to this test's captured stderr
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


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


def assert_deprecation(err: str, *fragments: str) -> None:
    warnings = [line for line in stderr_lines(err) if line.startswith(WARNING)]
    assert len(warnings) == 1, err
    assert "deprecated" in warnings[0]
    for fragment in fragments:
        assert fragment in warnings[0], warnings[0]


# ---------------------------------------------------------------------------------- entry points
def test_help_lists_every_command() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert re.search(rf"^\s+{command.name}\s", result.stdout, re.MULTILINE), command.name
    assert {c.name for c in COMMANDS} >= {"train", "finetune", "evaluate", "models", "predict", "camera", "export",
                                          "inspect", "split", "serve"}


def test_python_dash_m_affectlens_predicts_five_faces(media_dir: Path, tmp_path: Path) -> None:
    """``python -m affectlens predict`` on the five-face photo: records, table summary, annotated image."""
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "affectlens", "predict", str(media_dir / "multi_face.jpg"),
                             "-o", str(out)], capture_output=True, text=True, timeout=300)
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
        (["train", "--arch", "vgg99"], ["unknown model 'vgg99'", "vgg_fer"]),
        (["train", "--model", "vgg99"], ["'vgg99'", "--arch"]),
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
    ],
)
def test_bad_input_is_one_line(args: list[str], fragments: list[str], capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run_main(args, capsys, monkeypatch)
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
def test_bad_numbers_are_refused_when_parsed(args: list[str], option: str, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may be written, not even in the working folder
    code, out, err = run_main(args, capsys, monkeypatch)
    assert_one_line_error(code, err, f"'{option}'", f"affectlens {args[0]} --help")
    assert out == "" and list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- deprecated aliases
@pytest.fixture
def captured_training(monkeypatch: pytest.MonkeyPatch) -> list:
    """Stand-in for the training loop: records the config ``train`` resolved instead of training for minutes."""
    import affectlens.training.loop as loop

    configs: list = []
    monkeypatch.setattr(loop, "train", lambda cfg: configs.append(cfg) or {"run": "captured"})
    return configs


def test_train_model_naming_an_architecture_warns_and_means_arch(captured_training: list,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run_main(["train", "--model", "fast_cnn", "--epochs", "1"], capsys, monkeypatch)
    assert code == 0, err
    assert_deprecation(err, "--arch fast_cnn")
    (cfg,) = captured_training
    assert cfg.model.name == "fast_cnn" and cfg.init_weights is None and cfg.epochs == 1


def test_train_arch_and_model_weights(captured_training: list, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run_main(["train", "--arch", "baseline_cnn"], capsys, monkeypatch)
    assert code == 0 and err == ""
    assert captured_training[-1].model.name == "baseline_cnn"
    # --model is weights to start from: the architecture follows them
    code, _, err = run_main(["train", "--model", "fast"], capsys, monkeypatch)
    assert code == 0 and err == ""
    cfg = captured_training[-1]
    assert Path(cfg.init_weights) == pretrained_file("fast") and cfg.model.name == "fast_cnn"


def test_train_output_dir_is_a_deprecated_out(captured_training: list, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, _, err = run_main(["train", "--output-dir", str(tmp_path / "runs")], capsys, monkeypatch)
    assert code == 0, err
    assert_deprecation(err, "--output-dir", "-o/--out")
    assert captured_training[-1].output_dir == str(tmp_path / "runs")
    code, _, err = run_main(["train", "--output-dir", "a", "-o", "b"], capsys, monkeypatch)
    assert code == 2 and "give only -o/--out" in err


def test_export_output_is_a_deprecated_out(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    code, out, err = run_main(["export", "-m", "fast", "--output", str(tmp_path / "fast.onnx"), "--no-check"],
                              capsys, monkeypatch)
    assert code == 0, err
    assert_deprecation(err, "--output", "-o/--out")
    assert (tmp_path / "fast.onnx").stat().st_size > 0 and (tmp_path / "fast.json").exists()
    # the same output again: refused without --exist-ok, the files kept
    before = (tmp_path / "fast.onnx").read_bytes()
    code, _, err = run_main(["export", "-m", "fast", "-o", str(tmp_path / "fast.onnx"), "--no-check"],
                            capsys, monkeypatch)
    assert_one_line_error(code, err, "fast.onnx", "already exists", "--exist-ok")
    assert (tmp_path / "fast.onnx").read_bytes() == before


def test_camera_output_is_a_deprecated_out(media_dir: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    video = tmp_path / "cam.mp4"
    code, out, err = run_main(["camera", "--source", str(media_dir / "single_face.mp4"), "-m", "fast", "--no-window",
                               "--output", str(video), "--max-frames", "3", "--threads", "1"], capsys, monkeypatch)
    assert code == 0, err
    assert_deprecation(err, "--output", "-o/--out")
    assert "3 frames, 3 faces" in out and video.stat().st_size > 0


def test_predict_camera_is_the_camera_command(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    """``predict --camera N`` warns and runs the camera path (no camera 97 here: its one-line error)."""
    code, _, err = run_main(["predict", "--camera", "97", "-o", str(tmp_path / "out")], capsys, monkeypatch)
    assert code == 2
    assert_deprecation(err, "affectlens camera --source 97")
    assert stderr_lines(err)[-1].startswith(ERROR) and "camera 97 cannot be opened" in err
    assert "Traceback" not in err
    code, _, err = run_main(["predict", "x.jpg", "--camera", "0"], capsys, monkeypatch)
    assert code == 2 and "--camera takes no PATHs" in err


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


def test_inspect_option_is_a_deprecated_set(ck_manifest: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, out, err = run_main(["inspect", str(ck_manifest), "-O", "class_names=[surprise,happy]", "--no-near",
                               "-o", str(tmp_path / "rep")], capsys, monkeypatch)
    assert code == 0, err
    assert_deprecation(err, "-O", "--set")
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["class_distribution"]["class_names"] == ["surprise", "happy"]
    # the new spelling, with the dataset as --data: the same report, no warning
    code, _, err = run_main(["inspect", "--data", str(ck_manifest), "--kind", "manifest", "--set",
                             "class_names=[surprise,happy]", "--no-near", "-o", str(tmp_path / "rep2")],
                            capsys, monkeypatch)
    assert code == 0 and WARNING not in err
    again = json.loads((tmp_path / "rep2" / "report.json").read_text())
    assert without_timestamps(again) == without_timestamps(report)


def test_split_option_is_a_deprecated_set(ck_manifest: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    out_csv = tmp_path / "split.csv"
    code, out, err = run_main(["split", "--data", str(ck_manifest), "-o", str(out_csv), "--option",
                               "class_names=[surprise,happy]", "--fractions", "train=0.5,val=0.5"],
                              capsys, monkeypatch)
    assert code == 0, err
    assert_deprecation(err, "--option", "--set")
    assert "subjects: none shared between splits" in out
    assert "--set data.options.class_names=[surprise,happy]" in out  # the train hint keeps the class order
    with open(out_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 24 and {r["split"] for r in rows} == {"train", "val"}


# ----------------------------------------------------------------------------------------- models
def test_models_prints_an_aligned_table(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run_main(["models"], capsys, monkeypatch)
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


def test_models_json(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run_main(["models", "--json"], capsys, monkeypatch)
    assert code == 0
    payload = json.loads(out)
    assert [r["name"] for r in payload["pretrained"]] == [r["name"] for r in list_pretrained()]
    assert "architectures" not in payload
    code, out, _ = run_main(["models", "--json", "--all"], capsys, monkeypatch)
    names = {a["name"] for a in json.loads(out)["architectures"]}
    assert {"vgg_fer_small", "fast_cnn"} <= names
