"""AFEW-VA readers: the original per-clip JSON layout and the npz sample kept in ../shared/data.

The published AFEW-VA layout (Kossaifi et al. 2017), read as it is::

    <root>/001/00000.png, 00001.png, ...       full film frames (720x576)
    <root>/001/001.json                          {"actor", "video_id", "frames": {"00000": {"valence",
                                                  "arousal", "landmarks": [[x, y] x 68]}, ...}}
    <root>/002/...

Valence and arousal are integers on -10..10; both readers divide them by 10 so every affectlens
dataset has the [-1, 1] scale that models (tanh outputs) and metrics expect. The face of each
frame is cut as a square around its 68 landmarks (1.3 times the landmark box, as the npz sample
was made) and resized to ``image_size``. A clip is a video and the actor its subject, so windows
(:mod:`affectlens.data.sequences`) and grouped splits stay inside one clip.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from affectlens.data.dataset import NO_LABEL, EmotionDataset
from affectlens.data.image_io import read_image, to_channels
from affectlens.data.npz import find_npz, open_npz
from affectlens.errors import AffectlensError

#: AFEW-VA annotates on -10..10; affectlens works on [-1, 1]
AFEWVA_SCALE = 10.0
#: side of the square face crop relative to the larger side of the landmark box
CROP_MARGIN = 1.3


def load_afewva(path: str | Path, channels: int = 3, image_size: int | None = None) -> EmotionDataset:
    """AFEW-VA with per-frame valence/arousal in [-1, 1]: a folder of clip folders (per-clip JSON and
    frames), one clip folder, or the npz sample (``face_crops``). ``image_size``: side of the face
    crops (default: 128 for JSON clips, the npz's own size)."""
    path = Path(path)
    clips = _clip_folders(path) if path.is_dir() else []
    if clips:
        return _load_json_clips(path, clips, channels, image_size or 128)
    return _load_npz(path, channels, image_size)


def crop_box(landmarks: np.ndarray, margin: float = CROP_MARGIN) -> tuple[float, float, float]:
    """Centre x, centre y and side of the square crop around ``(68, 2)`` landmarks."""
    lo, hi = landmarks.min(axis=0), landmarks.max(axis=0)
    centre = (lo + hi) / 2
    return float(centre[0]), float(centre[1]), float((hi - lo).max() * margin)


def crop_face(frame: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    """The square face crop of ``frame`` around its landmarks, ``size`` x ``size`` (edges replicated)."""
    import cv2

    cx, cy, side = crop_box(landmarks)
    scale = size / max(side, 1.0)
    # one affine warp: translate the crop's corner to the origin and scale to ``size``
    matrix = np.array([[scale, 0, size / 2 - scale * cx], [0, scale, size / 2 - scale * cy]], np.float64)
    crop = cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    return crop.reshape(size, size, frame.shape[2] if frame.ndim == 3 else 1)


def _clip_folders(path: Path) -> list[Path]:
    """Clip folders (those holding ``<name>.json``): ``path`` itself or its sub-folders."""
    if (path / f"{path.name}.json").is_file():
        return [path]
    return sorted(d for d in path.iterdir() if d.is_dir() and (d / f"{d.name}.json").is_file())


def _scaled(value: object, where: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise AffectlensError(f"{where}: '{value}' is not a number") from None
    if not -AFEWVA_SCALE <= number <= AFEWVA_SCALE:
        raise AffectlensError(f"{where}: {number:g} is outside the AFEW-VA range -10..10")
    return number / AFEWVA_SCALE


def _load_json_clips(root: Path, clips: list[Path], channels: int, size: int) -> EmotionDataset:
    images, valence, arousal, videos, subjects, frames, ids = [], [], [], [], [], [], []
    missing = 0
    for clip in clips:
        annotation = clip / f"{clip.name}.json"
        try:
            data = json.loads(annotation.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise AffectlensError(f"{annotation}: not a readable AFEW-VA annotation ({exc})") from None
        entries = data.get("frames") if isinstance(data, dict) else None
        if not isinstance(entries, dict) or not entries:
            raise AffectlensError(f"{annotation}: no 'frames' object with per-frame annotations")
        video = str(data.get("video_id", clip.name))
        actor = str(data.get("actor", ""))
        for name in sorted(entries):
            entry = entries[name]
            where = f"{annotation}: frame {name}"
            frame_file = next((clip / f"{name}{ext}" for ext in (".png", ".jpg") if (clip / f"{name}{ext}").is_file()),
                              None)
            if frame_file is None:
                missing += 1
                continue
            try:
                landmarks = np.asarray(entry["landmarks"], np.float64).reshape(68, 2)
                v, a = _scaled(entry["valence"], f"{where} valence"), _scaled(entry["arousal"], f"{where} arousal")
            except (KeyError, TypeError, ValueError):
                raise AffectlensError(f"{where}: needs 'valence', 'arousal' and 68 'landmarks' [x, y]") from None
            images.append(to_channels(crop_face(read_image(frame_file), landmarks, size), channels))
            valence.append(v)
            arousal.append(a)
            videos.append(video)
            subjects.append(actor)
            frames.append(int(name) if name.isdigit() else len(frames))
            ids.append(f"{clip.name}/{frame_file.name}")
    if not images:
        raise AffectlensError(f"{root}: no annotated AFEW-VA frame has an image file")
    n = len(images)
    return EmotionDataset(
        name="afewva", class_names=[], labels=np.full(n, NO_LABEL), images=np.stack(images),
        valence=np.array(valence, np.float32), arousal=np.array(arousal, np.float32),
        videos=np.array(videos), subjects=np.array(subjects), frames=np.array(frames, np.int64),
        source_ids=np.array(ids),
        meta={"source": str(root), "clips": len(clips), "missing_frames": missing, "valence_range": (-1, 1),
              "scaled_from": (-AFEWVA_SCALE, AFEWVA_SCALE)},
    )


def _load_npz(path: Path, channels: int, image_size: int | None) -> EmotionDataset:
    npz_path = find_npz(path)
    data = open_npz(npz_path, required=("face_crops", "valence", "arousal"))
    images = data["face_crops"]
    n = len(images)
    if image_size is not None or channels != images.shape[-1]:
        size = image_size or images.shape[1]
        import cv2

        images = np.stack([to_channels(cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA)
                                       if im.shape[0] != size else im, channels).reshape(size, size, channels)
                           for im in images])
    video = str(data["video_id"]) if "video_id" in data else npz_path.stem
    return EmotionDataset(
        name="afewva",
        class_names=[],
        labels=np.full(n, NO_LABEL),
        images=images,
        valence=data["valence"].astype(np.float32) / AFEWVA_SCALE,
        arousal=data["arousal"].astype(np.float32) / AFEWVA_SCALE,
        videos=np.full(n, video),
        subjects=np.full(n, str(data["actor"])) if "actor" in data else None,
        frames=np.arange(n),
        meta={"source": str(npz_path), "valence_range": (-1, 1), "scaled_from": (-AFEWVA_SCALE, AFEWVA_SCALE)},
    )
