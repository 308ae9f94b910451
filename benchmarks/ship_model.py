"""Ship a trained run as a packaged model: copy its best weights into affectlens/weights/, measure it
(FER2013 PublicTest/PrivateTest with and without ten-crop, CK+ cross-dataset, size, CPU speed),
write those numbers into its model card, export the ONNX graph beside it, and set an alias.

    python benchmarks/ship_model.py runs/fer2013_vgg_small_e25 --name fer2013_vgg_small --alias default

The weights keep their training provenance (the run's config and epochs) in the card's ``extra``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from model_table import RESULTS, markdown_row, measure

from affectlens.data.registry import load_dataset
from affectlens.evaluation.runner import evaluate_weights
from affectlens.inference.export import export_onnx
from affectlens.models.card import read_card
from affectlens.models.shipped import ALIASES_FILE, WEIGHTS_DIR

MAX_BYTES = 30 * 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--name", required=True, help="file stem inside affectlens/weights/")
    parser.add_argument("--alias", action="append", default=[], help="e.g. default, fast")
    parser.add_argument("--weights", default="best.safetensors", help="which weights of the run")
    parser.add_argument("--fer2013", default="../shared/data/fer2013")
    parser.add_argument("--ckplus", default="../shared/data/ckplus48")
    parser.add_argument("--description", default="")
    args = parser.parse_args()

    source = args.run_dir / args.weights
    target = WEIGHTS_DIR / f"{args.name}.safetensors"
    if source.stat().st_size > MAX_BYTES:
        raise SystemExit(f"{source} is {source.stat().st_size / 2**20:.1f} MB; shipped models must stay under 30 MB")
    WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    card = read_card(source)
    target.with_suffix(".json").write_text(json.dumps(card.to_dict(), indent=2) + "\n")
    summary_file = args.run_dir / "summary.json"
    run_summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}

    row = measure(str(target), args.fer2013, Path("/tmp/affectlens-ship") / args.name)
    reports = Path("/tmp/affectlens-ship") / args.name
    ck = evaluate_weights(target, load_dataset("ckplus", args.ckplus), reports / "ckplus")
    metrics = {k: round(v, 4) for k, v in row.items() if k.endswith(("_accuracy", "_macro_f1"))}
    metrics["ckplus_cross_dataset_accuracy"] = round(ck["accuracy"], 4)
    metrics["ckplus_cross_dataset_macro_f1"] = round(ck["macro_f1"], 4)
    metrics["params"] = row["params"]
    metrics["multiply_adds"] = row["macs"]
    metrics["cpu_faces_per_second_onnx_b64"] = round(row["faces_per_second_onnx_b64"])
    card.metrics = metrics
    card.description = args.description or card.description
    card.extra = {**card.extra, "run": args.run_dir.name, "train_seconds": run_summary.get("train_seconds"),
                  "measured": row["date"], "machine": row["machine"],
                  "ckplus_note": "CK+ classes mapped by name; contempt (not a FER2013 class) dropped"}
    target.with_suffix(".json").write_text(json.dumps(card.to_dict(), indent=2) + "\n")
    # the ONNX graph ships beside the weights (same card, plus its torch-vs-ONNX check), so prediction
    # on ONNX Runtime needs neither PyTorch nor an export at load time
    export_onnx(target, target.with_suffix(".onnx"))

    aliases = json.loads(ALIASES_FILE.read_text()) if ALIASES_FILE.exists() else {}
    for alias in args.alias:
        aliases[alias] = args.name
    ALIASES_FILE.write_text(json.dumps(aliases, indent=2, sort_keys=True) + "\n")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps({**row, "card_metrics": metrics}, indent=2) + "\n")
    print(markdown_row(row))
    print(f"CK+ cross-dataset accuracy {ck['accuracy']:.4f}, macro-F1 {ck['macro_f1']:.4f}")


if __name__ == "__main__":
    main()
