"""Tests for the model registry, architectures, pretrained loading, freezing and ONNX export."""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from affectlens.errors import AffectlensError
from affectlens.models import (
    apply_frozen_bn_eval,
    count_macs,
    count_params,
    create_model,
    freeze_all_but_last,
    list_models,
    model_info,
)
from affectlens.models.blocks import GridAvgPool2d
from affectlens.models.fast_cnn import MACS_BUDGET_40PX

EXPECTED = {
    "vgg_fer",
    "vgg_fer_small",
    "resnet18_preact",
    "resnet34_preact",
    "baseline_cnn",
    "fast_cnn",
    "vgg16",
    "alexnet",
    "resnet18",
    "resnet34",
    "resnet50",
}


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    """One intra-op thread: on 2 shared cores, OpenMP spin-waiting made this file ~4x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# The ImageNet backbones default to 96 px; smaller inputs keep this file fast (alexnet needs >= 63 px).
_SHAPE_TEST_SIZE = {"vgg16": 48, "alexnet": 64, "resnet18": 64, "resnet34": 64, "resnet50": 64}


def _test_size(name: str) -> int:
    return _SHAPE_TEST_SIZE.get(name, model_info(name)["default_input_size"])


def test_registry_lists_all_models() -> None:
    assert EXPECTED <= set(list_models())
    assert list_models() == sorted(list_models())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_forward_backward_shapes(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, in_channels=1)
    size = _test_size(name)
    assert model.default_input_size == model_info(name)["default_input_size"]
    assert isinstance(model.head, nn.Linear) and model.head.out_features == 7
    x = torch.randn(2, 1, size, size)
    out = model(x)
    assert out.shape == (2, 7)
    feats = model.forward_features(x)
    assert feats.shape == (2, model.num_features)
    assert model.head.in_features == model.num_features
    out.sum().backward()
    assert model.head.weight.grad is not None and model.head.weight.grad.abs().sum() > 0


def test_vgg_fer_param_counts() -> None:
    assert abs(count_params(create_model("vgg_fer", 7)) - 29.9e6) < 0.2e6
    assert abs(count_params(create_model("vgg_fer_small", 7)) - 3.3e6) < 0.1e6


def test_vgg_fer_accepts_full_48px_faces() -> None:
    model = create_model("vgg_fer_small", 7).eval()
    assert model(torch.randn(1, 1, 48, 48)).shape == (1, 7)


def test_model_info() -> None:
    info = model_info("vgg_fer")
    assert info["default_input_size"] == 40
    assert info["accepts_pretrained"] is True
    assert "Khaireddin" in info["summary"]
    assert set(info["options"]) == {"width", "fc_dim", "dropout"}
    assert model_info("resnet18")["weights_format"] == "torchvision"


def test_unknown_model_name_lists_valid_names() -> None:
    with pytest.raises(AffectlensError, match="unknown model 'nope'") as exc:
        create_model("nope", 7)
    assert "vgg_fer" in str(exc.value) and "resnet18" in str(exc.value)
    with pytest.raises(AffectlensError):
        model_info("nope")


def test_unknown_option_names_bad_and_accepted() -> None:
    with pytest.raises(AffectlensError, match="widht") as exc:
        create_model("vgg_fer_small", 7, widht=32)
    assert "width" in str(exc.value) and "fc_dim" in str(exc.value)


def test_builder_options_are_used() -> None:
    model = create_model("resnet18_preact", 7, width=16, dropout=0.3)
    assert model.num_features == 128
    assert 0.6e6 < count_params(model) < 0.8e6


def _affectlens_imports(path: Path) -> set[str]:
    """Every ``affectlens`` module a source file imports, lazy imports inside functions included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("affectlens"):
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("affectlens")}
    return found


def test_registry_has_no_import_cycle() -> None:
    """The core table imports no architecture; no architecture (nor the ensemble) imports the public registry."""
    models_dir = Path(__file__).resolve().parents[1] / "affectlens" / "models"
    assert not {m for m in _affectlens_imports(models_dir / "_registry.py") if m.startswith("affectlens.models")}
    for module in ("baseline_cnn", "vgg_fer", "fast_cnn", "resnet_preact", "transfer", "ensemble", "blocks"):
        imported = _affectlens_imports(models_dir / f"{module}.py")
        assert not {m for m in imported if m.startswith(("affectlens.models.registry", "affectlens.models.weights"))}


def test_builders_declare_their_model_class() -> None:
    """default_input_size is declared once, on the class the builder's return annotation names."""
    from affectlens.models import _registry

    for name in list_models():
        cls = _registry.model_class(name)
        assert cls is not None and isinstance(cls.default_input_size, int), name


def test_transfer_in_channels_validated() -> None:
    with pytest.raises(AffectlensError, match="in_channels"):
        create_model("resnet18", 7, in_channels=2)


