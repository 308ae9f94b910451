"""Classifier backends: aligned uint8 faces in, class probabilities (and valence/arousal) out.

Every classifier takes ``(N, S, S, C)`` uint8 faces (S = the card's ``image_size``, C its
``in_channels``, as :func:`affectlens.faces.align_faces` produces them). The two backends differ
only in what runs the network: :meth:`NetworkClassifier.run` prepares the input with
:func:`~affectlens.runtime.steps.preprocess` and averages ten-crop views for both.

- :class:`OnnxClassifier` (default on CPU): ONNX Runtime, 1.5-2x faster than torch eager on
  small CNNs here, and never imports torch when the model ships an ``.onnx`` graph. Given only a
  ``.safetensors`` model it exports the graph in memory at load time.
- ``TorchClassifier`` (:mod:`affectlens.models.prediction.torch_backend`, found by name through
  :mod:`.torch_bridge`): PyTorch eager (any device torch supports), running the module the export
  traces.
- :class:`EnsembleClassifier`: an ensemble card's members, each a classifier of the chosen
  backend with its own input preparation, their probabilities averaged with the card's weights.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from affectlens.data.preprocessing import Normalization
from affectlens.errors import AffectlensError
from affectlens.runtime.card import (
    INPUT_NAME,
    PROBS_NAME,
    VA_NAME,
    ModelCard,
    has_valence_arousal,
    read_card,
)
from affectlens.runtime.ensemble_card import weighted_mean
from affectlens.runtime.steps import DEFAULT_BATCH_SIZE, run_batches
from affectlens.runtime.torch_bridge import torch_backend
from affectlens.utils.onnx_session import create_session

log = logging.getLogger(__name__)

def exported_from(onnx_path: Path, weights: Path) -> bool:
    """Whether the shared sidecar says ``onnx_path`` was exported from these very weights.

    Saving new weights rewrites the sidecar without the ``onnx`` entry, so a stale graph beside
    retrained weights is never used; file times are not trusted (a git checkout reorders them).
    """
    try:
        return read_card(onnx_path).extra.get("onnx", {}).get("source") == weights.name
    except AffectlensError:
        return False


class Classifier(ABC):
    """One interface for every backend and for ensembles: :meth:`predict` and :meth:`run`."""

    backend: str = ""

    def __init__(self, card: ModelCard, source: Path, ten_crop: bool = False,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.card = card
        self.source = source
        self.ten_crop = bool(ten_crop)
        #: also run the mirrored face and average (the card's ``mirror``, or an ensemble card's for all
        #: its members; nothing more with ten-crop)
        self.mirror = bool(card.mirror)
        self.batch_size = int(batch_size)
        self.valence_arousal = has_valence_arousal(card)
        self.load_seconds = 0.0

    @property
    def class_names(self) -> list[str]:
        return list(self.card.class_names)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source.name}, {self.card.architecture}, ten_crop={self.ten_crop})"

    def check_faces(self, faces: np.ndarray) -> np.ndarray:
        """Validate the ``(N, S, S, C)`` uint8 batch against the model card."""
        card = self.card
        if not isinstance(faces, np.ndarray) or faces.dtype != np.uint8 or faces.ndim != 4:
            shape = getattr(faces, "shape", None)
            raise AffectlensError(f"faces must be a uint8 (N, S, S, C) array, got {type(faces).__name__} {shape}")
        if faces.shape[1:] != (card.image_size, card.image_size, card.in_channels):
            raise AffectlensError(
                f"faces must be (N, {card.image_size}, {card.image_size}, {card.in_channels}) for model "
                f"{self.source.name}, got {faces.shape}"
            )
        return faces

    @abstractmethod
    def run(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities ``(N, K)`` float32 and valence/arousal ``(N, 2)`` (None if not predicted)."""

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities ``(N, K)`` for uint8 faces ``(N, S, S, C)``."""
        return self.run(faces)[0]


class AdjustedClassifier(Classifier):
    """Any classifier (network or ensemble) whose class probabilities are mapped after it answers.

    The one shape of every post-hoc step (prior correction, temperature): the wrapped classifier
    answers, :meth:`adjust` maps its probabilities, valence and arousal pass through unchanged.
    """

    def __init__(self, inner: Classifier) -> None:
        super().__init__(inner.card, inner.source, inner.ten_crop, inner.batch_size)
        self.inner = inner
        self.mirror = inner.mirror
        self.backend = inner.backend
        self.load_seconds = inner.load_seconds

    @abstractmethod
    def adjust(self, probs: np.ndarray) -> np.ndarray:
        """The mapped ``(N, K)`` probabilities."""

    def run(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        probs, va = self.inner.run(faces)
        return self.adjust(probs), va


class NetworkClassifier(Classifier):
    """One network: the input is prepared by the shared steps, only :meth:`_forward` differs by backend."""

    def __init__(self, card: ModelCard, source: Path, ten_crop: bool = False,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        super().__init__(card, source, ten_crop, batch_size)
        self.normalization = Normalization.from_dict(card.normalization)

    def run(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return run_batches(
            self.check_faces(faces), self._forward, self.card.input_size, self.normalization,
            ten_crop=self.ten_crop, batch_size=self.batch_size, num_classes=self.card.num_classes,
            valence_arousal=self.valence_arousal, mirror=self.mirror,
        )

    @abstractmethod
    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities (and valence/arousal) for a normalised float32 batch ``(B, C, s, s)``."""


