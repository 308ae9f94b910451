"""A synthetic continuous-emotion task made of real faces, to prove the sequence machinery offline.

No valence/arousal video dataset is available offline, so this builds one whose answer is known:
real faces (e.g. FER2013) are dealt into "videos", each face gets a value ``x`` derived from its
pixels (its mean brightness, ranked over the whole pool and mapped to [-1, 1]), and a frame's target
is an exponential moving average of the values of the frames up to it::

    y_t = memory * y_(t-1) + (1 - memory) * x_t          (y_0 = x_0)

A per-frame model sees only frame ``t``: with independent faces its best linear prediction
correlates with ``y_t`` at ``sqrt(1 - memory ** 2)`` (0.6 for memory 0.8), and its CCC can be no
higher, whatever it learns. A recurrent model that remembers the last frames can reach CCC near 1.
So the gap measures the recurrence, and a share of unlabelled (NaN) frames checks the masking:
if either were broken, a CNN-GRU would not beat the per-frame ceiling.
"""

from __future__ import annotations

import numpy as np

from affectlens.data.dataset import NO_LABEL, EmotionDataset

SPLITS = ("Training", "PublicTest", "PrivateTest")


def brightness_values(images: np.ndarray) -> np.ndarray:
    """Each face's mean brightness, ranked over all faces and spread uniformly over [-1, 1]."""
    means = images.reshape(len(images), -1).mean(axis=1)
    ranks = np.argsort(np.argsort(means, kind="stable"), kind="stable")
    return (2.0 * ranks / max(len(images) - 1, 1) - 1.0).astype(np.float32)


def ema_targets(values: np.ndarray, memory: float) -> np.ndarray:
    """``y_t = memory * y_(t-1) + (1 - memory) * x_t`` along one video, starting at ``y_0 = x_0``."""
    out = np.empty_like(values, dtype=np.float32)
    state = float(values[0])
    for t, x in enumerate(values):
        state = memory * state + (1.0 - memory) * float(x) if t else float(x)
        out[t] = state
    return out


def synthetic_va_videos(faces: np.ndarray, videos_per_split: tuple[int, int, int] = (48, 12, 12),
                        frames: tuple[int, int] = (30, 90), memory: float = 0.8, unlabelled: float = 0.2,
                        seed: int = 0) -> EmotionDataset:
    """Videos of distinct random faces with EMA targets; valence and arousal are the same target.

    Args:
        faces: uint8 faces ``(N, H, W[, C])`` to deal from (each face is used at most once).
        videos_per_split: videos in Training, PublicTest and PrivateTest.
        frames: shortest and longest video length (lengths drawn uniformly).
        memory: EMA weight of the past (0.8: a frame's target depends on roughly the last 5 frames).
        unlabelled: share of frames whose targets are NaN (masked from loss and metrics).
    """
    rng = np.random.default_rng(seed)
    values = brightness_values(faces)
    lengths = rng.integers(frames[0], frames[1] + 1, size=sum(videos_per_split))
    if lengths.sum() > len(faces):
        raise ValueError(f"{lengths.sum()} frames needed but only {len(faces)} faces given")
    order = rng.permutation(len(faces))[: lengths.sum()]
    split_of_video = np.repeat(np.arange(3), videos_per_split)
    target = np.empty(lengths.sum(), np.float32)
    video_ids, frame_ids, split_ids = [], [], []
    start = 0
    for v, n in enumerate(lengths):
        target[start : start + n] = ema_targets(values[order[start : start + n]], memory)
        video_ids += [f"video{v:03d}"] * int(n)
        frame_ids += list(range(int(n)))
        split_ids += [SPLITS[split_of_video[v]]] * int(n)
        start += int(n)
    target[rng.random(len(target)) < unlabelled] = np.nan
    n = len(order)
    return EmotionDataset(
        name="synthetic_va", class_names=[], labels=np.full(n, NO_LABEL), images=faces[order],
        valence=target.copy(), arousal=target.copy(), videos=np.array(video_ids),
        frames=np.array(frame_ids, np.int64), splits=np.array(split_ids), source_ids=order.astype(str),
        meta={"memory": memory, "unlabelled": unlabelled, "per_frame_ccc_ceiling": float(np.sqrt(1 - memory**2))},
    )
