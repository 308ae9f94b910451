"""In-memory ONNX export of a model's prediction head, and the check that the graph matches torch.

The graph is :class:`~affectlens.models.prediction.head.ProbabilityHead` traced as it is: it takes
the *normalised* ``(B, C, s, s)`` float32 crop (s = the card's ``input_size``; the batch axis is
dynamic) and returns softmax probabilities, plus a ``valence_arousal`` output for models that
predict them. Cropping and normalisation stay outside the graph, in
:func:`~affectlens.runtime.steps.preprocess`, so both backends share them and the card
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

from affectlens.models.prediction.head import ProbabilityHead, torch_forward
from affectlens.runtime.card import INPUT_NAME, PROBS_NAME, VA_NAME, ModelCard, has_valence_arousal
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


# --------------------------------------------------------------------------------------------------
# CNN-RNN models: two graphs, the per-frame CNN and one GRU step
# --------------------------------------------------------------------------------------------------

#: names of the sequence graphs' tensors (the frame graph takes INPUT_NAME)
FEATURES_NAME = "features"
STATE_NAME = "state"
NEXT_STATE_NAME = "next_state"


class _FrameGraph(nn.Module):
    """Normalised faces ``(N, C, s, s)`` -> CNN features ``(N, F)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.frame_features(x)


class _StepGraph(nn.Module):
    """Features ``(N, F)`` and states ``(layers, N, hidden)`` -> [probabilities,] valence/arousal, next states."""

    def __init__(self, model: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.model = model
        self.num_classes = num_classes

    def forward(self, features: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        from affectlens.models.prediction.head import split_outputs

        out, next_state = self.model.step(features, state)
        logits, va = split_outputs(out, self.num_classes)
        if self.num_classes:
            return torch.softmax(logits.float(), dim=1), va, next_state
        return va, next_state


def step_output_names(card: ModelCard) -> list[str]:
    """The step graph's outputs: probabilities (models with classes), valence/arousal, next state."""
    return ([PROBS_NAME] if card.num_classes else []) + [VA_NAME, NEXT_STATE_NAME]


def export_sequence_onnx_bytes(model: nn.Module, card: ModelCard, opset: int = OPSET) -> tuple[bytes, bytes]:
    """The frame graph and the step graph of a CNN-GRU (eval mode, CPU), both with a dynamic face axis."""
    model = copy.deepcopy(model).cpu().eval()
    x = torch.zeros(2, card.in_channels, card.input_size, card.input_size)
    with torch.no_grad():
        features = model.frame_features(x)
    state = model.initial_state(2)
    frame = _export(_FrameGraph(model), (x,), [INPUT_NAME], [FEATURES_NAME],
                    {INPUT_NAME: {0: "faces"}, FEATURES_NAME: {0: "faces"}}, opset)
    names = step_output_names(card)
    axes = {FEATURES_NAME: {0: "faces"}, STATE_NAME: {1: "faces"}, NEXT_STATE_NAME: {1: "faces"},
            **{n: {0: "faces"} for n in names if n != NEXT_STATE_NAME}}
    step = _export(_StepGraph(model, card.num_classes), (features, state), [FEATURES_NAME, STATE_NAME], names,
                   axes, opset)
    return frame, step


def _export(module: nn.Module, args: tuple, inputs: list[str], outputs: list[str], axes: dict, opset: int) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and GRU batch-size warnings are expected
        torch.onnx.export(module, args, buffer, input_names=inputs, output_names=outputs, dynamic_axes=axes,
                          opset_version=opset, dynamo=False, do_constant_folding=True)
    return buffer.getvalue()
