"""``affectlens export``: write a model's ONNX graph as a file, with its model card as the sidecar.

The graph itself comes from :func:`affectlens.models.onnx_export.export_onnx_bytes` (the same
export the ONNX Runtime backend runs in memory); this module adds what a file on disk needs: the
sidecar card that says which weights it came from (so a stale graph beside retrained weights is
never loaded) and, with ``check``, how far it is from torch.
"""

from __future__ import annotations

from pathlib import Path

from affectlens.errors import AffectlensError
from affectlens.models.onnx_export import (
    OPSET,
    export_onnx_bytes,
    export_sequence_onnx_bytes,
    graph_difference,
    output_names,
    step_output_names,
)
from affectlens.models.weights import load_weights
from affectlens.runtime.card import INPUT_NAME, ModelCard, is_sequence_model, sidecar_path, write_card

__all__ = ["export_onnx"]


def export_onnx(weights: str | Path, output: str | Path, opset: int = OPSET, check: bool = True) -> dict:
    """Write ``output`` (.onnx) and its ``.json`` sidecar for a ``.safetensors`` model.

    With ``check`` the graph is run on random input and compared with PyTorch; the largest
    difference is stored in the sidecar (``extra.onnx.max_abs_diff``). Returns a summary dict
    (paths, sizes, difference).
    """
    weights = Path(weights)
    if weights.suffix == ".onnx":
        raise AffectlensError(f"{weights}: already an ONNX model; export needs a .safetensors model")
    model, card = load_weights(weights)
    output = Path(output)
    if output.suffix != ".onnx":
        output = output.with_suffix(".onnx")
    if output.resolve() == weights.resolve():
        raise AffectlensError(f"{output}: refusing to overwrite the source weights")
    output.parent.mkdir(parents=True, exist_ok=True)
    if is_sequence_model(card):
        return _export_sequence(model, card, weights, output, opset, check)
    data = export_onnx_bytes(model, card, opset)
    output.write_bytes(data)
    diff = graph_difference(model, card, data) if check else None
    onnx_card = ModelCard.from_dict(card.to_dict())
    onnx_card.extra = {
        **card.extra,
        "onnx": {
            "opset": opset,
            "input": INPUT_NAME,
            "outputs": output_names(card),
            "source": weights.name,
            "max_abs_diff": diff,
            "preprocessing": "uint8 face -> centre crop input_size -> /255 -> normalization -> NCHW float32",
        },
    }
    sidecar = sidecar_path(output)
    write_card(onnx_card, sidecar)
    return {"onnx": str(output), "sidecar": str(sidecar), "bytes": len(data), "max_abs_diff": diff}


def _export_sequence(model, card: ModelCard, weights: Path, output: Path, opset: int,  # type: ignore[no-untyped-def]
                     check: bool) -> dict:
    """A CNN-GRU: ``output`` holds the per-frame CNN, ``<stem>.step.onnx`` one GRU step; one sidecar.

    With ``check`` a random 12-frame sequence of 3 faces is streamed through both graphs and
    through the torch model's windows forward; the largest difference goes into the sidecar.
    """
    from affectlens.runtime.sequence import step_graph_path

    frame, step = export_sequence_onnx_bytes(model, card, opset)
    step_path = step_graph_path(output)
    output.write_bytes(frame)
    step_path.write_bytes(step)
    diff = sequence_graph_difference(model, card, frame, step) if check else None
    onnx_card = ModelCard.from_dict(card.to_dict())
    onnx_card.extra = {
        **card.extra,
        "onnx": {"opset": opset, "input": INPUT_NAME, "outputs": ["features"], "step_graph": step_path.name,
                 "step_outputs": step_output_names(card), "source": weights.name, "max_abs_diff": diff,
                 "preprocessing": "uint8 face -> centre crop input_size -> /255 -> normalization -> NCHW float32; "
                                  "frame graph -> features; step graph (features, state) -> outputs, next state"},
    }
    sidecar = sidecar_path(output)
    write_card(onnx_card, sidecar)
    return {"onnx": str(output), "step": str(step_path), "sidecar": str(sidecar),
            "bytes": len(frame) + len(step), "max_abs_diff": diff}


def sequence_graph_difference(model, card: ModelCard, frame: bytes, step: bytes,  # type: ignore[no-untyped-def]
                              faces: int = 3, frames: int = 12) -> float:
    """Largest |ONNX streaming - torch windows| over probabilities and valence/arousal, random input."""
    import numpy as np
    import torch

    from affectlens.models.prediction.head import split_outputs
    from affectlens.runtime.sequence import onnx_sequence_classifier

    rng = np.random.default_rng(0)
    x = rng.standard_normal((faces, frames, card.in_channels, card.input_size, card.input_size)).astype(np.float32)
    runner = onnx_sequence_classifier(Path("exported graphs"), card, frame, step, num_threads=1)
    states = runner.initial_states(faces)
    probs, vas = [], []
    for t in range(frames):
        p, v, states = runner._step_features(runner._frame(x[:, t]), states)
        probs.append(p)
        vas.append(v)
    with torch.inference_mode():
        logits, va = split_outputs(model.cpu().eval()(torch.from_numpy(x)).float(), card.num_classes)
        torch_probs = torch.softmax(logits, dim=-1).numpy()
    diff = float(np.abs(np.stack(vas, 1) - va.numpy()).max())
    if card.num_classes:
        diff = max(diff, float(np.abs(np.stack(probs, 1) - torch_probs).max()))
    return diff
