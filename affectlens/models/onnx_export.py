"""In-memory ONNX export of a model's prediction head, and the check that the graph matches torch.

The graph is :class:`~affectlens.models.prediction.head.ProbabilityHead` traced as it is: it takes
the *normalised* ``(B, C, s, s)`` float32 crop (s = the card's ``input_size``; the batch axis is
dynamic) and returns softmax probabilities, plus a ``valence_arousal`` output for models that
predict them. Cropping and normalisation stay outside the graph, in
:func:`~affectlens.models.prediction.steps.preprocess`, so both backends share them and the card
remains their single description.

The export runs in memory when a ``.safetensors`` model is loaded with the ONNX Runtime backend:
for these small CNNs it takes well under a second, and nothing is written beside the weights
(which may sit in a read-only site-packages). Writing ``.onnx`` files is
:func:`affectlens.inference.export.export_onnx`.
"""

from __future__ import annotations

import copy
import io
import warnings

import numpy as np
import torch
from torch import nn

from affectlens.models.card import INPUT_NAME, PROBS_NAME, VA_NAME, ModelCard, has_valence_arousal
from affectlens.models.prediction.head import ProbabilityHead, torch_forward
from affectlens.utils.onnx_session import create_session

OPSET = 17


def output_names(card: ModelCard) -> list[str]:
    """The graph's outputs: probabilities, and valence/arousal for models that predict them."""
    return [PROBS_NAME, VA_NAME] if has_valence_arousal(card) else [PROBS_NAME]


def export_onnx_bytes(model: nn.Module, card: ModelCard, opset: int = OPSET) -> bytes:
    """Serialise ``model``'s probability head (eval mode, CPU) to ONNX bytes with a dynamic batch axis."""
    head = ProbabilityHead.for_card(copy.deepcopy(model).cpu().eval(), card)
    dummy = torch.zeros(2, card.in_channels, card.input_size, card.input_size)
    names = output_names(card)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about python control flow are expected
        torch.onnx.export(
            head,
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


def graph_difference(model: nn.Module, card: ModelCard, graph: bytes, samples: int = 16) -> float:
    """Largest |onnx - torch| over every output, on random normalised crops (seeded).

    Random normal inputs reach further from the training distribution than real faces do, so an
    operator the export gets wrong shows up here even when real faces would hide it.
    """
    rng = np.random.default_rng(0)
    x = rng.standard_normal((samples, card.in_channels, card.input_size, card.input_size)).astype(np.float32)
    session = create_session(graph, "the exported graph", num_threads=1)
    onnx_outputs = session.run(output_names(card), {INPUT_NAME: x})
    probs, va = torch_forward(ProbabilityHead.for_card(copy.deepcopy(model).cpu(), card))(x)
    torch_outputs = [probs] if va is None else [probs, va]
    return max(float(np.abs(a - b).max()) for a, b in zip(onnx_outputs, torch_outputs, strict=True))
