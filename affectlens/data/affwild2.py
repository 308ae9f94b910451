"""Aff-Wild2 (ABAW) readers: expression and valence/arousal annotations joined with the frames.

The published layout, which these readers expect as is::

    annotations/EXPR_Classification_Challenge/Train_Set/<video>.txt    (also Validation_Set/)
    annotations/VA_Estimation_Challenge/Train_Set/<video>.txt
    cropped_aligned/<video>/00001.jpg, 00002.jpg, ...                  (112x112 aligned faces)

* An expression file starts with the header ``Neutral,Anger,Disgust,Fear,Happiness,Sadness,
  Surprise,Other`` and has one label per frame (line ``k + 1`` is frame ``k``, i.e. file
  ``<k:05d>.jpg``), ``-1`` where the frame has no label.
* A valence/arousal file starts with ``valence,arousal`` and has one ``v,a`` pair per frame in
  [-1, 1], ``-5`` where the frame has no label.
* A video with several annotated people has one file per person, ``<video>_left.txt`` and
  ``<video>_right.txt``, and matching frame folders ``cropped_aligned/<video>_left/``. Each person
  is a subject; both share the video id ``<video>``, so a grouped split keeps them together.

Frames listed in an annotation but absent from ``cropped_aligned`` (no face was found) are
skipped and counted in ``meta["missing_frames"]``. Frames are read lazily: Aff-Wild2 has
millions of them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from affectlens.data.dataset import NO_LABEL, EmotionDataset
from affectlens.data.folder import load_into_memory
from affectlens.errors import AffectlensError

EXPR_CLASSES = ["Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other"]
VA_HEADER = ["valence", "arousal"]
#: the value of an unlabelled frame in the valence/arousal files
VA_MISSING = -5.0
#: suffixes that mark one of several annotated people in a video
PERSON_SUFFIXES = ("_left", "_right")
FRAMES_FOLDER = "cropped_aligned"


def load_affwild2_expr(
    path: str | Path,
    frames_dir: str | Path | None = None,
    image_size: int | tuple[int, int] = 112,
    channels: int = 3,
    keep_unlabelled: bool = False,
    in_memory: bool = False,
) -> EmotionDataset:
    """Read Aff-Wild2 expression annotations with their cropped-aligned frames.

    Args:
        path: one annotation ``.txt``, a folder of them (e.g. ``Train_Set``), or a folder of such
            set folders (e.g. ``EXPR_Classification_Challenge``: each set becomes a split).
        frames_dir: the ``cropped_aligned`` folder; default: found beside or above ``path``.
        image_size, channels: what every frame is delivered as (frames are 112x112 RGB).
        keep_unlabelled: keep ``-1`` frames (label ``NO_LABEL``) instead of dropping them.
        in_memory: read every frame now instead of on demand.
    """
    return _load(Path(path), "expr", frames_dir, image_size, channels, keep_unlabelled, in_memory)


def load_affwild2_va(
    path: str | Path,
    frames_dir: str | Path | None = None,
    image_size: int | tuple[int, int] = 112,
    channels: int = 3,
    keep_unlabelled: bool = False,
    in_memory: bool = False,
) -> EmotionDataset:
    """Read Aff-Wild2 valence/arousal annotations with their frames (``-5`` = unlabelled -> dropped,
    or NaN with ``keep_unlabelled``). Arguments as :func:`load_affwild2_expr`."""
    return _load(Path(path), "va", frames_dir, image_size, channels, keep_unlabelled, in_memory)


def video_id(track: str) -> str:
    """The source video of an annotation track: ``10-60-1280x720_right`` -> ``10-60-1280x720``."""
    for suffix in PERSON_SUFFIXES:
        if track.endswith(suffix):
            return track[: -len(suffix)]
    return track


def read_expr_file(path: Path) -> np.ndarray:
    """Labels of one expression file, frame 1 first (``-1`` = unlabelled)."""
    lines = _read_lines(path)
    header = [c.strip() for c in lines[0].split(",")]
    if [c.lower() for c in header] != [c.lower() for c in EXPR_CLASSES]:
        raise AffectlensError(f"{path}: line 1: expected the header {','.join(EXPR_CLASSES)}, got '{lines[0]}'")
    labels = np.empty(len(lines) - 1, np.int64)
    for k, line in enumerate(lines[1:]):
        try:
            value = int(line.strip())
        except ValueError:
            raise AffectlensError(f"{path}: line {k + 2}: '{line.strip()}' is not an integer label") from None
        if not -1 <= value < len(EXPR_CLASSES):
            raise AffectlensError(f"{path}: line {k + 2}: label {value} is outside -1..{len(EXPR_CLASSES) - 1}")
        labels[k] = value
    return labels


def read_va_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Valence and arousal of one file, frame 1 first (NaN = unlabelled, from ``-5``)."""
    lines = _read_lines(path)
    header = [c.strip().lower() for c in lines[0].split(",")]
    if header != VA_HEADER:
        raise AffectlensError(f"{path}: line 1: expected the header valence,arousal, got '{lines[0]}'")
    values = np.empty((len(lines) - 1, 2), np.float32)
    for k, line in enumerate(lines[1:]):
        parts = line.split(",")
        try:
            v, a = (float(p) for p in parts)
        except ValueError:
            raise AffectlensError(f"{path}: line {k + 2}: expected 'valence,arousal' numbers, got '{line.strip()}'") \
                from None
        for name, x in (("valence", v), ("arousal", a)):
            if x != VA_MISSING and not -1.0 <= x <= 1.0:
                raise AffectlensError(f"{path}: line {k + 2}: {name} {x:g} is outside [-1, 1] (and not -5)")
        values[k] = (math.nan if v == VA_MISSING else v, math.nan if a == VA_MISSING else a)
    return values[:, 0], values[:, 1]


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise AffectlensError(f"{path}: cannot read ({exc.strerror})") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise AffectlensError(f"{path}: empty annotation file")
    return lines


