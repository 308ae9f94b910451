"""Face tracks across video frames: stable ids by box overlap, and per-track smoothing.

Why IoU matching and nothing heavier: at video frame rates a face moves little between frames, so
overlap with the previous box identifies it reliably, costs microseconds and needs no appearance
model. A track survives ``max_age`` processed frames without a match (a missed detection, a hand
in front of the face) before its id is retired; ids are never reused within one video.

Smoothing is an exponential moving average per track: ``s = alpha * s_prev + (1 - alpha) * p``.
Frame-by-frame emotion predictions flicker (the classifier sees a slightly different crop every
frame); averaging over a few frames removes the flicker without lagging real expression changes
much (``alpha = 0.5`` at 30 fps halves a change's weight every 33 ms). ``alpha = 0`` turns it off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from affectlens.errors import AffectlensError


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` boxes ``(x1, y1, x2, y2)`` -> ``(N, M)``."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


@dataclass
class Track:
    """One face followed over time; ``probabilities``/``va`` hold the smoothed values (None before the
    first), ``state`` a recurrent model's memory of this face (None: not started)."""

    track_id: int
    box: np.ndarray
    probabilities: np.ndarray | None = None
    va: np.ndarray | None = None
    missed: int = 0
    hits: int = 1
    state: Any = None


class FaceTracker:
    """Greedy IoU tracker with EMA smoothing; call :meth:`update` once per processed frame."""

    def __init__(self, iou_threshold: float = 0.3, max_age: int = 10, smoothing: float = 0.0) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise AffectlensError(f"smoothing must be in [0, 1), got {smoothing}")
        if not 0.0 < iou_threshold <= 1.0:
            raise AffectlensError(f"tracker iou_threshold must be in (0, 1], got {iou_threshold}")
        if max_age < 0:
            raise AffectlensError(f"tracker max_age must be >= 0, got {max_age}")
        self.iou_threshold = float(iou_threshold)
        self.max_age = int(max_age)
        self.smoothing = float(smoothing)
        self.tracks: list[Track] = []
        self._next_id = 0

    def match(self, boxes: np.ndarray) -> list[int | None]:
        """Index into ``self.tracks`` for each box (None = new face); greedy by highest IoU."""
        result: list[int | None] = [None] * len(boxes)
        if not self.tracks or len(boxes) == 0:
            return result
        iou = iou_matrix(boxes, np.stack([t.box for t in self.tracks]))
        pairs = np.argwhere(iou >= self.iou_threshold)
        order = np.argsort(-iou[pairs[:, 0], pairs[:, 1]], kind="stable")
        used_boxes: set[int] = set()
        used_tracks: set[int] = set()
        for i, j in pairs[order]:
            if i in used_boxes or j in used_tracks:
                continue
            result[int(i)] = int(j)
            used_boxes.add(int(i))
            used_tracks.add(int(j))
        return result

    def assign(self, boxes: np.ndarray) -> list[Track]:
        """The track of each box of this frame (new tracks for unmatched boxes); ages the others.

        A recurrent model calls this before classifying, to run each face from its track's
        ``state``; a track that is retired takes its state with it, so memory stays bounded by the
        faces on screen however long the video.
        """
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        matches = self.match(boxes)
        assigned: list[Track] = []
        matched: set[int] = set()
        new_tracks: list[Track] = []
        for i, j in enumerate(matches):
            if j is None:
                track = Track(self._next_id, boxes[i].copy())
                self._next_id += 1
                new_tracks.append(track)
            else:
                track = self.tracks[j]
                matched.add(j)
                track.box = boxes[i].copy()
                track.missed = 0
                track.hits += 1
            assigned.append(track)
        survivors = []
        for j, track in enumerate(self.tracks):
            if j not in matched:
                track.missed += 1
                if track.missed > self.max_age:
                    continue
            survivors.append(track)
        self.tracks = survivors + new_tracks
        return assigned

    def smooth(self, tracks: list[Track], probabilities: np.ndarray, va: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Fold this frame's outputs into the EMA of their tracks (from :meth:`assign`).

        Returns ``(ids (N,), smoothed probabilities (N, K), smoothed valence/arousal or None)``.
        """
        probabilities = np.asarray(probabilities, np.float32)
        alpha = self.smoothing
        ids = np.array([t.track_id for t in tracks], np.int64)
        out_p = np.empty_like(probabilities)
        out_va = None if va is None else np.empty_like(np.asarray(va, np.float32))
        for i, track in enumerate(tracks):
            p = probabilities[i]
            v = None if va is None else np.asarray(va[i], np.float32)
            if track.probabilities is None:
                track.probabilities = p.copy()
            else:
                track.probabilities = alpha * track.probabilities + (1.0 - alpha) * p
            if v is not None:
                track.va = v.copy() if track.va is None else alpha * track.va + (1.0 - alpha) * v
            out_p[i] = track.probabilities
            if out_va is not None and track.va is not None:
                out_va[i] = track.va
        return ids, out_p, out_va

    def update(
        self, boxes: np.ndarray, probabilities: np.ndarray, va: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Assign ids to this frame's faces and smooth their outputs (:meth:`assign`, then :meth:`smooth`).

        Returns ``(ids (N,), smoothed probabilities (N, K), smoothed valence/arousal or None)``.
        """
        return self.smooth(self.assign(boxes), probabilities, va)
