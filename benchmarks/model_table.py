"""One row of the FER2013 model table: accuracy and macro-F1 on PublicTest and PrivateTest (centre
crop and ten-crop), parameters, multiply-adds, and CPU faces/second with ONNX Runtime at batch 64.

    python benchmarks/model_table.py --model default --model runs/<run> [--data ../shared/data/fer2013]
    python benchmarks/model_table.py --model default --model fast --speed-only

A model whose card says ``mirror`` is timed as it ships (each face and its mirror image) and, in
the same run, as ``--no-mirror`` answers (``unmirrored_faces_per_second_onnx_b64``).

Writes benchmarks/results/models/<name>.json and prints Markdown rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np

from affectlens.data.registry import load_dataset
from affectlens.evaluation.runner import evaluate_weights
from affectlens.models.complexity import count_macs, count_params
from affectlens.models.weights import load_weights
from affectlens.runtime.factory import create_classifier
from affectlens.runtime.pretrained import resolve_model

RESULTS = Path(__file__).resolve().parent / "results" / "models"


def throughput(weights: Path, image_size: int, channels: int, batch: int = 64, seconds: float = 5.0,
               mirror: bool | None = None) -> float:
    """Aligned faces per second through ONNX Runtime at a fixed batch size (``mirror``: as
    :func:`~affectlens.runtime.classifiers.create_classifier` takes it)."""
    classifier = create_classifier(weights, backend="onnx", mirror=mirror)
    faces = np.random.default_rng(0).integers(0, 255, (batch, image_size, image_size, channels), dtype=np.uint8)
    classifier.predict(faces)  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        classifier.predict(faces)
        done += batch
    return done / (time.perf_counter() - start)


def measure(spec: str, data_path: str, out_root: Path) -> dict:
    weights = resolve_model(spec)
    model, card = load_weights(weights)
    name = weights.stem if weights.parent.name == "weights" else weights.parent.name
    row: dict = {"model": name, "weights": str(weights), "architecture": card.architecture,
                 "params": count_params(model), "macs": count_macs(model, card.input_size, card.in_channels),
                 "date": date.today().isoformat(), "machine": f"{platform.machine()} {os.cpu_count()} cores"}
    fer = load_dataset("fer2013", data_path)
    for split in ("PublicTest", "PrivateTest"):
        for ten in (False, True):
            key = f"{split}{'_tencrop' if ten else ''}"
            metrics = evaluate_weights(weights, fer.select_splits(split), out_root / name / key, ten_crop=ten)
            row[f"{key}_accuracy"] = metrics["accuracy"]
            row[f"{key}_macro_f1"] = metrics["macro_f1"]
    row["faces_per_second_onnx_b64"] = throughput(weights, card.image_size, card.in_channels)
    row["training"] = card.extra
    return row


def markdown_row(row: dict) -> str:
    def pct(key: str) -> str:
        return f"{100 * row[key]:.2f}"

    return (f"| {row['model']} | {row['architecture']} | {pct('PrivateTest_accuracy')} | "
            f"{pct('PrivateTest_tencrop_accuracy')} | {row['PrivateTest_tencrop_macro_f1']:.3f} | "
            f"{pct('PublicTest_accuracy')} | {pct('PublicTest_tencrop_accuracy')} | "
            f"{row['params'] / 1e6:.2f} M | {row['macs'] / 1e6:.1f} M | {row['faces_per_second_onnx_b64']:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="shipped name, run folder or weights")
    parser.add_argument("--data", default="../shared/data/fer2013")
    parser.add_argument("--reports", default="/tmp/affectlens-model-table", help="where evaluation reports go")
    parser.add_argument("--speed-only", action="store_true", help="only the ONNX Runtime throughput")
    args = parser.parse_args()
    if args.speed_only:
        for spec in args.model:
            weights = resolve_model(spec)
            card = load_weights(weights)[1]
            load = os.getloadavg()[0]
            rate = throughput(weights, card.image_size, card.in_channels)
            row = {"model": spec, "weights": str(weights), "faces_per_second_onnx_b64": round(rate),
                   "load_average_1min_before": load, "date": date.today().isoformat(),
                   "machine": f"{platform.machine()} {os.cpu_count()} cores"}
            mirrored = " (each face and its mirror image)" if card.mirror else ""
            print(f"{spec}: {rate:,.0f} aligned faces/s{mirrored} (ONNX Runtime, batch 64; 1-min load average "
                  f"{load:.2f})")
            if card.mirror:
                plain = throughput(weights, card.image_size, card.in_channels, mirror=False)
                row["unmirrored_faces_per_second_onnx_b64"] = round(plain)
                print(f"{spec} --no-mirror: {plain:,.0f} aligned faces/s")
            (RESULTS / f"{weights.stem}_speed.json").write_text(json.dumps(row, indent=2) + "\n")
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    print("| model | architecture | PrivateTest acc | PrivateTest acc ten-crop | PrivateTest macro-F1 ten-crop | "
          "PublicTest acc | PublicTest acc ten-crop | params | multiply-adds | CPU faces/s (ONNX, b64) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for spec in args.model:
        row = measure(spec, args.data, Path(args.reports))
        (RESULTS / f"{row['model']}.json").write_text(json.dumps(row, indent=2) + "\n")
        print(markdown_row(row), flush=True)


if __name__ == "__main__":
    main()
