"""Classifier backends: aligned uint8 faces in, class probabilities out.

Both backends take ``(N, S, S, C)`` uint8 faces (S = the card's ``image_size``, C its
``in_channels``, as :func:`affectlens.faces.align_faces` produces them) and apply the same steps
as :mod:`affectlens.inference.classify` (centre crop or ten-crop to ``input_size``, /255,
the card's normalisation, softmax), so a model behaves identically in training, evaluation and
the predictor:

- :class:`OnnxClassifier` (default on CPU): ONNX Runtime, 1.5-2x faster than torch eager on
  small CNNs here. Given a ``.safetensors`` model it exports the graph in memory at load time.
- :class:`TorchClassifier`: PyTorch eager (any device torch supports), reusing
  :func:`~affectlens.inference.classify.classify_tensor`.
"""

from __future__ import annotations

import logging
import os
import time
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from affectlens.data.crops import center_crop, ten_crop_views
from affectlens.data.preprocessing import Normalization
from affectlens.errors import AffectlensError, unknown_name_error
from affectlens.models.card import INPUT_NAME, PROBS_NAME, VA_NAME, ModelCard, has_valence_arousal, read_card

log = logging.getLogger(__name__)

BACKENDS = ("onnx", "torch")


def preprocess(
    faces: np.ndarray, input_size: int, normalization: Normalization, ten_crop: bool = False
) -> np.ndarray:
    """uint8 ``(N, S, S, C)`` -> normalised float32 ``(V*N, C, s, s)``, V = 10 with ten-crop else 1.

    Crops before converting to float, so only the pixels the model sees are converted.
    """
    nchw = faces.transpose(0, 3, 1, 2)
    if ten_crop and input_size < nchw.shape[-1]:
        views = np.stack(ten_crop_views(nchw, input_size))
        crops = views.reshape(-1, *views.shape[2:])
    else:
        crops = center_crop(nchw, input_size)
    x = np.ascontiguousarray(crops, dtype=np.float32)
    np.divide(x, np.float32(255.0), out=x)
    return np.ascontiguousarray(normalization.numpy(x), dtype=np.float32)


def _exported_from(onnx_path: Path, weights: Path) -> bool:
    """Whether the shared sidecar says ``onnx_path`` was exported from these very weights.

    Saving new weights rewrites the sidecar without the ``onnx`` entry, so a stale graph beside
    retrained weights is never used; file times are not trusted (a git checkout reorders them).
    """
    try:
        return read_card(onnx_path).extra.get("onnx", {}).get("source") == weights.name
    except AffectlensError:
        return False


