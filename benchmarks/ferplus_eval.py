"""FER+ benchmark: accuracy against the FER+ majority-vote labels on the FER+ test rows.

(a) a model trained on FER+ itself: ``fast_cnn`` on FER+ Training with the crowd's vote
    distributions as soft targets (configs/ferplus_fast_cpu.yaml), epoch chosen on PublicTest;
(b) FER2013-trained models (FER2013's own labels) evaluated on the FER+ test rows. Their classes are
    mapped onto FER+'s by name (evaluate_weights / align_classes); FER+ ``contempt`` has no FER2013
    counterpart, so contempt rows are dropped and (b) is a 7-class comparison. Model (a) is also
    scored on those same 7-class rows (its 8-way argmax: a contempt prediction counts as an error).

Rows whose majority is ``unknown`` or ``not a face`` are excluded, as FER+ does. PublicTest is not a
clean test split for any of the models: it selected the epoch of (a) and (with FER2013 labels) of
the FER2013 runs. The FER+ pixels are the lossless originals; the FER2013 models saw the JPEG
re-packaging (about 1.7 grey levels RMSE apart).

    python benchmarks/ferplus_eval.py                      # train (a), then evaluate (waits for the FER runs)

Runs land in runs/bench-ferplus/; results in benchmarks/results/ferplus.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from affectlens.config_io import load_config
from affectlens.data.registry import load_dataset
from affectlens.evaluation.metrics import classification_metrics
from affectlens.evaluation.runner import evaluate_weights
from affectlens.models.weights import read_card
from affectlens.training.config import TrainConfig
from affectlens.training.loop import CHECKPOINT, Trainer, new_run_dir

RESULTS = Path(__file__).resolve().parent / "results"
MACHINE = "2-core AMD EPYC CPU, 1 torch thread"
SPLITS = ("PrivateTest", "PublicTest")


def ferplus_config(args: argparse.Namespace) -> TrainConfig:
    overrides = [f"epochs={args.epochs}", f"threads={args.threads}", f"data.path={args.data}",
                 "output_dir=runs", f"run_name={args.run_name}", *args.set]
    return load_config(TrainConfig, args.config, overrides)


def train_ferplus(cfg: TrainConfig) -> Path:
    run_dir = Path(cfg.output_dir) / cfg.run_name
    if (run_dir / "summary.json").exists():
        return run_dir
    trainer = Trainer(cfg, run_dir if run_dir.exists() else new_run_dir(cfg))
    if (run_dir / CHECKPOINT).exists():
        trainer.load_checkpoint()
    trainer.fit()
    return run_dir


def wait_for(weights: list[Path], wait: bool, allow_unfinished: bool) -> float:
    """Wait until every weights file's run has written summary.json; returns the seconds waited."""
    start = time.time()
    for w in weights:
        summary = w.parent / "summary.json"
        if summary.exists() or allow_unfinished:
            continue
        if not wait:
            raise SystemExit(f"{w.parent} has no summary.json yet (still training?); use --wait or --allow-unfinished")
        print(f"waiting for {summary} ...", flush=True)
        while not summary.exists():
            time.sleep(60)
    return time.time() - start


def short(metrics: dict) -> dict:
    return {"n": metrics["n"], "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
            "balanced_accuracy": metrics["balanced_accuracy"], "classes": metrics["class_names"],
            "per_class_recall": {c["class"]: c["recall"] for c in metrics["per_class"]}}


