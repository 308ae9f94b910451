"""The whole pipeline on whole photos: detector + alignment + classifier against labelled images.

``evaluate`` on a dataset of face crops measures the classifier alone. Users bring photos: the
face must first be found, then aligned to the framing the model was trained on, and each step can
lose what the classifier would have got right. This scores that path, the one ``predict`` takes,
on a class-per-folder tree of whole images (``root/<class>/<image>``): the largest face found in
each image is its answer; an image where no face is found counts as wrong end to end and is
reported as missed. The report gives both numbers, accuracy over all images (end to end) and over
the images whose face was found, beside the usual per-class metrics of the found faces. It lives
with the predictor, not in ``evaluation/`` (which never loads the prediction path), and reports
with the same metrics and report writer as every other evaluation.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from affectlens.data.folder import class_images
from affectlens.data.labels import canonical_class_name
from affectlens.errors import AffectlensError
from affectlens.evaluation.metrics import classification_metrics
from affectlens.evaluation.report import write_evaluation_report
from affectlens.inference.options import DEFAULTS
from affectlens.inference.recognizer import Recognizer


def evaluate_photos(model: str | Path, root: str | Path, out_dir: str | Path, *, detector: str = DEFAULTS.detector,
                    prior_correction: float = 0.0, mirror: bool | None = None, title: str | None = None,
                    num_threads: int | None = None) -> dict[str, Any]:
    """Score ``predict``'s answer for every image of the class-per-folder tree ``root``; write the report."""
    root, out_dir = Path(root), Path(out_dir)
    recognizer = Recognizer(model, detector=detector, prior_correction=prior_correction, mirror=mirror,
                            num_threads=num_threads)
    names = recognizer.class_names
    index = {canonical_class_name(c).lower(): i for i, c in enumerate(names)}
    entries = class_images(root)
    kept = [(cls, path) for cls, path in entries if canonical_class_name(cls).lower() in index]
    dropped = sorted({cls for cls, _ in entries} - {cls for cls, _ in kept})
    if not kept:
        raise AffectlensError(f"{root}: no class folder names a class of the model ({', '.join(names)})")
    started = time.time()
    rows: list[dict[str, Any]] = []
    labels, probs = [], []
    missed_per_class: dict[str, int] = {}
    unreadable: list[str] = []
    for cls, path in kept:
        label = index[canonical_class_name(cls).lower()]
        try:
            faces = recognizer.predict(path).faces
        except AffectlensError as exc:
            unreadable.append(str(exc))
            continue
        if not faces:
            missed_per_class[names[label]] = missed_per_class.get(names[label], 0) + 1
            rows.append({"file": str(path), "class": names[label], "predicted": "", "confidence": "", "faces": 0})
            continue
        face = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        labels.append(label)
        probs.append(face.probabilities)
        rows.append({"file": str(path), "class": names[label], "predicted": face.label,
                     "confidence": round(float(face.probabilities.max()), 4), "faces": len(faces)})
    if not labels:
        raise AffectlensError(f"{root}: no face was found in any of its {len(kept)} images")
    y, p = np.array(labels), np.array(probs, np.float32)
    metrics = classification_metrics(y, p, names)
    images = len(labels) + sum(missed_per_class.values())
    correct = int((p.argmax(axis=1) == y).sum())
    pipeline = {
        "images": images,
        "faces_found": len(labels),
        "faces_missed": images - len(labels),
        "missed_per_class": missed_per_class,
        "end_to_end_accuracy": correct / images,
        "accuracy_on_found_faces": metrics["accuracy"],
        "unreadable": unreadable,
        "dropped_classes": dropped,
    }
    metrics["pipeline"] = pipeline
    extra = {"model": str(recognizer.model_path), "data": str(root), "detector": detector,
             "mirror": recognizer.classifier.mirror, "prior_correction": float(prior_correction),
             "images": images, "faces missed": pipeline["faces_missed"],
             "end-to-end accuracy": round(pipeline["end_to_end_accuracy"], 4),
             "seconds": round(time.time() - started, 2)}
    write_evaluation_report(metrics, out_dir, title or f"{recognizer.card.architecture} end to end on {root.name}",
                            y, p, names, extra=extra)
    with open(out_dir / "per_image.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "class", "predicted", "confidence", "faces"])
        writer.writeheader()
        writer.writerows(rows)
    (out_dir / "evaluation.json").write_text(json.dumps({**extra, "pipeline": pipeline}, indent=2) + "\n")
    return metrics
