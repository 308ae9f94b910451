"""Valence/arousal (and class probabilities) for every frame of every video of a dataset, in torch.

Training validation and ``affectlens evaluate`` score whole videos, the way the streaming
predictor runs: a CNN-GRU reads each track from its first frame, ``chunk`` frames per CNN
forward with the GRU state carried from chunk to chunk (memory bounded by ``chunk``, whatever
the video's length); a per-frame model scores frames independently. Frames go through
:func:`~affectlens.runtime.steps.preprocess` (centre crop, normalisation) as everywhere.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from affectlens.data.dataset import EmotionDataset
from affectlens.data.preprocessing import Normalization
from affectlens.data.sequences import video_tracks
from affectlens.models.prediction.head import split_outputs
from affectlens.runtime.steps import preprocess


def is_sequential(model: nn.Module) -> bool:
    """Whether ``model`` reads windows ``(B, T, C, H, W)`` and carries a recurrent state."""
    return bool(getattr(model, "sequential", False))


def predict_videos(model: nn.Module, dataset: EmotionDataset, normalization: Normalization, input_size: int,
                   num_classes: int, device: torch.device | str = "cpu",
                   chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities ``(N, K)`` and valence/arousal ``(N, 2)`` in dataset order, video by video."""
    model.eval()
    n = len(dataset)
    probs = np.zeros((n, num_classes), np.float32)
    va = np.zeros((n, 2), np.float32)
    sequential = is_sequential(model)
    with torch.inference_mode():
        for track in video_tracks(dataset):
            state = None
            for start in range(0, len(track), chunk):
                idx = track[start : start + chunk]
                x = torch.from_numpy(preprocess(dataset.batch(idx), input_size, normalization)).to(device)
                if sequential:
                    out, state = model.forward_state(x[None], state)
                    out = out[0]
                else:
                    out = model(x)
                logits, frame_va = split_outputs(out.float(), num_classes)
                probs[idx] = torch.softmax(logits, dim=1).cpu().numpy() if num_classes else probs[idx]
                va[idx] = frame_va.cpu().numpy()
    return probs, va
