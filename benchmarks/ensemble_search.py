"""Choose an ensemble's members on FER2013 PublicTest, then report it once on PrivateTest.

    python benchmarks/ensemble_search.py default fast /tmp/old_models/fer2013_vgg_small.safetensors ...

Every candidate (a shipped name, run folder or weights file) classifies PublicTest and PrivateTest
once, centre crop and ten-crop, on ONNX Runtime; with ``--mirror`` also centre crop averaged with
its mirror image (the ensemble card's ``mirror``). Every subset of two or more candidates is then
scored as an equal-weight average of member probabilities on **PublicTest only**, once per
prediction view searched (``centre``, and ``mirror`` with ``--mirror``); the subset and view with
the best PublicTest accuracy (ties: fewer members, then the cheaper view) is the choice, and only
then is its PrivateTest accuracy read. Choosing members (or mirroring) on the test split would
overstate the ensemble, which is why the two splits play different roles here. Writes
benchmarks/results/ensemble_search.json with every subset's PublicTest score and the chosen one's
PrivateTest numbers.
"""

from __future__ import annotations

import argparse
import itertools
import json
from datetime import date
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

from affectlens.data.conform import conform
from affectlens.data.registry import load_dataset
from affectlens.evaluation.runner import align_classes
from affectlens.runtime.card import read_card
from affectlens.runtime.factory import create_classifier
from affectlens.runtime.pretrained import resolve_model

RESULTS = Path(__file__).resolve().parent / "results"
SPLITS = ("PublicTest", "PrivateTest")


#: the prediction views a subset can be chosen with, cheapest first (a tie goes to the cheaper one)
VIEWS = ("centre", "mirror")


def candidate_probabilities(spec: str, data_root: str, threads: int, mirror: bool) -> dict[str, np.ndarray]:
    """``{split[_tencrop|_mirror]: probabilities}`` of one candidate, with the labels under ``labels_<split>``."""
    path = resolve_model(spec)
    card = read_card(path)
    out: dict[str, np.ndarray] = {}
    for split in SPLITS:
        data = load_dataset("fer2013", data_root).select_splits(split)
        data = conform(align_classes(data, card.class_names), card.image_size, card.in_channels)
        out[f"labels_{split}"] = data.labels
        for ten_crop in (False, True):
            classifier = create_classifier(path, "onnx", ten_crop=ten_crop, num_threads=threads)
            out[split + ("_tencrop" if ten_crop else "")] = classifier.predict(data.images)
            if mirror and not ten_crop:
                classifier.mirror = True
                out[f"{split}_mirror"] = classifier.predict(data.images)
    return out


def view_key(split: str, view: str) -> str:
    """The probabilities key of a split seen with a view (``centre`` is the plain split name)."""
    return split if view == "centre" else f"{split}_{view}"


def score(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    predicted = probs.argmax(axis=1)
    return {"accuracy": round(float((predicted == labels).mean()), 4),
            "macro_f1": round(float(f1_score(labels, predicted, average="macro")), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("candidates", nargs="+", help="shipped names, run folders or weights files (two or more)")
    parser.add_argument("--data", default="../shared/data/fer2013")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mirror", action="store_true",
                        help="also search subsets whose members average each face with its mirror image")
    args = parser.parse_args()
    if len(args.candidates) < 2:
        raise SystemExit("give at least two candidates")
    probs = {spec: candidate_probabilities(spec, args.data, args.threads, args.mirror) for spec in args.candidates}
    views = VIEWS if args.mirror else VIEWS[:1]
    labels = {split: probs[args.candidates[0]][f"labels_{split}"] for split in SPLITS}
    single = {spec: {view: score(labels[view.split("_")[0]], p[view]) for view in p if not view.startswith("labels")}
              for spec, p in probs.items()}
    subsets = []
    for size in range(2, len(args.candidates) + 1):
        for members in itertools.combinations(args.candidates, size):
            for view in views:
                mean = np.mean([probs[m][view_key("PublicTest", view)] for m in members], axis=0)
                subsets.append({"members": list(members), "view": view,
                                "PublicTest": score(labels["PublicTest"], mean)})
    chosen = max(subsets, key=lambda row: (row["PublicTest"]["accuracy"], -len(row["members"]),
                                           -VIEWS.index(row["view"])))
    report = {}
    for key in ("PublicTest_tencrop", view_key("PrivateTest", chosen["view"]), "PrivateTest_tencrop"):
        mean = np.mean([probs[m][key] for m in chosen["members"]], axis=0)
        report[key] = score(labels[key.split("_")[0]], mean)
    row = {"measured": date.today().isoformat(),
           "selected_on": f"PublicTest accuracy, views searched: {', '.join(views)}",
           "chosen": {**chosen, **report}, "single_models": single,
           "subsets": sorted(subsets, key=lambda r: -r["PublicTest"]["accuracy"])}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ensemble_search.json").write_text(json.dumps(row, indent=2) + "\n")
    print(json.dumps({"chosen": row["chosen"], "single_models": single}, indent=2))


if __name__ == "__main__":
    main()