# --------------------------------------------------------------------------------------------------
# Transfer backbones and pretrained loading
# --------------------------------------------------------------------------------------------------


def _torchvision_like_resnet18() -> dict[str, torch.Tensor]:
    """A state_dict with torchvision resnet18's exact keys and a 1000-class fc, random values."""
    torch.manual_seed(1)
    source = create_model("resnet18", num_classes=1000, in_channels=3)
    for p in source.parameters():
        p.data.normal_()
    for name, buf in source.named_buffers():
        if name.endswith("running_var"):
            buf.uniform_(0.5, 2.0)
    return {k: v.clone() for k, v in source.state_dict().items()}


def test_resnet18_has_torchvision_keys() -> None:
    keys = list(create_model("resnet18", 7).state_dict())
    assert len(keys) == 122
    for key in (
        "conv1.weight",
        "bn1.running_mean",
        "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.bias",
        "layer4.1.bn2.num_batches_tracked",
        "fc.weight",
        "fc.bias",
    ):
        assert key in keys
    assert not any(k.startswith("head.") for k in keys)
    vgg_keys = [k for k in create_model("alexnet", 7).state_dict() if k.startswith("classifier")]
    assert vgg_keys == [f"classifier.{i}.{p}" for i in (1, 4, 6) for p in ("weight", "bias")]


def test_head_alias_assignment_replaces_fc() -> None:
    model = create_model("resnet18", 7).eval()
    model.head = nn.Linear(model.num_features, 3)
    assert model.fc is model.head and model.fc.out_features == 3
    assert model(torch.randn(1, 1, 32, 32)).shape == (1, 3)
    assert not any(k.startswith("head.") for k in model.state_dict())


@pytest.mark.parametrize("fmt", ["pth", "safetensors", "wrapped"])
def test_pretrained_torchvision_resnet18(tmp_path: Path, fmt: str, caplog: pytest.LogCaptureFixture) -> None:
    state = _torchvision_like_resnet18()
    if fmt == "safetensors":
        from safetensors.torch import save_file

        path = tmp_path / "resnet18.safetensors"
        save_file(state, str(path))
    elif fmt == "pth":
        path = tmp_path / "resnet18.pth"
        torch.save(state, path)
    else:  # a training checkpoint of a DataParallel model
        path = tmp_path / "ckpt.pt"
        torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    with caplog.at_level(logging.INFO, logger="affectlens.models.registry"):
        model = create_model("resnet18", num_classes=7, pretrained=path)
    loaded = model.state_dict()
    for key, value in state.items():
        if not key.startswith("fc."):
            assert torch.equal(loaded[key], value), key
    assert model.head.weight.shape == (7, 512)
    assert not torch.equal(model.head.weight, state["fc.weight"][:7])
    assert "fc.weight" in caplog.text and "loaded 120 of 122" in caplog.text


def test_grey_input_equals_repeated_rgb() -> None:
    grey = create_model("resnet18", 7, in_channels=1).eval()
    rgb = create_model("resnet18", 7, in_channels=3).eval()
    rgb.load_state_dict(grey.state_dict())
    x = torch.randn(2, 1, 32, 32)
    torch.testing.assert_close(grey(x), rgb(x.repeat(1, 3, 1, 1)))


def test_pretrained_wrong_architecture(tmp_path: Path) -> None:
    path = tmp_path / "small.pth"
    torch.save(create_model("vgg_fer_small", 7).state_dict(), path)
    with pytest.raises(AffectlensError, match="small.pth.*do not fit"):
        create_model("resnet18", 7, pretrained=path)


def test_pretrained_missing_or_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(AffectlensError, match="missing_weights.pth"):
        create_model("fast_cnn", 7, pretrained=tmp_path / "missing_weights.pth")
    bad = tmp_path / "garbage.safetensors"
    bad.write_bytes(b"not a weights file")
    with pytest.raises(AffectlensError, match="garbage.safetensors") as exc:
        create_model("fast_cnn", 7, pretrained=bad)
    assert "\n" not in str(exc.value)


def test_pretrained_own_checkpoint_roundtrip_and_channel_adaptation(tmp_path: Path) -> None:
    rgb = create_model("vgg_fer_small", 7, in_channels=3)
    path = tmp_path / "own.pth"
    torch.save({"model": rgb.state_dict()}, path)
    same = create_model("vgg_fer_small", 7, in_channels=3, pretrained=path)
    for key, value in rgb.state_dict().items():
        if not key.startswith("head"):  # the head starts fresh even with the same class count
            assert torch.equal(same.state_dict()[key], value), key
    grey = create_model("vgg_fer_small", 7, in_channels=1, pretrained=path)
    torch.testing.assert_close(grey.features[0].weight, rgb.features[0].weight.sum(1, keepdim=True))


