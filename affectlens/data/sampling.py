"""Class-balanced sampling: every class is drawn about equally often, whatever its size.

With 177,720 Neutral and 9,080 Fear frames, plain shuffling shows the model 20 Neutral frames
for each Fear frame and it learns that "Neutral" is almost always right. The balanced sampler
draws each epoch's indices with probability proportional to ``1 / count(class) ** power``
(``power=1``: all classes equally often; ``0.5``: a milder square-root balancing), with
replacement, so rare images repeat within an epoch and common ones are subsampled.

Like :class:`affectlens.training.loop.EpochOrder`, the epoch's order is a pure function of
``(seed, epoch)``: a run resumed in the middle of an epoch continues with exactly the indices
it would have drawn (``start`` skips the ones already used).

:class:`ShardedBatches` cuts any such stream into global batches and gives each process of a
distributed run its share, so 1 or N processes train on the same batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence, Sized
from typing import TypeVar

import numpy as np
from torch.utils.data import Sampler

from affectlens.errors import AffectlensError

#: an item of a sample stream: a sample index, or an index list (a video window)
T = TypeVar("T")


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


def batch_share(global_batch: int, world_size: int) -> int:
    """Samples per process and step: the global batch split evenly, or a one-line error naming both."""
    if global_batch < 1 or world_size < 1 or global_batch % world_size:
        raise AffectlensError(f"batch_size {global_batch} (the global batch) does not divide into {world_size} "
                              f"processes; use a multiple of {world_size}")
    return global_batch // world_size


class ShardedBatches(Sampler[list[T]]):
    """One process's share of every global batch of an epoch's sample stream (distributed training).

    The stream is what a single process would train on: the items of ``source`` (sample indices
    from shuffling or class-balanced sampling, or index lists such as video windows) cut into
    global batches of ``global_batch``. Process ``rank`` of ``world_size`` takes the ``rank``-th
    contiguous ``global_batch / world_size`` items of each, so N processes see exactly the
    batches one process would, split N ways, and gradients averaged across them (DDP) equal the
    single-process gradient. With ``world_size`` 1 it yields the global batches themselves.

    The last global batch of an epoch may be short; it is padded with the epoch's first items to a
    multiple of ``world_size`` so every process takes the same number of steps (DDP needs that; a
    process with no step left would wait for the others forever), as torch's ``DistributedSampler``
    pads. Single-process training never pads.

    Args:
        source: the epoch's items in order (any sized iterable; an ``order`` NumPy array, as the
            samplers here have, is sliced without making a list). A ``set_epoch`` is passed on.
        global_batch: items per optimizer step over all processes (the config's ``batch_size``).
        rank, world_size: this process and how many there are.
        start_batch: global batches of this epoch already trained (resuming inside an epoch).
    """

    def __init__(self, source: Sized, global_batch: int, rank: int = 0, world_size: int = 1,
                 start_batch: int = 0) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not one of {world_size} processes")
        batch_share(global_batch, world_size)
        self.source = source
        self.global_batch = global_batch
        self.rank = rank
        self.world_size = world_size
        self.start_batch = start_batch

    def set_epoch(self, epoch: int) -> None:
        """Forwarded to the source sampler (for samplers that draw per epoch, such as video windows)."""
        set_epoch = getattr(self.source, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)

    def __len__(self) -> int:
        return max(0, math.ceil(len(self.source) / self.global_batch) - self.start_batch)

    def __iter__(self) -> Iterator[list[T]]:
        order = getattr(self.source, "order", None)
        items: Sequence = order if isinstance(order, np.ndarray) else list(self.source)  # type: ignore[call-overload]
        n, size = len(items), self.global_batch
        for start in range(self.start_batch * size, n, size):
            batch = items[start:start + size]
            share = len(batch) // self.world_size
            if len(batch) % self.world_size:  # the short last batch: pad to a multiple of world_size
                share = math.ceil(len(batch) / self.world_size)
                batch = _concat(batch, _cycle(items, share * self.world_size - len(batch)))
            mine = batch[self.rank * share:(self.rank + 1) * share]
            yield mine.tolist() if isinstance(mine, np.ndarray) else list(mine)


def _cycle(items: Sequence, count: int) -> Sequence:
    """The first ``count`` items of ``items`` repeated as often as needed (padding a short batch)."""
    if isinstance(items, np.ndarray):
        return np.resize(items, count) if count else items[:0]
    return [items[i % len(items)] for i in range(count)]


def _concat(a: Sequence, b: Sequence) -> Sequence:
    return np.concatenate([a, b]) if isinstance(a, np.ndarray) else [*a, *b]
