"""Every model in the pretrained table ships intact (sha256), has a complete card written by
tools/ship_model.py, still scores what its card says on a fixed slice of its test split, and
its ONNX graph agrees with its safetensors weights. Ensemble entries (a card naming shipped
members) are held to the same checks through their members."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from affectlens.cli import cli
from affectlens.data.labels import CANONICAL_CLASSES
from affectlens.data.registry import load_dataset
from affectlens.errors import AffectlensError
from affectlens.evaluation.runner import evaluate_weights
from affectlens.models.prediction.torch_backend import TorchClassifier
from affectlens.runtime.card import REQUIRED_KEYS, read_card
from affectlens.runtime.classifiers import OnnxClassifier
from affectlens.runtime.ensemble_card import ENSEMBLE_FORMAT, load_ensemble
from affectlens.runtime.factory import create_classifier
from affectlens.runtime.pretrained import (
    STANDARD_ALIASES,
    TABLE_FILE,
    WEIGHTS_DIR,
    aliases,
    file_sha256,
    list_pretrained,
    main_file_kind,
    pretrained_entry,
    resolve_model,
)
from affectlens.runtime.resolve import verify_pretrained

ROWS = list_pretrained()
NAMES = [row["name"] for row in ROWS]
MAX_BYTES = 30 * 1024 * 1024
#: what tools/ship_model.py measures for every model (FER2013 labels, classes mapped by name)
MEASURED = [f"{split}{crop}_{metric}" for split in ("PublicTest", "PrivateTest") for crop in ("", "_tencrop")
            for metric in ("accuracy", "macro_f1")] + ["params", "multiply_adds"]


def is_ensemble(entry: dict) -> bool:
    return entry["architecture"] == "ensemble"


def test_table_names_every_shipped_file_and_the_standard_aliases() -> None:
    assert set(STANDARD_ALIASES) <= set(aliases())
    assert resolve_model("default").parent == WEIGHTS_DIR
    listed = {name for row in ROWS for name in row["files"].values()}
    on_disk = {p.name for p in WEIGHTS_DIR.iterdir() if p.suffix in (".safetensors", ".onnx", ".json")}
    assert on_disk - {TABLE_FILE.name} == listed  # no orphan file, no entry without its files
    for row in ROWS:
        assert row["name"] == f"{row['architecture']}.{row['tag']}"
        # an ensemble ships its card only (its members' weights are other rows), a model all three
        assert set(row["files"]) == ({"card"} if is_ensemble(row) else {"weights", "onnx", "card"})
        weights = resolve_model(row["name"])
        assert weights == Path(row["path"]) and weights.name == row["files"][main_file_kind(row)]
        assert resolve_model(weights.stem) == weights  # file stems keep working
        for alias in row["aliases"]:
            assert resolve_model(alias) == weights and pretrained_entry(alias)["name"] == row["name"]


def test_unknown_names_are_one_line_errors() -> None:
    with pytest.raises(AffectlensError, match="neither a shipped model .*default.*nor an existing path"):
        resolve_model("no_such_model")
    with pytest.raises(AffectlensError, match="not a shipped model"):
        pretrained_entry("no_such_model")


@pytest.mark.parametrize("name", NAMES)
def test_files_match_their_sha256(name: str) -> None:
    entry = pretrained_entry(name)
    verify_pretrained(name)
    for kind, file_name in entry["files"].items():
        assert file_sha256(WEIGHTS_DIR / file_name) == entry["sha256"][kind]


@pytest.mark.parametrize("name", NAMES)
def test_card_is_complete_and_the_table_copies_it(name: str, data_dir: Path) -> None:
    entry = pretrained_entry(name)
    path = WEIGHTS_DIR / entry["files"][main_file_kind(entry)]
    assert path.stat().st_size <= MAX_BYTES
    card = read_card(path)
    if is_ensemble(entry):  # the table's members are the card's, named as table entries
        assert card.format == ENSEMBLE_FORMAT
        ensemble = load_ensemble(path)
        assert [pretrained_entry(m.spec)["name"] for m in ensemble.members] == entry["members"] \
            == card.model_options["members"]
        assert [m.weight for m in ensemble.members] == entry["member_weights"]
        assert entry["combination"] == ensemble.combination == card.model_options["combination"]
    raw = card.to_dict()
    assert all(raw[key] for key in REQUIRED_KEYS if key != "normalization") and card.normalization["mode"]
    assert card.training_data and card.licence and card.description
    assert set(MEASURED) <= set(card.metrics) and card.metrics["PrivateTest_accuracy"] > 0.5  # majority: 0.245
    assert not [k for k in card.metrics if "per_second" in k]  # throughput lives in BENCHMARKS.md only
    assert set(card.class_names) <= set(CANONICAL_CLASSES)
    for key in ("architecture", "class_names", "in_channels", "image_size", "input_size", "normalization",
                "task", "training_data", "licence", "description", "metrics"):
        assert entry[key] == raw[key], key
    assert entry["slice_check"] == card.extra["slice_check"]
    assert entry.get("mirror", False) is card.mirror  # the table says whether the model also sees the mirror
    ck_classes = load_dataset("ckplus", data_dir / "ckplus48").class_names
    dropped = [c for c in ck_classes if c not in card.class_names]
    assert ("ckplus_note" in card.extra) == bool(dropped)
    assert all(c in card.extra.get("ckplus_note", "") for c in dropped)
    # the training class frequencies, so --prior-correction works with every shipped model
    assert len(card.class_prior) == card.num_classes and sum(card.class_prior) == pytest.approx(1.0, abs=1e-4)
    if card.training_data.startswith("fer2013 (Training;"):
        training = load_dataset("fer2013", data_dir / "fer2013").select_splits("Training").class_counts()
        assert card.class_prior == pytest.approx(list(training / training.sum()), abs=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_accuracy_on_a_fixed_slice_equals_the_card(name: str, data_dir: Path, tmp_path: Path) -> None:
    """Fails when the weights, the crop, the normalisation or the class mapping change."""
    entry = pretrained_entry(name)
    weights = WEIGHTS_DIR / entry["files"][main_file_kind(entry)]
    check = entry["slice_check"]
    rows = load_dataset(check["data"], data_dir / check["data"]).select_splits(check["split"])
    rows = rows.subset(np.arange(check["rows"]))
    stored = read_card(weights).metrics[check["metric"]]
    torch_accuracy = evaluate_weights(weights, rows, tmp_path / "slice")["accuracy"]
    assert abs(torch_accuracy - stored) < 1e-9
    # the prediction path users run (ONNX Runtime on aligned faces) scores the same faces alike
    predicted = create_classifier(resolve_model(name), backend="onnx").predict(rows.images).argmax(1)
    assert abs(float(np.mean(predicted == rows.labels)) - stored) < 1e-9


@pytest.mark.parametrize("name", NAMES)
def test_onnx_graph_agrees_with_the_weights(name: str) -> None:
    entry = pretrained_entry(name)
    path = resolve_model(name)
    card = read_card(path)
    faces = np.random.default_rng(0).integers(0, 255, (8, card.image_size, card.image_size, card.in_channels),
                                              dtype=np.uint8)
    if is_ensemble(entry):  # every member's graph is checked in its own row; here the combination
        onnx, torch_ = create_classifier(path, backend="onnx"), create_classifier(path, backend="torch")
    else:
        assert card.extra["onnx"]["source"] == path.name  # so the predictor loads the graph, not torch
        onnx, torch_ = OnnxClassifier.from_path(WEIGHTS_DIR / entry["files"]["onnx"]), TorchClassifier(path)
    assert onnx.class_names == card.class_names
    np.testing.assert_allclose(onnx.predict(faces), torch_.predict(faces), atol=1e-4)


def test_models_command_lists_them() -> None:
    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code == 0, result.output
    for row in ROWS:
        assert row["name"] in result.output
        assert all(member in result.output for member in row.get("members", []))  # an ensemble shows its members
    mirrored = [row["name"] for row in ROWS if row.get("mirror")]
    assert (f"{', '.join(mirrored)}: each face averaged with its mirror image" in result.output) == bool(mirrored)
    assert "default" in result.output
