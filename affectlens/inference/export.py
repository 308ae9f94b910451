"""ONNX export of a trained model, with its model card as the JSON sidecar.

The exported graph takes the *normalised* ``(B, C, S, S)`` float32 crop (S = the card's
``input_size``; the batch axis is dynamic) and returns softmax probabilities, plus a
``valence_arousal`` output for models that predict them. Cropping and normalisation stay outside
the graph, in :mod:`affectlens.inference.backends`, so that both backends share one
preprocessing routine and the card remains the single description of it.

The same export runs in memory (:func:`export_onnx_bytes`) when a ``.safetensors`` model is
loaded with the ONNX Runtime backend: for these small CNNs it takes well under a second, and
nothing is written beside the weights (which may sit in a read-only site-packages).
"""

from __future__ import annotations

import copy
import io
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from affectlens.errors import AffectlensError
from affectlens.models.card import (
    INPUT_NAME,
    PROBS_NAME,
    VA_NAME,
    VA_TASK,
    ModelCard,
    has_valence_arousal,
    sidecar_path,
)

__all__ = ["INPUT_NAME", "PROBS_NAME", "VA_NAME", "VA_TASK", "export_onnx", "export_onnx_bytes", "has_valence_arousal"]

log = logging.getLogger(__name__)

OPSET = 17


class ProbabilityHead(nn.Module):
    """Wraps a model so that it returns probabilities (and valence/arousal) instead of logits."""

    def __init__(self, model: nn.Module, num_classes: int, valence_arousal: bool) -> None:
        super().__init__()
        self.model = model
        self.num_classes = num_classes
        self.valence_arousal = valence_arousal

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        out = self.model(x)
        probs = torch.softmax(out[:, : self.num_classes].float(), dim=1)
        if self.valence_arousal:
            return probs, out[:, self.num_classes : self.num_classes + 2].float()
        return probs


def output_names(card: ModelCard) -> list[str]:
    return [PROBS_NAME, VA_NAME] if has_valence_arousal(card) else [PROBS_NAME]


def export_onnx_bytes(model: nn.Module, card: ModelCard, opset: int = OPSET) -> bytes:
    """Serialise ``model`` (eval mode, CPU) to ONNX bytes with a dynamic batch axis."""
    wrapped = ProbabilityHead(copy.deepcopy(model).cpu().eval(), card.num_classes, has_valence_arousal(card))
    dummy = torch.zeros(2, card.in_channels, card.input_size, card.input_size)
    names = output_names(card)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about python control flow are expected
        torch.onnx.export(
            wrapped,
            (dummy,),
            buffer,
            input_names=[INPUT_NAME],
            output_names=names,
            dynamic_axes={INPUT_NAME: {0: "batch"}, **{name: {0: "batch"} for name in names}},
            opset_version=opset,
            dynamo=False,
            do_constant_folding=True,
        )
    return buffer.getvalue()


def export_onnx(weights: str | Path, output: str | Path, opset: int = OPSET, check: bool = True) -> dict:
    """Write ``output`` (.onnx) and its ``.json`` sidecar for a ``.safetensors`` model.

    With ``check`` the exported graph is run on random input and compared with PyTorch; the
    largest probability difference is stored in the sidecar (``extra.onnx.max_abs_diff``).
    Returns a summary dict (paths, sizes, difference).
    """
    from affectlens.models.weights import load_weights

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
    diff = None
    if check:
        diff = _max_difference(model, card, data)
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


def _max_difference(model: nn.Module, card: ModelCard, data: bytes) -> float:
    """Largest |p_onnx - p_torch| on a random batch of 16 normalised crops."""
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, card.in_channels, card.input_size, card.input_size)).astype(np.float32)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    onnx_probs = session.run([PROBS_NAME], {INPUT_NAME: x})[0]
    with torch.inference_mode():
        head = ProbabilityHead(model.cpu().eval(), card.num_classes, has_valence_arousal(card))
        out = head(torch.from_numpy(x))
        torch_probs = (out[0] if isinstance(out, tuple) else out).numpy()
    return float(np.abs(onnx_probs - torch_probs).max())
