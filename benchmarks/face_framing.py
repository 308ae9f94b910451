"""How faces are framed: the training faces (FER2013), CK+'s crops, and the aligner's template.

Issue 25 asks whether the aligner frames a face the way the training faces are framed. Framing is
measured the same way for every source: CenterFace's 5 landmarks on each 48x48 face (upscaled 4x,
padded by a grey border so that the detector sees the whole face), divided by the crop side. The
table gives the medians of the eye line (height of the eyes' midpoint), the eye distance (the
face's scale in the crop), the eye-to-mouth height, and the horizontal centre; the aligner's
``fer`` template is the same numbers for the crops it makes. Validation data only (FER2013
PublicTest) sets the comparison; CK+ is shown beside it as a test set, never used to choose.

    python benchmarks/face_framing.py --json benchmarks/results/face_framing.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from affectlens.data.registry import load_dataset
from affectlens.faces import create_detector
from affectlens.faces.alignment import TEMPLATES

SHARED = Path(__file__).resolve().parents[2] / "shared"
UPSCALE = 4
PAD = 0.5  # grey border on each side, as a fraction of the face side


def framing(points: np.ndarray) -> dict[str, float]:
    """Framing numbers of (5, 2) landmarks given as fractions of the crop side."""
    eyes = (points[0] + points[1]) / 2
    mouth = (points[3] + points[4]) / 2
    return {"eye_line": float(eyes[1]), "eye_distance": float(np.linalg.norm(points[1] - points[0])),
            "eye_to_mouth": float(mouth[1] - eyes[1]), "centre_x": float((eyes[0] + mouth[0]) / 2)}


def crop_landmarks(faces: np.ndarray, detector: object) -> tuple[list[np.ndarray], int]:
    """Landmarks of the largest face found in each crop, as fractions of the crop side; and the misses."""
    found, missed = [], 0
    for face in faces:
        grey = face[..., 0] if face.ndim == 3 else face
        side = grey.shape[0] * UPSCALE
        pad = int(side * PAD)
        big = cv2.resize(grey, (side, side), interpolation=cv2.INTER_CUBIC)
        canvas = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=128)
        detected = [f for f in detector.detect(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR)) if f.landmarks is not None]
        if not detected:
            missed += 1
            continue
        best = max(detected, key=lambda f: f.width * f.height)
        found.append((best.landmarks - pad) / side)
    return found, missed


def summarise(points: list[np.ndarray]) -> dict[str, float]:
    rows = [framing(p) for p in points]
    return {key: round(float(np.median([r[key] for r in rows])), 4) for key in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=600, help="faces per source (first N of the split)")
    parser.add_argument("--json", type=Path, help="write the table here")
    args = parser.parse_args()
    detector = create_detector("centerface", max_side=0)
    fer = load_dataset("fer2013", SHARED / "data" / "fer2013").select_splits("PublicTest")
    ck = load_dataset("ckplus", SHARED / "data" / "ckplus48")
    table = {"aligner template 'fer'": {**framing(TEMPLATES["fer"]), "faces": 0, "missed": 0}}
    for name, data in (("FER2013 PublicTest (training framing)", fer), ("CK+ crops (test set)", ck)):
        points, missed = crop_landmarks(data.images[: args.count], detector)
        table[name] = {**summarise(points), "faces": len(points), "missed": missed}
    keys = ["eye_line", "eye_distance", "eye_to_mouth", "centre_x"]
    print(f"{'source':40s} " + " ".join(f"{k:>13s}" for k in keys) + "   faces missed")
    for name, row in table.items():
        print(f"{name:40s} " + " ".join(f"{row[k]:13.4f}" for k in keys) + f"   {row['faces']:5d} {row['missed']:6d}")
    if args.json:
        args.json.write_text(json.dumps({"command": "python benchmarks/face_framing.py", "count": args.count,
                                         "table": table}, indent=2) + "\n")


if __name__ == "__main__":
    main()
