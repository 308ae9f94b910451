"""End-to-end accuracy as the aligner's crop is zoomed: chooses the framing on validation faces only.

``benchmarks/face_framing.py`` measures how the aligner's ``fer`` template frames a face against the
training faces. This script tests what a change would do end to end: validation faces (FER2013
PublicTest, never trained on) are placed into whole frames the way ``benchmarks/ckplus_frames.py``
builds full-frame CK+, found by the default detector, aligned with the template zoomed by each
``--zooms`` value (below 1: a looser crop, more of the head), and classified by the model. The
zoom with the best PublicTest accuracy is the choice; CK+ frames are then scored with the current
and the chosen zoom as a test set (never used to choose).

    python benchmarks/framing_sweep.py --json benchmarks/results/framing_sweep.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from pathlib import Path

import numpy as np

from affectlens.data.registry import load_dataset
from affectlens.evaluation.runner import align_classes
from affectlens.faces import create_detector
from affectlens.faces.alignment import align_face
from affectlens.runtime.factory import create_classifier

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared"
_spec = importlib.util.spec_from_file_location("ckplus_frames", HERE / "ckplus_frames.py")
frames = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(frames)  # type: ignore[union-attr]


def landmarks_of_frames(images: np.ndarray, seed: int, sides: tuple[int, ...],
                        size: tuple[int, int]) -> tuple[list[np.ndarray | None], list[np.ndarray]]:
    """Each face placed into a frame (as ckplus_frames.py does) and the largest face's landmarks (None: missed)."""
    rng = np.random.default_rng(seed)
    h, w = size
    grounds = frames.backgrounds((h, w), rng)
    detector = create_detector("centerface")
    found, canvases = [], []
    for i, image in enumerate(images):
        side = sides[i % len(sides)]
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        frame = frames.place(image[..., 0], grounds[(i // len(sides)) % len(grounds)], side, x, y)
        faces = [f for f in detector.detect(np.repeat(frame[..., None], 3, axis=2)) if f.landmarks is not None]
        found.append(max(faces, key=lambda f: f.width * f.height).landmarks if faces else None)
        canvases.append(frame)
    return found, canvases


def accuracy(classifier: object, labels: np.ndarray, found: list, canvases: list, zoom: float) -> float:
    """Share of all faces classified right (a face the detector missed counts as wrong)."""
    size = classifier.card.image_size  # type: ignore[attr-defined]
    hits = [i for i, points in enumerate(found) if points is not None]
    crops = np.stack([align_face(canvases[i][..., None], found[i], size, True, "fer", zoom) for i in hits])
    predicted = classifier.predict(crops).argmax(axis=1)  # type: ignore[attr-defined]
    return float((predicted == labels[hits]).sum() / len(labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--zooms", type=float, nargs="+", default=(0.92, 0.96, 1.0, 1.04))
    parser.add_argument("--sides", type=int, nargs="+", default=(96, 160, 256))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    classifier = create_classifier(args.model)
    started = time.time()
    load_before = os.getloadavg()[0]
    results: dict = {"command": "python benchmarks/framing_sweep.py", "model": args.model, "zooms": list(args.zooms)}
    sets = {"FER2013 PublicTest frames (validation)": load_dataset("fer2013", SHARED / "data" / "fer2013")
            .select_splits("PublicTest"),
            "CK+ frames (test)": load_dataset("ckplus", SHARED / "data" / "ckplus48")}
    for name, data in sets.items():
        data = align_classes(data, classifier.class_names)  # CK+ names and orders its classes its own way
        found, canvases = landmarks_of_frames(data.images, 0, tuple(args.sides), (480, 640))
        scores = {f"{z:g}": round(accuracy(classifier, data.labels, found, canvases, z), 4) for z in args.zooms}
        results[name] = {"faces": len(data), "missed": sum(p is None for p in found), "accuracy_by_zoom": scores}
        print(name, results[name], flush=True)
    validation = results["FER2013 PublicTest frames (validation)"]["accuracy_by_zoom"]
    results["chosen_zoom"] = float(max(validation, key=lambda z: (validation[z], -abs(float(z) - 1.0))))
    results["seconds"] = round(time.time() - started, 1)
    results["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    print("chosen zoom on validation:", results["chosen_zoom"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
