"""The NumPy steps of the prediction path, shared by every runner (ONNX Runtime and torch).

A face becomes model input here and only here: centre crop (the centre crop and its mirror image,
or the ten crop views) to the card's ``input_size``, /255, the card's normalisation, float32 NCHW.
The runner turns that batch into probabilities (the ONNX graph or
:class:`~affectlens.models.prediction.head.ProbabilityHead`, the same head either way), and
:func:`average_views` folds the views back into one row per face. Training validation, evaluation,
the predictor and the export check therefore all see identical inputs, and ONNX Runtime and torch
agree to float rounding.

Nothing here imports torch: this is the default (ONNX Runtime) prediction path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from affectlens.data.crops import center_crop, ten_crop_views
from affectlens.data.preprocessing import Normalization

#: faces per forward pass everywhere (prediction, evaluation, validation): large enough to keep ONNX
#: Runtime and torch busy, small enough that a batch of ten-crop views stays a few hundred MB
DEFAULT_BATCH_SIZE = 256

#: a runner: normalised float32 ``(B, C, s, s)`` -> probabilities ``(B, K)`` and valence/arousal ``(B, 2)`` or None
Forward = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]


def uses_ten_crop(ten_crop: bool, input_size: int, image_size: int) -> bool:
    """Ten-crop only when there is something to crop: a full-size input has one view."""
    return bool(ten_crop) and input_size < image_size


def preprocess(
    faces: np.ndarray, input_size: int, normalization: Normalization, ten_crop: bool = False, mirror: bool = False
) -> np.ndarray:
    """uint8 ``(N, S, S, C)`` -> normalised float32 ``(V*N, C, s, s)``: V = 10 with ten-crop, 2 with
    ``mirror`` (the centre crop and its left-right mirror image), else 1.

    ``mirror`` is the cheap test-time augmentation (two views instead of ten); ten-crop already holds
    the mirrored crops, so ``mirror`` adds nothing to it. Rows are view-major (all faces of view 0,
    then view 1, ...), which :func:`average_views` relies on. Crops before converting to float, so
    only the pixels the model sees are converted.
    """
    nchw = faces.transpose(0, 3, 1, 2)
    if uses_ten_crop(ten_crop, input_size, nchw.shape[-1]):
        views = np.stack(ten_crop_views(nchw, input_size))
        crops = views.reshape(-1, *views.shape[2:])
    elif mirror:
        centre = center_crop(nchw, input_size)
        crops = np.concatenate([centre, centre[..., ::-1]])
    else:
        crops = center_crop(nchw, input_size)
    x = np.ascontiguousarray(crops, dtype=np.float32)
    np.divide(x, np.float32(255.0), out=x)
    return np.ascontiguousarray(normalization.numpy(x), dtype=np.float32)


def average_views(
    probs: np.ndarray, va: np.ndarray | None, n: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean over the views of view-major rows ``(V*N, K)`` -> ``(N, K)``; a no-op for one view.

    Probabilities are averaged after the softmax (not the logits), as in the ten-crop evaluation
    of Khaireddin & Chen; valence and arousal are plain means.
    """
    views = len(probs) // n if n else 1
    if views > 1:
        probs = probs.reshape(views, n, -1).mean(axis=0)
        va = None if va is None else va.reshape(views, n, -1).mean(axis=0)
    return probs, va


def run_batches(
    faces: Any,
    forward: Forward,
    input_size: int,
    normalization: Normalization,
    *,
    ten_crop: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    num_classes: int | None = None,
    valence_arousal: bool = False,
    mirror: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Probabilities ``(N, K)`` float32 and valence/arousal ``(N, 2)`` (None unless predicted), each
    face's views (:func:`preprocess`) averaged.

    ``faces`` is a uint8 ``(N, S, S, C)`` array or anything with ``len`` and ``batch(indices)``
    (an :class:`~affectlens.data.dataset.EmotionDataset` that reads its images lazily), so a large
    dataset is never converted to float at once. ``num_classes`` only shapes the empty answer.
    """
    probs_parts: list[np.ndarray] = []
    va_parts: list[np.ndarray] = []
    total = len(faces)
    for start in range(0, total, batch_size):
        stop = min(start + batch_size, total)
        chunk = faces.batch(np.arange(start, stop)) if hasattr(faces, "batch") else faces[start:stop]
        probs, va = forward(preprocess(chunk, input_size, normalization, ten_crop, mirror))
        probs, va = average_views(probs, va, len(chunk))
        probs_parts.append(np.asarray(probs, np.float32))
        if va is not None:
            va_parts.append(np.asarray(va, np.float32))
    if not probs_parts:
        empty_va = np.zeros((0, 2), np.float32) if valence_arousal else None
        return np.zeros((0, num_classes or 0), np.float32), empty_va
    return np.concatenate(probs_parts), (np.concatenate(va_parts) if va_parts else None)
