"""Build a full-frame CK+: the shared 48x48 CK+ faces placed into whole photos, for end-to-end scoring.

CK+ in ../shared is face crops, which score the classifier alone. Users give ``predict`` whole
photos, where the face must be found and aligned first. This writes each crop, upscaled, into a
larger frame at a chosen scale and position over a background, as a class-per-folder tree that
``affectlens evaluate --kind photos`` scores through detector + alignment + classifier:

    python benchmarks/ckplus_frames.py --out runs/ckplus_frames
    affectlens evaluate --model default --data runs/ckplus_frames --kind photos -o reports/ckplus-frames
    affectlens evaluate --model default --data ../shared/data/ckplus48 --kind ckplus -o reports/ckplus-crops

The gap between the two accuracies is what the detector and the aligner lose. Face sides cycle
through ``--sides`` (pixels in the frame), positions and backgrounds (flat grey, a smooth
gradient, a photo without faces) are drawn with a fixed seed, so the tree is the same every time.
The crops are tight (chin to brow), so each is pasted with a soft edge and the frame keeps the grey
of the face: the photos are harder than real ones (no hair, ears or neck), which makes the number a
lower bound.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from affectlens.data.registry import load_dataset

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def backgrounds(size: tuple[int, int], rng: np.random.Generator) -> list[np.ndarray]:
    """Grey backgrounds of (height, width): flat, a gradient, and the shared photo without faces."""
    h, w = size
    flat = np.full((h, w), 128, np.uint8)
    ramp = np.linspace(60, 200, w, dtype=np.float32)[None, :] + np.linspace(-30, 30, h, dtype=np.float32)[:, None]
    gradient = np.clip(ramp + rng.normal(0, 4, (h, w)), 0, 255).astype(np.uint8)
    photo = cv2.imread(str(SHARED / "media" / "free-mountain-vector-01.jpg"), cv2.IMREAD_GRAYSCALE)
    scene = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)
    return [flat, gradient, scene]


def place(face: np.ndarray, canvas: np.ndarray, side: int, x: int, y: int) -> np.ndarray:
    """Paste ``face`` upscaled to ``side`` px at (x, y), blended into ``canvas`` over a 10% soft edge."""
    big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    ramp = np.minimum(np.arange(side), np.arange(side)[::-1]) / max(1.0, 0.1 * side)
    alpha = np.clip(np.minimum(ramp[None, :], ramp[:, None]), 0, 1)
    out = canvas.astype(np.float32).copy()
    region = out[y : y + side, x : x + side]
    out[y : y + side, x : x + side] = alpha * big + (1 - alpha) * region
    return out.astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for the class-per-folder tree (new)")
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "ckplus48")
    parser.add_argument("--frame", type=int, nargs=2, default=(480, 640), metavar=("HEIGHT", "WIDTH"))
    parser.add_argument("--sides", type=int, nargs="+", default=(96, 160, 256),
                        help="face sides in the frame, cycled over the faces")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"{args.out}: not empty; choose a new folder")
    rng = np.random.default_rng(args.seed)
    h, w = args.frame
    grounds = backgrounds((h, w), rng)
    data = load_dataset("ckplus", args.data)
    for i in range(len(data)):
        face = data.images[i][..., 0]
        side = args.sides[i % len(args.sides)]
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        frame = place(face, grounds[(i // len(args.sides)) % len(grounds)], side, x, y)
        folder = args.out / data.class_names[int(data.labels[i])]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i:04d}.png"), frame)
    print(f"{len(data)} frames of {w}x{h} in {args.out} (face sides {', '.join(map(str, args.sides))} px)")


if __name__ == "__main__":
    main()
