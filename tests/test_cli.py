"""The command line: user mistakes give one line naming the file or option, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "affectlens.cli", *args], capture_output=True, text=True,
                          timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_help_lists_the_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("train", "evaluate", "finetune", "models"):
        assert command in result.stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["train", "--data", "/nonexistent/fer", "--epochs", "1"], ["/nonexistent/fer", "does not exist"]),
        (["train", "--model", "vgg99"], ["unknown model 'vgg99'", "vgg_fer"]),
        (["train", "--set", "optim.name=rmsprop"], ["unknown optimizer 'rmsprop'", "sgd_nesterov"]),
        (["train", "--set", "optimiser.lr=1"], ["unknown option(s) optimiser"]),
        (["train", "-c", "/nonexistent/config.yaml"], ["/nonexistent/config.yaml", "does not exist"]),
        (["evaluate", "--model", "/nonexistent/run"], ["/nonexistent/run"]),
        (["train", "--resume", "/nonexistent/run"], ["/nonexistent/run", "not a run folder"]),
    ],
)
def test_bad_input_is_one_line(args: list[str], fragments: list[str]) -> None:
    assert_one_line_error(run_cli(*args), *fragments)


def test_csv_without_expected_columns(tmp_path: Path) -> None:
    bad = tmp_path / "fer2013.csv"
    bad.write_text("emotion,Usage\n0,Training\n")
    result = run_cli("train", "--data", str(bad), "--kind", "fer2013", "--epochs", "1")
    assert_one_line_error(result, str(bad), "missing column")
