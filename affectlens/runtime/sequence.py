"""Streaming prediction for CNN-RNN models: the per-frame CNN, then one GRU step per face and frame.

A face track's memory is its GRU state ``(layers, hidden)``, kept by the caller (the video
tracker keeps one per track), so a video of any length runs in constant memory:
:meth:`SequenceClassifier.step` takes this frame's aligned faces and their states and returns the
outputs and the next states. A still photo has no past; following the thesis this builds on, its
face is read as a sequence of the same image repeated (the training window length, from the card)
and the last step is taken: the CNN runs once, the GRU ``length`` times.

Two backends behind one interface, as for per-frame models: ONNX Runtime runs the exported frame
and step graphs (no torch import when they are files), torch runs the model itself. Importing this
module does not import torch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from affectlens.data.preprocessing import Normalization
from affectlens.errors import AffectlensError
from affectlens.runtime.card import (
    INPUT_NAME,
    PROBS_NAME,
    SEQUENCE_KEY,
    VA_NAME,
    ModelCard,
    read_card,
)
from affectlens.runtime.classifiers import Classifier
from affectlens.runtime.steps import DEFAULT_BATCH_SIZE, preprocess
from affectlens.runtime.torch_bridge import torch_backend
from affectlens.utils.onnx_session import create_session

#: ONNX tensor names of the graphs (written by affectlens.models.onnx_export)
FEATURES_NAME = "features"
STATE_NAME = "state"
NEXT_STATE_NAME = "next_state"
#: suffix of the step graph beside the frame graph: model.onnx + model.step.onnx
STEP_SUFFIX = ".step.onnx"

FrameForward = Callable[[np.ndarray], np.ndarray]
#: features (N, F), states (layers, N, hidden) -> probabilities (N, K), valence/arousal (N, 2), next states
StepForward = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def step_graph_path(frame_graph: Path) -> Path:
    """Where the step graph of ``model.onnx`` lies: ``model.step.onnx``."""
    return frame_graph.with_suffix(STEP_SUFFIX)


class SequenceClassifier(Classifier):
    """A CNN-GRU model: :meth:`step` for videos (state per face), :meth:`run` for photos (repeated image)."""

    def __init__(self, card: ModelCard, source: Path, frame_forward: FrameForward, step_forward: StepForward,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        super().__init__(card, source, ten_crop=False, batch_size=batch_size)
        self.normalization = Normalization.from_dict(card.normalization)
        sequence = card.extra[SEQUENCE_KEY]
        self.length = int(sequence.get("length", 80))
        self.state_shape = tuple(int(v) for v in sequence["state_shape"])
        self._frame = frame_forward
        self._step = step_forward
        self.valence_arousal = True

    def initial_states(self, n: int) -> np.ndarray:
        """Zero states ``(n, layers, hidden)`` for ``n`` new faces."""
        return np.zeros((n, *self.state_shape), np.float32)

    def features(self, faces: np.ndarray) -> np.ndarray:
        """CNN features ``(N, F)`` of aligned uint8 faces ``(N, S, S, C)``."""
        x = preprocess(self.check_faces(faces), self.card.input_size, self.normalization)
        return np.asarray(self._frame(x), np.float32)

    def step(self, faces: np.ndarray, states: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One frame: faces ``(N, S, S, C)`` and their states ``(N, layers, hidden)`` ->
        probabilities ``(N, K)``, valence/arousal ``(N, 2)``, next states ``(N, layers, hidden)``."""
        if len(faces) == 0:
            return self._empty() + (self.initial_states(0),)
        return self._step_features(self.features(faces), states)

    def run(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Photos: each face repeated as a sequence of the card's window length; the last step's output."""
        if len(faces) == 0:
            return self._empty()
        features = self.features(faces)
        states = self.initial_states(len(faces))
        for _ in range(self.length):
            probs, va, states = self._step_features(features, states)
        return probs, va

    def _step_features(self, features: np.ndarray, states: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        probs, va, next_states = self._step(features, np.ascontiguousarray(states.transpose(1, 0, 2), np.float32))
        return (np.asarray(probs, np.float32), np.asarray(va, np.float32),
                np.ascontiguousarray(next_states.transpose(1, 0, 2), np.float32))

    def _empty(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((0, self.card.num_classes), np.float32), np.zeros((0, 2), np.float32)

    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:  # pragma: no cover - run() replaces it
        raise AffectlensError("a sequence model runs through step() or run(), not one forward pass")


def onnx_sequence_classifier(path: Path, card: ModelCard, frame_graph: bytes | Path, step_graph: bytes | Path,
                             batch_size: int = DEFAULT_BATCH_SIZE,
                             num_threads: int | None = None) -> SequenceClassifier:
    """ONNX Runtime over the frame graph and the step graph."""
    frame = create_session(frame_graph, path, num_threads)
    step = create_session(step_graph, step_graph if isinstance(step_graph, Path) else path, num_threads)
    outputs = [o.name for o in step.get_outputs()]
    with_classes = PROBS_NAME in outputs
    k = card.num_classes

    def frame_forward(x: np.ndarray) -> np.ndarray:
        return frame.run([FEATURES_NAME], {INPUT_NAME: x})[0]

    def step_forward(features: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        names = ([PROBS_NAME] if with_classes else []) + [VA_NAME, NEXT_STATE_NAME]
        out = step.run(names, {FEATURES_NAME: features, STATE_NAME: state})
        probs = out[0] if with_classes else np.zeros((len(features), k), np.float32)
        return probs, out[-2], out[-1]

    classifier = SequenceClassifier(card, path, frame_forward, step_forward, batch_size)
    classifier.backend = "onnx"
    return classifier


def load_onnx_sequence(path: Path, batch_size: int = DEFAULT_BATCH_SIZE,
                       num_threads: int | None = None) -> SequenceClassifier:
    """From files: ``model.onnx`` (frame graph, with its card) and ``model.step.onnx``; no torch."""
    started = time.perf_counter()
    step = step_graph_path(path)
    if not step.exists():
        raise AffectlensError(f"{path}: a sequence model needs its step graph {step.name} beside it")
    classifier = onnx_sequence_classifier(path, read_card(path), path, step, batch_size, num_threads)
    classifier.load_seconds = time.perf_counter() - started
    return classifier


def export_sequence_classifier(weights: Path, batch_size: int = DEFAULT_BATCH_SIZE,
                               num_threads: int | None = None) -> SequenceClassifier:
    """From ``.safetensors``: export both graphs in memory, then ONNX Runtime."""
    started = time.perf_counter()
    backend = torch_backend("a CNN-GRU model without its exported graphs")
    card, frame, step = backend.sequence_graphs_from_weights(weights)
    classifier = onnx_sequence_classifier(weights, card, frame, step, batch_size, num_threads)
    classifier.load_seconds = time.perf_counter() - started
    return classifier