def _annotation_sets(path: Path) -> list[tuple[str | None, list[Path]]]:
    """(split name or None, annotation files) for a file, a set folder, or a folder of set folders."""
    if path.is_file():
        return [(None, [path])]
    if not path.is_dir():
        raise AffectlensError(f"{path}: annotation path does not exist")
    files = sorted(p for p in path.glob("*.txt") if p.is_file())
    if files:
        return [(None, files)]
    sets = [(d.name, sorted(d.glob("*.txt"))) for d in sorted(path.iterdir()) if d.is_dir()]
    sets = [(name, found) for name, found in sets if found]
    if not sets:
        raise AffectlensError(f"{path}: no annotation .txt files here or in its sub-folders (e.g. Train_Set/)")
    return sets  # type: ignore[return-value]


def find_frames_dir(path: Path) -> Path:
    """``cropped_aligned`` beside or above the annotations (as in the Aff-Wild2 download)."""
    start = path if path.is_dir() else path.parent
    for folder in [start, *start.parents][:6]:
        candidate = folder / FRAMES_FOLDER
        if candidate.is_dir():
            return candidate
    raise AffectlensError(f"{path}: no '{FRAMES_FOLDER}' frame folder found beside or above it; pass frames_dir")


def _load(path: Path, task: str, frames_dir: str | Path | None, image_size: int | tuple[int, int], channels: int,
          keep_unlabelled: bool, in_memory: bool) -> EmotionDataset:
    sets = _annotation_sets(path)
    frames_root = Path(frames_dir) if frames_dir is not None else find_frames_dir(path)
    if not frames_root.is_dir():
        raise AffectlensError(f"{frames_root}: frame folder does not exist")
    paths: list[Path] = []
    labels: list[np.ndarray] = []
    valence: list[np.ndarray] = []
    arousal: list[np.ndarray] = []
    tracks: list[str] = []
    frames: list[np.ndarray] = []
    splits: list[str] = []
    missing = unlabelled = 0
    for split, files in sets:
        for file in files:
            track = file.stem
            folder = frames_root / track
            if not folder.is_dir():
                raise AffectlensError(f"{file}: no frame folder {folder} for this annotation file")
            if task == "expr":
                file_labels = read_expr_file(file)
                known = file_labels >= 0
                n = len(file_labels)
            else:
                v, a = read_va_file(file)
                known = np.isfinite(v) & np.isfinite(a)
                n = len(v)
            present = set(os.listdir(folder))
            number = np.arange(1, n + 1)
            on_disk = np.array([f"{k:05d}.jpg" in present for k in number.tolist()], dtype=bool)
            keep = on_disk & (known | keep_unlabelled)
            missing += int((~on_disk & (known | keep_unlabelled)).sum())
            unlabelled += int((on_disk & ~known).sum())
            chosen = number[keep]
            paths.extend(folder / f"{k:05d}.jpg" for k in chosen.tolist())
            frames.append(chosen)
            tracks.extend([track] * len(chosen))
            splits.extend([split or ""] * len(chosen))
            if task == "expr":
                labels.append(np.where(known, file_labels, NO_LABEL)[keep])
            else:
                valence.append(v[keep])
                arousal.append(a[keep])
    if not paths:
        raise AffectlensError(f"{path}: no annotated frame has an image in {frames_root}")
    n_total = len(paths)
    track_arr = np.array(tracks)
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    dataset = EmotionDataset(
        name=f"affwild2_{task}",
        class_names=list(EXPR_CLASSES) if task == "expr" else [],
        labels=np.concatenate(labels) if task == "expr" else np.full(n_total, NO_LABEL),
        paths=paths,
        image_size=size,  # type: ignore[arg-type]
        channels=channels,
        valence=np.concatenate(valence) if task == "va" else None,
        arousal=np.concatenate(arousal) if task == "va" else None,
        subjects=track_arr,
        videos=np.array([video_id(t) for t in tracks]),
        frames=np.concatenate(frames).astype(np.int64),
        splits=np.array(splits) if sets[0][0] is not None else None,
        source_ids=np.array([f"{t}/{p.name}" for t, p in zip(tracks, paths, strict=True)]),
        meta={"source": str(path), "frames_dir": str(frames_root), "missing_frames": missing,
              "unlabelled_frames": unlabelled, "annotation_files": sum(len(f) for _, f in sets),
              **({"valence_range": (-1, 1)} if task == "va" else {})},
    )
    return load_into_memory(dataset) if in_memory else dataset
