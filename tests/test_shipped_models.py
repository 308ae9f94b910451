"""Every model shipped in affectlens/weights loads offline, has a complete card, and its ONNX graph
agrees with its safetensors weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from affectlens.cli import cli
from affectlens.inference.backends import OnnxClassifier, TorchClassifier
from affectlens.models.card import read_card
from affectlens.models.shipped import ALIASES_FILE, WEIGHTS_DIR, resolve_model, shipped_models

SHIPPED = sorted(shipped_models().values())
MAX_BYTES = 30 * 1024 * 1024


def test_default_and_fast_aliases_exist() -> None:
    aliases = json.loads(ALIASES_FILE.read_text())
    assert {"default", "fast"} <= set(aliases)
    assert resolve_model("default").parent == WEIGHTS_DIR


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_model_is_complete_and_consistent(path) -> None:
    assert path.stat().st_size <= MAX_BYTES
    card = read_card(path)
    assert card.class_names and card.input_size and card.image_size and card.normalization["mode"]
    assert card.training_data and card.licence and card.metrics["PrivateTest_accuracy"] > 0.5  # majority class: 0.245
    onnx_path = path.with_suffix(".onnx")
    assert onnx_path.exists(), "ship the ONNX graph beside the weights (benchmarks/ship_model.py)"
    assert card.extra["onnx"]["source"] == path.name  # so the predictor loads the graph, not torch
    faces = np.random.default_rng(0).integers(0, 255, (8, card.image_size, card.image_size, card.in_channels),
                                              dtype=np.uint8)
    onnx_probs = OnnxClassifier.from_path(onnx_path).predict(faces)
    torch_probs = TorchClassifier(path).predict(faces)
    np.testing.assert_allclose(onnx_probs, torch_probs, atol=1e-4)


def test_models_command_lists_them_with_numbers() -> None:
    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code == 0, result.output
    for path in SHIPPED:
        assert path.stem in result.output
    assert "PrivateTest_accuracy" in result.output and "(default" in result.output
