"""What prior correction trades: accuracy on FER2013 against recall of rare emotions on CK+.

    python benchmarks/prior_correction.py --model default --model fast --model ensemble --strength 0 0.5 1

For every model and strength (``--prior-correction``; 0 = as trained) the shipped model, through
the same classifier ``predict`` uses (ONNX Runtime, centre crop), scores FER2013 PublicTest and
PrivateTest (distributed like its Training split) and all CK+ faces that map onto its classes
(never trained on; disgust is 19% of them against 1.5% of FER2013 Training). Reported: accuracy,
macro-F1, balanced accuracy (mean recall) and the recall of Angry and Disgust, the two classes a
FER2013 model confuses on CK+. Writes benchmarks/results/prior_correction.json and prints a
Markdown table for BENCHMARKS.md. Accuracy does not depend on the machine; nothing is timed.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

from affectlens.data.conform import conform
from affectlens.data.dataset import EmotionDataset
from affectlens.data.registry import load_dataset
from affectlens.evaluation.metrics import classification_metrics
from affectlens.evaluation.runner import align_classes
from affectlens.runtime.card import read_card
from affectlens.runtime.ensemble_card import is_ensemble_card, load_ensemble
from affectlens.runtime.factory import create_classifier
from affectlens.runtime.pretrained import resolve_model

RESULTS = Path(__file__).resolve().parent / "results"
WATCHED = ("Angry", "Disgust")


def evaluation_sets(data_root: Path) -> dict[str, EmotionDataset]:
    fer2013 = load_dataset("fer2013", data_root / "fer2013")
    return {"PublicTest": fer2013.select_splits("PublicTest"), "PrivateTest": fer2013.select_splits("PrivateTest"),
            "CK+": load_dataset("ckplus", data_root / "ckplus48")}


def scores(spec: str, strength: float, sets: dict[str, EmotionDataset], threads: int) -> dict[str, dict]:
    path = resolve_model(spec)
    card = load_ensemble(path).card if is_ensemble_card(path) else read_card(path)
    classifier = create_classifier(path, "onnx", num_threads=threads, prior_correction=strength)
    out = {}
    for name, data in sets.items():
        data = conform(align_classes(data, card.class_names), card.image_size, card.in_channels)
        metrics = classification_metrics(data.labels, classifier.predict(data.images), card.class_names)
        recall = {row["class"]: row["recall"] for row in metrics["per_class"]}
        out[name] = {"accuracy": round(metrics["accuracy"], 4), "macro_f1": round(metrics["macro_f1"], 4),
                     "balanced_accuracy": round(metrics["balanced_accuracy"], 4),
                     **{f"recall_{c}": round(recall[c], 4) for c in WATCHED if c in recall}}
    return out


def markdown(rows: list[dict]) -> str:
    lines = ["| model | strength | PublicTest acc | PrivateTest acc / macro-F1 | CK+ acc / macro-F1 | "
             "CK+ balanced acc | CK+ recall Angry / Disgust |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        pub, priv, ck = row["PublicTest"], row["PrivateTest"], row["CK+"]
        lines.append(f"| {row['model']} | {row['strength']:g} | {100 * pub['accuracy']:.2f} | "
                     f"{100 * priv['accuracy']:.2f} / {priv['macro_f1']:.3f} | {100 * ck['accuracy']:.2f} / "
                     f"{ck['macro_f1']:.3f} | {100 * ck['balanced_accuracy']:.1f} | "
                     f"{100 * ck.get('recall_Angry', float('nan')):.1f} / "
                     f"{100 * ck.get('recall_Disgust', float('nan')):.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[], help="shipped name or weights (repeatable)")
    parser.add_argument("--strength", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    sets = evaluation_sets(args.data_root)
    rows = []
    for spec in args.model or ["default"]:
        for strength in args.strength:
            rows.append({"model": spec, "strength": strength, **scores(spec, strength, sets, args.threads)})
            print(f"{spec} strength {strength:g}: " + ", ".join(
                f"{name} {100 * row['accuracy']:.2f}" for name, row in rows[-1].items()
                if isinstance(row, dict)), flush=True)
    RESULTS.mkdir(exist_ok=True)
    report = {"measured": date.today().isoformat(), "command": "python benchmarks/prior_correction.py "
              + " ".join(f"--model {m}" for m in args.model or ["default"]) + " --strength "
              + " ".join(f"{s:g}" for s in args.strength), "rows": rows}
    (RESULTS / "prior_correction.json").write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
