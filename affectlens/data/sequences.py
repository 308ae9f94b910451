"""Fixed-length windows cut from videos, and batches of windows from different videos.

Continuous emotion (valence/arousal) models see sequences: a window of ``length`` consecutive
frames (default 80) of one annotated person. A training batch holds ``per_batch`` windows
(default 4) from *different* videos, shuffled by window, so the batch CCC, pooled over the frames
of the batch, measures agreement across people instead of within one clip.

* A "track" is the frames of one person in one video and one split, ordered by frame number.
  Tracks come from the dataset's split, video and subject columns (Aff-Wild2's ``_left``/``_right``
  persons share a video but are separate tracks), so a window never straddles a split or a video.
* Windows start every ``stride`` frames; the last one is moved back to end at the track's last
  frame, and a track shorter than ``length`` gives one window padded with ``-1`` (masked frames:
  no image, NaN targets), so every labelled frame is seen.

:class:`SequenceBatchSampler` is an iterable of index lists with ``set_epoch(epoch)`` and
optional ``rank``/``world_size``, as torch's DistributedSampler: each rank gets its own share of
the same epoch order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import numpy as np

from affectlens.data.dataset import EmotionDataset
from affectlens.errors import AffectlensError

#: frames per window and windows per batch of the valence/arousal literature (the thesis setting)
DEFAULT_LENGTH = 80
DEFAULT_PER_BATCH = 4
#: index of a padding frame inside a window
PAD = -1


def track_keys(dataset: EmotionDataset) -> np.ndarray:
    """One string per sample naming its track (split, video, subject); an error without video ids."""
    columns = [c for c in (dataset.splits, dataset.videos, dataset.subjects) if c is not None]
    if dataset.videos is None and dataset.subjects is None:
        raise AffectlensError(
            f"dataset '{dataset.name}' has no video (or subject) ids: sequences need to know which frames "
            "belong together (a manifest needs 'video' and 'frame' columns)"
        )
    keys = np.asarray(columns[0]).astype(str)
    for column in columns[1:]:
        keys = np.char.add(np.char.add(keys, "\x1f"), np.asarray(column).astype(str))
    return keys


def video_tracks(dataset: EmotionDataset) -> list[np.ndarray]:
    """Sample indices of every track, each ordered by frame number (dataset order without frames)."""
    keys = track_keys(dataset)
    frames = dataset.frames if dataset.frames is not None else np.arange(len(dataset))
    order = np.lexsort((np.arange(len(dataset)), frames, keys))
    sorted_keys = keys[order]
    cuts = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
    return [part for part in np.split(order, cuts) if len(part)]


class SequenceWindows:
    """Windows ``(W, length)`` of sample indices (``PAD`` after a short track) and their track ids."""

    def __init__(self, tracks: list[np.ndarray], length: int = DEFAULT_LENGTH, stride: int | None = None) -> None:
        if length < 1:
            raise AffectlensError(f"sequence length must be >= 1, got {length}")
        stride = length if not stride else stride
        if stride < 1:
            raise AffectlensError(f"sequence stride must be >= 1, got {stride}")
        rows: list[np.ndarray] = []
        owners: list[int] = []
        for t, track in enumerate(tracks):
            n = len(track)
            if n <= length:
                row = np.full(length, PAD, np.int64)
                row[:n] = track
                rows.append(row)
                owners.append(t)
                continue
            starts = list(range(0, n - length + 1, stride))
            if starts[-1] != n - length:
                starts.append(n - length)  # the tail, overlapping the previous window
            rows.extend(track[s : s + length] for s in starts)
            owners.extend([t] * len(starts))
        self.length = length
        self.windows = np.stack(rows) if rows else np.zeros((0, length), np.int64)
        self.track_of = np.asarray(owners, np.int64)

    @classmethod
    def from_dataset(cls, dataset: EmotionDataset, length: int = DEFAULT_LENGTH,
                     stride: int | None = None) -> SequenceWindows:
        return cls(video_tracks(dataset), length, stride)

    def __len__(self) -> int:
        return len(self.windows)


class SequenceBatchSampler:
    """Batches of window indices, at most one window per video in a batch, shuffled per epoch.

    The order is a function of ``(seed, epoch)`` only. With ``world_size > 1`` the epoch's batch
    list is padded (by wrapping around) to a multiple of ``world_size`` and rank ``r`` takes every
    ``world_size``-th batch from ``r``, so all ranks run the same number of steps.
    """

    def __init__(self, track_of: np.ndarray, per_batch: int = DEFAULT_PER_BATCH, seed: int = 0, shuffle: bool = True,
                 rank: int = 0, world_size: int = 1) -> None:
        if per_batch < 1:
            raise AffectlensError(f"sequences per batch must be >= 1, got {per_batch}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise AffectlensError(f"rank {rank} is not in 0..{world_size - 1}")
        self.track_of = np.asarray(track_of, np.int64)
        self.per_batch = int(per_batch)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def all_batches(self) -> list[list[int]]:
        """Every batch of the epoch, for all ranks."""
        n = len(self.track_of)
        order = np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle else np.arange(n)
        pending = deque(order.tolist())
        batches: list[list[int]] = []
        # how far to look past windows of videos already in the batch before closing it smaller
        lookahead = 50 * self.per_batch
        while pending:
            batch: list[int] = []
            seen: set[int] = set()
            skipped: list[int] = []
            while pending and len(batch) < self.per_batch and len(skipped) < lookahead:
                window = pending.popleft()
                track = int(self.track_of[window])
                if track in seen:
                    skipped.append(window)
                else:
                    batch.append(window)
                    seen.add(track)
            pending.extendleft(reversed(skipped))
            batches.append(batch)
        return batches

    def batches(self) -> list[list[int]]:
        """This rank's batches of the current epoch."""
        batches = self.all_batches()
        if self.world_size > 1 and batches:
            total = -(-len(batches) // self.world_size) * self.world_size
            batches = [batches[i % len(batches)] for i in range(total)]
            batches = batches[self.rank :: self.world_size]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return len(self.batches())
