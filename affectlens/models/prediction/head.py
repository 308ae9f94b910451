"""The torch half of the prediction path: one module from a normalised batch to probabilities.

:class:`ProbabilityHead` is what the ONNX export traces (:mod:`affectlens.models.onnx_export`)
and what torch runs in the predictor, in evaluation and in training validation, so "logits ->
probabilities (and valence/arousal)" is written once. Inputs come from
:func:`~affectlens.models.prediction.steps.preprocess`, the same NumPy step ONNX Runtime uses.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from affectlens.data.preprocessing import Normalization
from affectlens.models.card import ModelCard, has_valence_arousal
from affectlens.models.prediction.steps import Forward, run_batches


class ProbabilityHead(nn.Module):
    """Wraps a model so that it returns probabilities (and valence/arousal) instead of logits.

    The softmax covers the first ``num_classes`` outputs (all of them when ``None``); a
    valence/arousal model's next two outputs are returned as they are, as a second tensor.
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
        out = self.model(x)
        logits = out if self.num_classes is None else out[:, : self.num_classes]
        probs = torch.softmax(logits.float(), dim=1)
        if self.valence_arousal and self.num_classes is not None:  # __init__ ensures the second
            k = self.num_classes
            return probs, out[:, k : k + 2].float()
        return probs


def torch_forward(head: ProbabilityHead, device: torch.device | str = "cpu") -> Forward:
    """A runner for :func:`~affectlens.models.prediction.steps.run_batches`: NumPy in, NumPy out."""
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
    batch_size: int = 256,
    ten_crop: bool = False,
    device: torch.device | str = "cpu",
    num_classes: int | None = None,
) -> np.ndarray:
    """Probabilities ``(N, K)`` of a torch model for uint8 faces ``(N, S, S, C)`` or an EmotionDataset.

    For training validation and evaluation, which hold a model rather than a weights file; the
    model is left in eval mode. ``num_classes`` limits the softmax to the class logits of a model
    that also outputs valence and arousal.
    """
    forward = torch_forward(ProbabilityHead(model, num_classes), device)
    probs, _ = run_batches(faces, forward, input_size, normalization, ten_crop=ten_crop, batch_size=batch_size,
                           num_classes=num_classes)
    return probs
