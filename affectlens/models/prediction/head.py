"""The torch half of the prediction path: one module from a normalised batch to probabilities.

:class:`ProbabilityHead` is what the ONNX export traces (:mod:`affectlens.models.onnx_export`)
and what torch runs in the predictor, in evaluation and in training validation, so "logits ->
probabilities (and valence/arousal)" is written once. Inputs come from
:func:`~affectlens.runtime.steps.preprocess`, the same NumPy step ONNX Runtime uses.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from affectlens.data.preprocessing import Normalization
from affectlens.runtime.card import ModelCard, has_valence_arousal
from affectlens.runtime.steps import DEFAULT_BATCH_SIZE, Forward, run_batches


def split_outputs(out: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(..., K + 2)`` raw model outputs -> class logits ``(..., K)`` and valence/arousal ``(..., 2)``.

    Valence and arousal go through tanh so every prediction lies in [-1, 1], the range of the
    annotations; the loss (:mod:`affectlens.training.losses`), the prediction head and the ONNX
    graphs all take them from here, so training and inference see the same squashing.
    """
    return out[..., :num_classes], torch.tanh(out[..., num_classes : num_classes + 2].float())


class ProbabilityHead(nn.Module):
    """Wraps a model so that it returns probabilities (and valence/arousal) instead of logits.

    The softmax covers the first ``num_classes`` outputs (all of them when ``None``); a
    valence/arousal model's next two outputs are returned after tanh (:func:`split_outputs`), as a
    second tensor.
    """

    def __init__(self, model: nn.Module, num_classes: int | None = None, valence_arousal: bool = False) -> None:
        super().__init__()
        if valence_arousal and num_classes is None:
            raise ValueError("a valence/arousal head needs num_classes: valence and arousal follow the class logits")
        self.model = model
        self.num_classes = num_classes
        self.valence_arousal = valence_arousal

    @classmethod
    def for_card(cls, model: nn.Module, card: ModelCard) -> ProbabilityHead:
        """The head a model card describes (K classes, plus valence/arousal when its task says so)."""
        return cls(model, card.num_classes, has_valence_arousal(card))

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        return probabilities_from_outputs(self.model(x), self.num_classes, self.valence_arousal)


def probabilities_from_outputs(out: torch.Tensor, num_classes: int | None, valence_arousal: bool
                               ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Softmax over the class logits of raw outputs ``(B, K[+2])``, plus tanh valence/arousal."""
    if valence_arousal and num_classes is not None:
        logits, va = split_outputs(out, num_classes)
        return torch.softmax(logits.float(), dim=1), va
    logits = out if num_classes is None else out[:, :num_classes]
    return torch.softmax(logits.float(), dim=1)


def torch_forward(head: ProbabilityHead, device: torch.device | str = "cpu") -> Forward:
    """A runner for :func:`~affectlens.runtime.steps.run_batches`: NumPy in, NumPy out."""
    head.eval()

    def forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        with torch.inference_mode():
            out = head(torch.from_numpy(x).to(device))
        probs, va = out if isinstance(out, tuple) else (out, None)
        return probs.cpu().numpy(), None if va is None else va.cpu().numpy()

    return forward


def predict_probabilities(
    model: nn.Module,
    faces: np.ndarray | Any,
    normalization: Normalization,
    input_size: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    ten_crop: bool = False,
    device: torch.device | str = "cpu",
    num_classes: int | None = None,
    mirror: bool = False,
) -> np.ndarray:
    """Probabilities ``(N, K)`` of a torch model for uint8 faces ``(N, S, S, C)`` or an EmotionDataset
    (``mirror``: averaged with the mirror image, see :func:`~affectlens.runtime.steps.preprocess`).

    For training validation and evaluation, which hold a model rather than a weights file; the
    model is left in eval mode. ``num_classes`` limits the softmax to the class logits of a model
    that also outputs valence and arousal.
    """
    forward = torch_forward(ProbabilityHead(model, num_classes), device)
    probs, _ = run_batches(faces, forward, input_size, normalization, ten_crop=ten_crop, batch_size=batch_size,
                           num_classes=num_classes, mirror=mirror)
    return probs
