"""Class-balanced sampling: every class is drawn about equally often, whatever its size.

With 177,720 Neutral and 9,080 Fear frames, plain shuffling shows the model 20 Neutral frames
for each Fear frame and it learns that "Neutral" is almost always right. The balanced sampler
draws each epoch's indices with probability proportional to ``1 / count(class) ** power``
(``power=1``: all classes equally often; ``0.5``: a milder square-root balancing), with
replacement, so rare images repeat within an epoch and common ones are subsampled.

Like :class:`affectlens.training.loop.EpochOrder`, the epoch's order is a pure function of
``(seed, epoch)``: a run resumed in the middle of an epoch continues with exactly the indices
it would have drawn (``start`` skips the ones already used).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

from affectlens.errors import AffectlensError


def balanced_weights(labels: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Per-sample draw probabilities (sum 1) that equalise classes; unlabelled samples get 0."""
    labels = np.asarray(labels, dtype=np.int64)
    valid = labels >= 0
    if not valid.any():
        raise AffectlensError("the class-balanced sampler needs class labels; this training set has none")
    counts = np.bincount(labels[valid])
    weights = np.zeros(len(labels), np.float64)
    weights[valid] = 1.0 / counts[labels[valid]].astype(np.float64) ** power
    return weights / weights.sum()


class ClassBalancedSampler(Sampler[int]):
    """Indices of one epoch drawn with class-balancing weights, deterministic per (seed, epoch).

    Args:
        labels: class index per training sample (``-1``: never drawn).
        seed, epoch: together fix the epoch's draw.
        start: skip the first ``start`` indices (resuming inside an epoch).
        num_samples: draws per epoch; default the training-set size, so an epoch has as many
            steps as with plain shuffling.
        power: 1 balances classes fully, 0 is plain sampling with replacement.
    """

    def __init__(self, labels: np.ndarray, seed: int, epoch: int, start: int = 0,
                 num_samples: int | None = None, power: float = 1.0) -> None:
        n = len(labels) if num_samples is None else int(num_samples)
        rng = np.random.default_rng([seed, epoch, 1])
        self.order = rng.choice(len(labels), size=n, replace=True, p=balanced_weights(labels, power))[start:]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order.tolist())

    def __len__(self) -> int:
        return len(self.order)