class OnnxClassifier(NetworkClassifier):
    """ONNX Runtime on CPU, through :func:`affectlens.utils.onnx_session.create_session`.

    ``num_threads`` is the intra-op pool (default: up to 4 cores). Spinning is off by default:
    in the video loop the classifier runs once per frame between detector calls, and idle
    spinning threads would steal the cores the detector and the decoder need.
    """

    backend = "onnx"

    def __init__(
        self,
        model_bytes_or_path: bytes | Path,
        card: ModelCard,
        source: Path,
        ten_crop: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
        num_threads: int | None = None,
        spinning: bool = False,
    ) -> None:
        super().__init__(card, source, ten_crop, batch_size)
        self.session = create_session(model_bytes_or_path, source, num_threads, spinning)
        names = [o.name for o in self.session.get_outputs()]
        if self.valence_arousal and VA_NAME not in names:
            raise AffectlensError(f"{source}: card says valence/arousal but the graph has no '{VA_NAME}' output")
        self._outputs = [PROBS_NAME, VA_NAME] if self.valence_arousal else [names[0]]
        self._input = self.session.get_inputs()[0].name or INPUT_NAME

    @classmethod
    def from_path(
        cls,
        path: str | Path,
        ten_crop: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
        num_threads: int | None = None,
        spinning: bool = False,
    ) -> OnnxClassifier:
        """Load an ``.onnx`` file, or export a ``.safetensors`` model in memory first."""
        path = Path(path)
        started = time.perf_counter()
        exported = path.with_suffix(".onnx")
        if path.suffix != ".onnx" and exported.exists() and exported_from(exported, path):
            path = exported  # an export shipped beside the weights: no torch import, no export at load
        if path.suffix == ".onnx":
            if not path.exists():
                raise AffectlensError(f"{path}: model file does not exist")
            card = read_card(path)
            model: bytes | Path = path
        else:
            model, card = torch_backend("exporting a .safetensors model to ONNX").onnx_graph_from_weights(path)
        out = cls(model, card, path, ten_crop, batch_size, num_threads, spinning)
        out.load_seconds = time.perf_counter() - started
        log.info("loaded %s on ONNX Runtime in %.2f s", path.name, out.load_seconds)
        return out

    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        outs = self.session.run(self._outputs, {self._input: x})
        return outs[0], (outs[1] if len(outs) > 1 else None)


class EnsembleClassifier(Classifier):
    """The weighted mean of its members' probabilities (an ensemble card, :mod:`affectlens.runtime.ensemble_card`).

    Each member is a classifier of its own (same backend), so each prepares its own input from the
    shared aligned faces: its crop size, normalisation and views (ten-crop, or the face and its mirror
    image when the card says ``mirror``).
    """

    def __init__(self, card: ModelCard, source: Path, members: list[Classifier], weights: list[float],
                 ten_crop: bool = False, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        super().__init__(card, source, ten_crop, batch_size)
        self.members = members
        self.weights = [float(w) for w in weights]
        self.backend = members[0].backend

    def run(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        faces = self.check_faces(faces)
        return weighted_mean((member.predict(faces) for member in self.members), self.weights), None