# --------------------------------------------------------------------------------------------------
# Freezing
# --------------------------------------------------------------------------------------------------


def _trainable(model: nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_trainable_layers_zero_trains_only_head() -> None:
    model = create_model("resnet18", 7, trainable_layers=0)
    assert _trainable(model) == {"fc.weight", "fc.bias"}


def test_trainable_layers_two_and_frozen_bn_eval() -> None:
    model = create_model("resnet18", 7, trainable_layers=2)
    expected = {"fc.weight", "fc.bias"} | {
        f"layer4.1.{m}.{p}"
        for m, ps in (
            ("conv1", ["weight"]),
            ("bn1", ["weight", "bias"]),
            ("conv2", ["weight"]),
            ("bn2", ["weight", "bias"]),
        )
        for p in ps
    }
    assert _trainable(model) == expected
    model.train()
    assert apply_frozen_bn_eval(model) > 0
    assert not model.bn1.training and not model.layer4[0].bn2.training
    assert model.layer4[1].bn1.training and model.layer4[1].bn2.training
    before = model.bn1.running_mean.clone()
    model(torch.randn(2, 1, 32, 32)).sum().backward()
    assert torch.equal(model.bn1.running_mean, before)
    assert model.layer4[0].conv1.weight.grad is None and model.layer4[1].conv2.weight.grad is not None


def test_trainable_layers_linear_backbone_layers() -> None:
    model = create_model("vgg_fer_small", 7, trainable_layers=2)
    assert _trainable(model) == {
        "head.weight",
        "head.bias",
        "fc.0.weight",
        "fc.0.bias",
        "fc.3.weight",
        "fc.3.bias",
    }
    assert len(model._frozen_bn) == 8


def test_freeze_none_or_negative_trains_everything() -> None:
    model = create_model("vgg_fer_small", 7, trainable_layers=0)
    total = count_params(model)
    assert freeze_all_but_last(model, None) == total
    assert count_params(model, trainable_only=True) == total
    assert freeze_all_but_last(model, -1) == total and model._frozen_bn == []


# --------------------------------------------------------------------------------------------------
# fast_cnn budget and ONNX export
# --------------------------------------------------------------------------------------------------


def test_fast_cnn_macs_within_budget() -> None:
    model = create_model("fast_cnn", 7)
    macs = count_macs(model, 40, 1)
    assert 10e6 <= macs <= MACS_BUDGET_40PX
    assert f"{macs / 1e6:.1f}M multiply-adds at 40x40" in model_info("fast_cnn")["summary"]


def test_count_macs_simple() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 8 * 8, 5))
    assert count_macs(model, 8, 1) == 8 * 8 * 4 * 9 + 256 * 5


def _onnx_matches_torch(model: nn.Module, x: torch.Tensor, path: Path) -> None:
    import onnxruntime as ort

    model.eval()
    torch.onnx.export(model, x, str(path), dynamo=False, opset_version=17)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_fast_cnn_onnx_export_matches_torch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("fast_cnn", 7)
    # Non-trivial BN statistics so that the exported (folded) BN is really exercised.
    for name, buf in model.named_buffers():
        if name.endswith("running_mean"):
            buf.normal_(0, 0.1)
        elif name.endswith("running_var"):
            buf.uniform_(0.5, 1.5)
    _onnx_matches_torch(model, torch.randn(2, 1, 40, 40), tmp_path / "fast_cnn.onnx")


def test_vgg_fer_onnx_export_at_48px(tmp_path: Path) -> None:
    # 48 px gives a 3x3 map that the grid pool averages to 2x2; plain adaptive pooling cannot export this.
    _onnx_matches_torch(create_model("vgg_fer_small", 7), torch.randn(2, 1, 48, 48), tmp_path / "vgg.onnx")


@pytest.mark.parametrize(("size", "grid"), [(3, 2), (2, 7), (10, 6), (5, 2), (4, 2)])
def test_grid_pool_export_path_matches_adaptive_pool(
    monkeypatch: pytest.MonkeyPatch, size: int, grid: int
) -> None:
    x = torch.randn(2, 3, size, size)
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    torch.testing.assert_close(GridAvgPool2d(grid)(x), F.adaptive_avg_pool2d(x, grid))


def test_pretrained_never_copies_the_head_even_when_shapes_match(tmp_path) -> None:
    """Weights from another 7-class task (FER2013 -> CK+) must not bring their class order along."""
    import torch

    from affectlens.models import create_model

    source = create_model("fast_cnn", 7)
    path = tmp_path / "fer.pth"
    torch.save(source.state_dict(), path)
    target = create_model("fast_cnn", 7, pretrained=path)
    assert not torch.equal(target.head.weight, source.head.weight)
    backbone = [k for k in source.state_dict() if not k.startswith("head")]
    assert all(torch.equal(source.state_dict()[k], target.state_dict()[k]) for k in backbone)
