"""The torch half of prediction, which the torch-free runtime looks up by name
(:mod:`affectlens.runtime.torch_bridge`): PyTorch eager classifiers and in-memory ONNX export of
``.safetensors`` weights. Everything here runs the same preprocessing and head as the runtime and
the export (:mod:`affectlens.runtime.steps`, :class:`~affectlens.models.prediction.head.ProbabilityHead`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from affectlens.errors import AffectlensError
from affectlens.models.onnx_export import export_onnx_bytes, export_sequence_onnx_bytes
from affectlens.models.prediction.head import ProbabilityHead, split_outputs, torch_forward
from affectlens.models.weights import load_weights
from affectlens.runtime.card import ModelCard
from affectlens.runtime.classifiers import NetworkClassifier
from affectlens.runtime.sequence import SequenceClassifier
from affectlens.runtime.steps import DEFAULT_BATCH_SIZE


class TorchClassifier(NetworkClassifier):
    """PyTorch eager; ``device`` is anything torch accepts (``cpu``, ``cuda``, ``mps``)."""

    backend = "torch"

    def __init__(
        self, path: str | Path, device: str = "cpu", ten_crop: bool = False, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> None:
        path = Path(path)
        if path.suffix == ".onnx":
            raise AffectlensError(f"{path}: the torch backend needs a .safetensors model; use backend='onnx'")
        started = time.perf_counter()
        model, card = load_weights(path, device=device)
        super().__init__(card, path, ten_crop, batch_size)
        self.model = model
        self.device = device
        self._run_head = torch_forward(ProbabilityHead.for_card(model, card), device)
        self.load_seconds = time.perf_counter() - started

    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return self._run_head(x)


def onnx_graph_from_weights(path: Path) -> tuple[bytes, ModelCard]:
    """The ONNX graph of ``.safetensors`` weights, exported in memory, and their card."""
    model, card = load_weights(path)
    return export_onnx_bytes(model, card), card


def sequence_graphs_from_weights(path: Path) -> tuple[ModelCard, bytes, bytes]:
    """A CNN-GRU's card, frame graph and step graph, exported in memory from ``.safetensors`` weights."""
    model, card = load_weights(path)
    frame, step = export_sequence_onnx_bytes(model, card)
    return card, frame, step


def torch_sequence_classifier(weights: Path, device: str = "cpu",
                              batch_size: int = DEFAULT_BATCH_SIZE) -> SequenceClassifier:
    """PyTorch eager on any device."""
    started = time.perf_counter()
    model, card = load_weights(weights, device=device)
    k = card.num_classes

    def frame_forward(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model.frame_features(torch.from_numpy(x).to(device)).float().cpu().numpy()

    def step_forward(features: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with torch.inference_mode():
            out, next_state = model.step(torch.from_numpy(features).to(device), torch.from_numpy(state).to(device))
            logits, va = split_outputs(out.float(), k)
            return (torch.softmax(logits, dim=1).cpu().numpy(), va.cpu().numpy(), next_state.cpu().numpy())

    classifier = SequenceClassifier(card, weights, frame_forward, step_forward, batch_size)
    classifier.backend = "torch"
    classifier.load_seconds = time.perf_counter() - started
    return classifier