def evaluate_all(args: argparse.Namespace, ferplus_weights: Path, fer_weights: list[Path]) -> list[dict]:
    torch.set_num_threads(args.threads)
    dataset = load_dataset("ferplus", args.data)
    out_root = Path(args.eval_dir)
    rows = []
    models = [("a", ferplus_weights), *[("b", w) for w in fer_weights]]
    for group, weights in models:
        card = read_card(weights)
        run = weights.parent
        summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else {}
        row = {"group": group, "weights": str(weights), "architecture": card.architecture,
               "trained_on": card.training_data, "classes": card.class_names,
               "run_finished": bool(summary), "run_epochs": summary.get("epochs", card.extra.get("epochs")),
               "best_epoch": summary.get("best_epoch", card.metrics.get("epoch")),
               "own_test": {k: summary[k] for k in ("test_accuracy", "test_accuracy_tencrop", "test_macro_f1")
                            if k in summary}, "results": {}}
        for split in args.splits:
            test = dataset.select_splits(split)
            for tencrop in (False, True):
                tag = f"{split}{'_tencrop' if tencrop else ''}"
                out_dir = out_root / run.name / tag
                metrics = evaluate_weights(weights, test, out_dir, ten_crop=tencrop,
                                           title=f"{run.name} on FER+ {split} (majority vote)")
                row["results"][tag] = short(metrics)
                if group == "a":  # the same 7-class rows as (b): drop FER+ contempt
                    keep = test.labels != dataset.class_names.index("Contempt")
                    probs = np.load(out_dir / "probabilities.npy")
                    row["results"][f"{tag}_7class"] = short(
                        classification_metrics(test.labels[keep], probs[keep], card.class_names))
                print(f"{run.name} {tag}: accuracy {metrics['accuracy']:.4f} macro-F1 {metrics['macro_f1']:.3f} "
                      f"(n {metrics['n']})", flush=True)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/ferplus")
    parser.add_argument("--config", default="configs/ferplus_fast_cpu.yaml")
    parser.add_argument("--epochs", type=int, default=18)
    parser.add_argument("--run-name", default="", help="default bench-ferplus/fast_cnn_soft_e<epochs>")
    parser.add_argument("--fer-models", nargs="*", type=Path,
                        default=[Path("runs/fer2013_fast_e40/best.safetensors"),
                                 Path("runs/fer2013_vgg_small_e25/best.safetensors")],
                        help="FER2013-trained weights to evaluate on FER+ (setting b)")
    parser.add_argument("--eval-dir", default="runs/bench-ferplus/eval")
    parser.add_argument("--splits", nargs="+", choices=SPLITS, default=list(SPLITS))
    parser.add_argument("--parts", nargs="+", choices=["train", "eval"], default=["train", "eval"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="extra overrides of the FER+ training config (e.g. data.max_per_split=500)")
    parser.add_argument("--wait", action=argparse.BooleanOptionalAction, default=True,
                        help="wait until the FER2013 runs have written summary.json")
    parser.add_argument("--allow-unfinished", action="store_true")
    args = parser.parse_args()
    args.run_name = args.run_name or f"bench-ferplus/fast_cnn_soft_e{args.epochs}"
    command = "python benchmarks/ferplus_eval.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    started = time.time()
    cfg = ferplus_config(args)
    run_dir = Path(cfg.output_dir) / cfg.run_name
    if "train" in args.parts:
        train_ferplus(cfg)
    if "eval" not in args.parts:
        return
    waited = wait_for(args.fer_models, args.wait, args.allow_unfinished)
    eval_started = time.time()
    rows = evaluate_all(args, run_dir / "best.safetensors", args.fer_models)
    wall = time.time() - started - waited  # not counting the wait for the FER2013 runs
    train_summary = json.loads((run_dir / "summary.json").read_text())
    meta = {"benchmark": "ferplus", "command": command.strip(), "machine": MACHINE, "date": date.today().isoformat(),
            "config": args.config, "epochs": args.epochs, "ferplus_run": str(run_dir),
            "ferplus_train_seconds": train_summary["train_seconds"],
            "eval_seconds": round(time.time() - eval_started), "wall_seconds": round(wall),
            "labels": "FER+ majority vote over the 8 emotions; rows where unknown/not-a-face win are excluded",
            "seven_class_note": "FER2013 models: FER+ classes mapped by name, contempt rows dropped (7 classes)"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ferplus.json").write_text(json.dumps({"meta": meta, "models": rows}, indent=2) + "\n")
    write_markdown(meta, rows, args.splits)


def write_markdown(meta: dict, rows: list[dict], splits: list[str]) -> None:
    lines = [
        "# FER+ majority-vote accuracy", "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}; date {meta['date']}; FER+ model (a): `fast_cnn`, {meta['epochs']} epochs "
        f"({meta['config']}), training {meta['ferplus_train_seconds'] / 60:.1f} min; evaluation "
        f"{meta['eval_seconds'] / 60:.1f} min; wall time of this command {meta['wall_seconds'] / 60:.1f} min.", "",
        "Labels: FER+ majority vote over the 8 emotions (rows where unknown / not-a-face win are excluded). "
        "(a) is trained on FER+ Training with the vote distributions as soft targets, epoch chosen on "
        "PublicTest. (b) are FER2013-trained models (FER2013 labels): their classes are mapped onto FER+ by name "
        "and the FER+ contempt rows are dropped, so (b) is a **7-class** comparison; (a) is shown on all 8 "
        "classes and on the same 7-class rows (8-way argmax). PublicTest chose the epoch of every model here "
        "(with FER2013 labels for (b)), so PrivateTest is the clean number. FER+ pixels are the lossless "
        "originals; the FER2013 models were trained on the JPEG re-packaging.", "",
    ]
    for split in splits:
        lines += [f"## {split}", "",
                  "| model | trained on | classes scored | n | accuracy | ten-crop acc | macro-F1 "
                  "| ten-crop macro-F1 |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in rows:
            name = f"({row['group']}) `{row['weights']}` ({row['architecture']}"
            name += f", {row['run_epochs']} ep)" if row["run_finished"] \
                else f", UNFINISHED run, epoch {row['best_epoch']})"
            variants = [("", "8 (all)"), ("_7class", "7 (no contempt)")] if row["group"] == "a" \
                else [("", "7 (contempt dropped)")]
            for suffix, label in variants:
                c = row["results"][f"{split}{suffix}"]
                t = row["results"][f"{split}_tencrop{suffix}"]
                lines.append(f"| {name} | {row['trained_on']} | {label} | {c['n']} | **{100 * c['accuracy']:.2f}** | "
                             f"{100 * t['accuracy']:.2f} | {c['macro_f1']:.3f} | {t['macro_f1']:.3f} |")
        lines.append("")
    lines += ["For reference, the FER2013 models on FER2013 PrivateTest with FER2013 labels (their run summaries):", "",
              "| model | accuracy | ten-crop | macro-F1 |", "|---|---|---|---|"]
    for row in rows:
        if row["group"] == "b" and row["own_test"]:
            o = row["own_test"]
            tc = f"{100 * o['test_accuracy_tencrop']:.2f}" if "test_accuracy_tencrop" in o else "-"
            lines.append(f"| `{row['weights']}` | {100 * o['test_accuracy']:.2f} | {tc} | {o['test_macro_f1']:.3f} |")
    (RESULTS / "ferplus.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