class Classifier(ABC):
    """One interface for every backend: :meth:`predict` and :meth:`run`."""

    backend: str = ""

    def __init__(self, card: ModelCard, source: Path, ten_crop: bool = False, batch_size: int = 256) -> None:
        self.card = card
        self.source = source
        self.ten_crop = bool(ten_crop)
        self.batch_size = int(batch_size)
        self.normalization = Normalization.from_dict(card.normalization)
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
        n, h, w, c = faces.shape
        if (h, w, c) != (card.image_size, card.image_size, card.in_channels):
            raise AffectlensError(
                f"faces must be (N, {card.image_size}, {card.image_size}, {card.in_channels}) for model "
                f"{self.source.name}, got {faces.shape}"
            )
        return faces

    def run(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities ``(N, K)`` float32 and valence/arousal ``(N, 2)`` (None if not predicted)."""
        faces = self.check_faces(faces)
        k = self.card.num_classes
        probs = np.empty((len(faces), k), np.float32)
        va = np.empty((len(faces), 2), np.float32) if self.valence_arousal else None
        for start in range(0, len(faces), self.batch_size):
            chunk = faces[start : start + self.batch_size]
            p, v = self._run_batch(chunk)
            probs[start : start + len(chunk)] = p
            if va is not None and v is not None:
                va[start : start + len(chunk)] = v
        return probs, va

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities ``(N, K)`` for uint8 faces ``(N, S, S, C)``."""
        return self.run(faces)[0]

    def _average_views(
        self, probs: np.ndarray, va: np.ndarray | None, n: int
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Mean over ten-crop views (rows are view-major: ``(V*N, K)``)."""
        views = len(probs) // n if n else 1
        if views > 1:
            probs = probs.reshape(views, n, -1).mean(axis=0)
            va = None if va is None else va.reshape(views, n, -1).mean(axis=0)
        return probs, va

    @abstractmethod
    def _run_batch(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities (and valence/arousal) for at most ``batch_size`` faces."""


class OnnxClassifier(Classifier):
    """ONNX Runtime on CPU.

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
        batch_size: int = 256,
        num_threads: int | None = None,
        spinning: bool = False,
    ) -> None:
        super().__init__(card, source, ten_crop, batch_size)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(num_threads or min(4, os.cpu_count() or 1))
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        options.log_severity_level = 3
        model = str(model_bytes_or_path) if isinstance(model_bytes_or_path, Path) else model_bytes_or_path
        try:
            self.session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AffectlensError(f"{source}: cannot load ONNX model ({first})") from None
        names = [o.name for o in self.session.get_outputs()]
        self._outputs = [PROBS_NAME, VA_NAME] if self.valence_arousal and VA_NAME in names else [names[0]]
        if self.valence_arousal and VA_NAME not in names:
            raise AffectlensError(f"{source}: card says valence/arousal but the graph has no '{VA_NAME}' output")
        self._input = self.session.get_inputs()[0].name or INPUT_NAME

    @classmethod
    def from_path(
        cls,
        path: str | Path,
        ten_crop: bool = False,
        batch_size: int = 256,
        num_threads: int | None = None,
        spinning: bool = False,
    ) -> OnnxClassifier:
        """Load an ``.onnx`` file, or export a ``.safetensors`` model in memory first."""
        path = Path(path)
        started = time.perf_counter()
        exported = path.with_suffix(".onnx")
        if path.suffix != ".onnx" and exported.exists() and _exported_from(exported, path):
            path = exported  # an export shipped beside the weights: no torch import, no export at load
        if path.suffix == ".onnx":
            if not path.exists():
                raise AffectlensError(f"{path}: model file does not exist")
            card = read_card(path)
            model: bytes | Path = path
        else:
            from affectlens.inference.export import export_onnx_bytes
            from affectlens.models.weights import load_weights

            torch_model, card = load_weights(path)
            model = export_onnx_bytes(torch_model, card)
        out = cls(model, card, path, ten_crop, batch_size, num_threads, spinning)
        out.load_seconds = time.perf_counter() - started
        log.info("loaded %s on ONNX Runtime in %.2f s", path.name, out.load_seconds)
        return out

    def _run_batch(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        x = preprocess(faces, self.card.input_size, self.normalization, self.ten_crop)
        outs = self.session.run(self._outputs, {self._input: x})
        probs = outs[0].astype(np.float32, copy=False)
        va = outs[1].astype(np.float32, copy=False) if len(outs) > 1 else None
        return self._average_views(probs, va, len(faces))


class TorchClassifier(Classifier):
    """PyTorch eager; ``device`` is anything torch accepts (``cpu``, ``cuda``, ``mps``)."""

    backend = "torch"

    def __init__(
        self, path: str | Path, device: str = "cpu", ten_crop: bool = False, batch_size: int = 256
    ) -> None:
        path = Path(path)
        if path.suffix == ".onnx":
            raise AffectlensError(f"{path}: the torch backend needs a .safetensors model; use backend='onnx'")
        started = time.perf_counter()
        from affectlens.models.weights import load_weights

        model, card = load_weights(path, device=device)
        super().__init__(card, path, ten_crop, batch_size)
        self.model = model
        self.device = device
        self.load_seconds = time.perf_counter() - started

    def _run_batch(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        import torch

        from affectlens.data.augment import center_crop, ten_crop
        from affectlens.inference.classify import classify_tensor, faces_to_tensor

        images = faces_to_tensor(faces).to(self.device)
        size = self.card.input_size
        if not self.valence_arousal:
            probs = classify_tensor(self.model, images, self.normalization, size, self.ten_crop)
            return probs.cpu().numpy().astype(np.float32, copy=False), None
        # Valence/arousal models: the same crops, but softmax only over the class logits.
        k = self.card.num_classes
        with torch.inference_mode():
            if self.ten_crop and size < images.shape[-1]:
                x = ten_crop(images, size).flatten(0, 1)
            else:
                x = center_crop(images, size)
            out = self.model(self.normalization(x)).float()
            probs = torch.softmax(out[:, :k], dim=1).cpu().numpy()
            va = out[:, k : k + 2].cpu().numpy()
        return self._average_views(probs, va, len(faces))


def create_classifier(
    path: str | Path,
    backend: str = "onnx",
    device: str = "cpu",
    ten_crop: bool = False,
    batch_size: int = 256,
    num_threads: int | None = None,
) -> Classifier:
    """Build the classifier for a resolved model file (``.safetensors`` or ``.onnx``)."""
    if backend not in BACKENDS:
        raise unknown_name_error("inference backend", backend, BACKENDS)
    path = Path(path)
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    if backend == "onnx":
        if device not in ("cpu", "auto"):
            raise AffectlensError(f"the onnx backend runs on cpu only; use backend='torch' for device '{device}'")
        return OnnxClassifier.from_path(path, ten_crop, batch_size, num_threads)
    return TorchClassifier(path, device, ten_crop, batch_size)
