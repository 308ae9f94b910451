"""``affectlens export``: write a model's ONNX graph as a file, with its model card as the sidecar.

The graph itself comes from :func:`affectlens.models.onnx_export.export_onnx_bytes` (the same
export the ONNX Runtime backend runs in memory); this module adds what a file on disk needs: the
sidecar card that says which weights it came from (so a stale graph beside retrained weights is
never loaded) and, with ``check``, how far it is from torch.
"""

from __future__ import annotations

import json
from pathlib import Path

from affectlens.errors import AffectlensError
from affectlens.models.card import INPUT_NAME, ModelCard, sidecar_path
from affectlens.models.onnx_export import OPSET, export_onnx_bytes, graph_difference, output_names
from affectlens.models.weights import load_weights

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
    data = export_onnx_bytes(model, card, opset)
    output.parent.mkdir(parents=True, exist_ok=True)
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
    sidecar.write_text(json.dumps(onnx_card.to_dict(), indent=2) + "\n")
    return {"onnx": str(output), "sidecar": str(sidecar), "bytes": len(data), "max_abs_diff": diff}
