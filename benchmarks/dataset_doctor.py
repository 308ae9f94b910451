"""Dataset-doctor measurements (issue 5), on the real data in ../shared/data.

1. FER2013 inspection: duplicates found and the class-distribution table; the full report is
   written to benchmarks/results/fer2013_inspection/.
2. CK+ leakage: test accuracy after a random image-level split versus a subject-grouped split,
   same model and budget, over several seeds. The gap is the identity leakage that grouping removes.
3. FER2013 imbalance remedies: PrivateTest macro-F1 and recall of Disgust and Fear with no remedy
   and with each remedy (class weights, balanced sampler, focal loss, logit adjustment), same
   model, budget and seed; the best epoch is chosen by PublicTest macro-F1.

Run from the repository root (each part can be run alone; results are merged)::

    .venv/bin/python benchmarks/dataset_doctor.py                 # all parts
    .venv/bin/python benchmarks/dataset_doctor.py --parts ckplus  # one part

Writes benchmarks/results/dataset_doctor.md (with the command, machine and date) and
benchmarks/results/dataset_doctor.json (raw numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from affectlens.data.augment import AugmentConfig  # noqa: E402
from affectlens.data.preprocessing import Normalization  # noqa: E402
from affectlens.data.registry import load_dataset  # noqa: E402
from affectlens.training.config import (  # noqa: E402
    DataConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    SchedulerConfig,
    TrainConfig,
)
from affectlens.training.data_setup import PreparedData  # noqa: E402

SHARED = Path(os.environ.get("AFFECTLENS_SHARED", ROOT.parent / "shared")) / "data"
RESULTS = ROOT / "benchmarks" / "results"
RUNS = Path(os.environ.get("AFFECTLENS_BENCH_RUNS", "/tmp/affectlens_dataset_doctor_runs"))
JSON_PATH = RESULTS / "dataset_doctor.json"
MD_PATH = RESULTS / "dataset_doctor.md"

#: the remedies compared on FER2013: (name, TrainConfig changes)
REMEDIES: list[tuple[str, dict]] = [
    ("none (cross-entropy)", {}),
    ("class weights: inverse", {"loss": {"class_weights": "inverse"}}),
    ("class weights: effective (beta 0.999)", {"loss": {"class_weights": "effective"}}),
    ("class-balanced sampler", {"sampler": "balanced"}),
    ("focal loss (gamma 2)", {"loss": {"name": "focal", "focal_gamma": 2.0}}),
    ("logit adjustment (tau 1)", {"loss": {"name": "logit_adjusted", "logit_tau": 1.0}}),
]


def base_config(name: str, epochs: int, threads: int, seed: int = 0) -> TrainConfig:
    """The fixed model and budget every run of a comparison shares."""
    return TrainConfig(
        data=DataConfig(image_size=48, channels=1, normalization="unit"),
        augment=AugmentConfig(crop_size=40, erasing=0.0),
        model=ModelConfig(name="fast_cnn"),
        optim=OptimConfig(name="adam", lr=2e-3, weight_decay=1e-4),
        scheduler=SchedulerConfig(name="cosine"),
        loss=LossConfig(),
        epochs=epochs,
        batch_size=128,
        seed=seed,
        device="cpu",
        threads=threads,
        ten_crop=False,
        checkpoint_every_steps=0,
        output_dir=str(RUNS),
        run_name=name,
    )


def train_and_test(cfg: TrainConfig, data: PreparedData) -> dict:
    """Train, then return the test metrics of the selected weights (accuracy, macro-F1, recalls)."""
    from affectlens.training.loop import Trainer

    run_dir = RUNS / cfg.run_name
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    started = time.time()
    summary = Trainer(cfg, run_dir, data=data).fit()
    metrics = json.loads((run_dir / f"eval_{cfg.data.test_split}" / "metrics.json").read_text())
    return {
        "test_accuracy": metrics["accuracy"],
        "test_macro_f1": metrics["macro_f1"],
        "recall": {row["class"]: row["recall"] for row in metrics["per_class"]},
        "best_epoch": summary["best_epoch"],
        "seconds": round(time.time() - started, 1),
    }


# ------------------------------------------------------------------------------------ 1. inspection
def part_inspect(results: dict) -> None:
    from affectlens.data.doctor import inspect_dataset, write_inspection_report

    fer = load_dataset("fer2013", SHARED / "fer2013")
    started = time.time()
    report = inspect_dataset(fer, progress=False)
    seconds = time.time() - started
    out = RESULTS / "fer2013_inspection"
    write_inspection_report(report, out, fer)
    dup = report["duplicates"]
    results["inspect"] = {
        "seconds": round(seconds, 1),
        "samples": len(fer),
        "exact": {k: v for k, v in dup["exact"].items() if k != "listed"},
        "near": {k: v for k, v in dup["near"].items() if k != "listed"},
        "near_blank": report["images"]["near_blank_count"],
        "class_distribution": {k: report["class_distribution"][k] for k in ("class_names", "splits", "counts",
                                                                           "shares")},
        "divergence": [{"split": c["split"], "js": c["js_divergence"]}
                       for c in report["split_divergence"]["comparisons"]],
        "warnings": [w["message"] for w in report["warnings"] if w["severity"] == "high"],
    }


# ---------------------------------------------------------------------------------------- 2. CK+
def part_ckplus(results: dict, seeds: int, epochs: int, threads: int) -> None:
    """Random image-level split vs subject-grouped split, 80/20, same model and budget, several seeds."""
    from affectlens.data.splits import make_splits

    ck = load_dataset("ckplus", SHARED / "ckplus48")
    rows = {"random": [], "grouped": []}
    for seed in range(seeds):
        for label, method in (("random", "stratified"), ("grouped", "stratified_grouped")):
            parts = make_splits(ck, method, {"train": 0.8, "test": 0.2}, group_by="subject", seed=seed)
            train, test = ck.subset(parts["train"]), ck.subset(parts["test"])
            shared = len(set(train.subjects) & set(test.subjects))
            data = PreparedData(train, None, test, Normalization.fit("unit", train.images), list(ck.class_names))
            cfg = base_config(f"ckplus-{label}-seed{seed}", epochs, threads, seed)
            cfg.data = cfg.data.replace(kind="ckplus", path=str(SHARED / "ckplus48"), test_split="test")
            out = train_and_test(cfg, data)
            out.update({"seed": seed, "train": len(train), "test": len(test), "shared_subjects": shared})
            rows[label].append(out)
            print(f"ckplus {label} seed {seed}: acc {out['test_accuracy']:.4f} macro-F1 {out['test_macro_f1']:.4f} "
                  f"({shared} subjects shared, {out['seconds']}s)", flush=True)
    results["ckplus"] = {"seeds": seeds, "epochs": epochs, "runs": rows}


# ------------------------------------------------------------------------------------ 3. remedies
def part_remedies(results: dict, epochs: int, threads: int, train_limit: int) -> None:
    from affectlens.data.splits import stratified_sample

    fer = load_dataset("fer2013", SHARED / "fer2013")
    train = fer.select_splits("Training")
    train_total = len(train)
    if train_limit:
        train = train.subset(stratified_sample(train.labels, train_limit, seed=0))
    val, test = fer.select_splits("PublicTest"), fer.select_splits("PrivateTest")
    data = PreparedData(train, val, test, Normalization.fit("unit", train.images), list(fer.class_names))
    rows = results["remedies"] = {"epochs": epochs, "train_images": len(train), "train_total": train_total,
                                  "runs": {}}  # fresh: every row of the table has the same budget
    for name, changes in REMEDIES:
        cfg = base_config("fer2013-" + name.split(" (")[0].replace(": ", "-").replace(" ", "_"), epochs, threads)
        cfg.select_metric = "val_macro_f1"
        cfg.data = cfg.data.replace(path=str(SHARED / "fer2013"), test_split="PrivateTest", val_split="PublicTest")
        if "loss" in changes:
            cfg.loss = cfg.loss.replace(**changes["loss"])
        if "sampler" in changes:
            cfg.sampler = changes["sampler"]
        out = train_and_test(cfg, data)
        rows["runs"][name] = out
        print(f"remedy {name}: macro-F1 {out['test_macro_f1']:.4f} acc {out['test_accuracy']:.4f} "
              f"Disgust {out['recall']['Disgust']:.3f} Fear {out['recall']['Fear']:.3f} ({out['seconds']}s)",
              flush=True)
        save(results)


# ------------------------------------------------------------------------------------------ output
def save(results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    JSON_PATH.write_text(json.dumps(results, indent=1) + "\n")
    MD_PATH.write_text(render(results))


def _mean_std(values: list[float]) -> str:
    arr = 100 * np.asarray(values)
    return f"{arr.mean():.1f} ± {arr.std(ddof=1) if len(arr) > 1 else 0:.1f}"


def _stamp(part: dict) -> list[str]:
    """The command and date that produced one section."""
    if "command" not in part:
        return []
    return [f"Command: `{part['command']}` ({part['date']})", ""]


def render(results: dict) -> str:
    meta = results.get("meta", {})
    lines = ["# Dataset doctor: measurements", "",
             "Three measurements for issue 5 (dataset doctor), on ../shared/data read in place. Each section "
             "names the exact command that produced it and when; `benchmarks/results/dataset_doctor.json` holds "
             "the raw numbers.", "",
             f"- Machine: {meta.get('machine', '')}",
             f"- Last updated: {meta.get('date', '')}", ""]
    ins = results.get("inspect")
    if ins:
        ex, near = ins["exact"], ins["near"]
        lines += ["## 1. FER2013 inspection (`affectlens inspect ../shared/data/fer2013`)", "",
                  *_stamp(ins),
                  f"{ins['samples']:,} images inspected in {ins['seconds']} s (exact + near duplicates, image "
                  "statistics). Full report: [fer2013_inspection/report.md](fer2013_inspection/report.md).", "",
                  "| duplicates | count |", "|---|---:|",
                  f"| groups of pixel-identical images | {ex['groups']:,} |",
                  f"| extra copies (all but one per group) | {ex['extra_copies']:,} |",
                  f"| ... within one split (the known ~1,270) | {ex['extra_copies_within_splits']:,} |",
                  f"| groups spread over several splits | {ex['groups_across_splits']:,} |",
                  f"| groups whose labels disagree | {ex['label_conflict_groups']:,} |"]
        lines += [f"| {s} images identical to a Training image | {n:,} |"
                  for s, n in ex["copies_of_reference_in"].items()]
        lines += [f"| near-identical pairs (phash ≤ {near['threshold_bits']} bits, not identical) | "
                  f"{near['pairs']:,} |",
                  f"| ... across splits | {near['pairs_across_splits']:,} |"]
        lines += [f"| {s} images near-identical to a Training image | {n:,} |"
                  for s, n in near["near_copies_of_reference_in"].items()]
        lines += [f"| near-blank images (std < 2) | {ins['near_blank']:,} |", ""]
        dist = ins["class_distribution"]
        header = "| class | " + " | ".join(f"{s} | %" for s in dist["splits"]) + " |"
        lines += ["Class distribution:", "", header, "|---|" + "---:|" * (2 * len(dist["splits"]))]
        for c, name in enumerate(dist["class_names"]):
            cells = " | ".join(f"{dist['counts'][s][c]:,} | {100 * dist['shares'][s][c]:.1f}" for s in dist["splits"])
            lines.append(f"| {name} | {cells} |")
        lines += ["", "Jensen-Shannon divergence from Training: "
                  + ", ".join(f"{d['split']} {d['js']:.4f}" for d in ins["divergence"]) + " bits.", ""]
    ck = results.get("ckplus")
    if ck:
        lines += ["## 2. CK+: random image-level split vs subject-grouped split", "", *_stamp(ck),
                  f"CK+48 (981 images, 118 subjects), 80/20 train/test, {ck['seeds']} seeds (0-{ck['seeds'] - 1}), "
                  f"`fast_cnn`, {ck['epochs']} epochs, Adam 2e-3 cosine, crop 40 + flip/affine, last epoch "
                  "evaluated (no validation split, so no selection on the test part). Random: `make_splits(..., "
                  "'stratified')`; grouped: `make_splits(..., 'stratified_grouped', group_by='subject')`.", "",
                  "| split | test accuracy % (mean ± sd) | test macro-F1 % | subjects in both train and test |",
                  "|---|---:|---:|---:|"]
        for label in ("random", "grouped"):
            runs = ck["runs"][label]
            if not runs:
                continue
            shared = np.mean([r["shared_subjects"] for r in runs])
            lines.append(f"| {label} | {_mean_std([r['test_accuracy'] for r in runs])} | "
                         f"{_mean_std([r['test_macro_f1'] for r in runs])} | {shared:.0f} |")
        if ck["runs"]["random"] and ck["runs"]["grouped"]:
            gap = 100 * (np.mean([r["test_accuracy"] for r in ck["runs"]["random"]])
                         - np.mean([r["test_accuracy"] for r in ck["runs"]["grouped"]]))
            lines += ["", f"Leakage gap (random minus grouped accuracy): **{gap:.1f} points**. Per seed: "
                      + "; ".join(f"seed {a['seed']}: {100 * a['test_accuracy']:.1f} vs {100 * b['test_accuracy']:.1f}"
                                  for a, b in zip(ck["runs"]["random"], ck["runs"]["grouped"], strict=False)) + ".",
                      "", "Why: CK+ keeps the last 3 (near-identical) frames of each sequence and about 8 images per "
                      "subject, so a random split tests mostly on people, and even frames, seen in training. The "
                      "grouped number is the one to expect on new people."]
        lines.append("")
    rem = results.get("remedies")
    if rem and rem["runs"]:
        lines += ["## 3. FER2013: imbalance remedies", "", *_stamp(rem),
                  ("Train on Training (all {:,} images)".format(rem["train_images"])
                   if rem["train_images"] >= rem.get("train_total", rem["train_images"]) else
                   "Train on a fixed stratified subset of Training ({:,} of {:,} images, class shares kept, seed 0; "
                   "a full-size run per remedy did not fit the budget on this shared 2-core machine)".format(
                       rem["train_images"], rem.get("train_total", 28709)))
                  + ", select the epoch by PublicTest macro-F1, "
                  f"report on the full PrivateTest (3,589). Same model and budget for all: `fast_cnn`, "
                  f"{rem['epochs']} epochs, batch 128, Adam 2e-3 cosine, crop 40 + flip/affine, seed 0, 1 CPU thread.",
                  "", "| remedy | macro-F1 % | accuracy % | recall Disgust % | recall Fear % | best epoch | minutes |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for name, r in rem["runs"].items():
            lines.append(f"| {name} | {100 * r['test_macro_f1']:.1f} | {100 * r['test_accuracy']:.1f} | "
                         f"{100 * r['recall']['Disgust']:.1f} | {100 * r['recall']['Fear']:.1f} | {r['best_epoch']} | "
                         f"{r['seconds'] / 60:.1f} |")
        lines += ["", "One seed per remedy and a short budget (the models are under-trained, so Fear recall is low "
                  "for all): differences of a point or two in macro-F1 are within run-to-run noise. The "
                  "Disgust recall column shows what each remedy does to the rarest class.", ""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="inspect,ckplus,remedies")
    parser.add_argument("--ck-seeds", type=int, default=5)
    parser.add_argument("--ck-epochs", type=int, default=30)
    parser.add_argument("--fer-epochs", type=int, default=5)
    parser.add_argument("--fer-train-limit", type=int, default=0, help="stratified subset of Training (0 = all)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    results = json.loads(JSON_PATH.read_text()) if JSON_PATH.exists() else {}
    results["meta"] = {
        "command": "cd /work/main && .venv/bin/python benchmarks/dataset_doctor.py " + shlex.join(sys.argv[1:]),
        "machine": f"{os.cpu_count()}-core CPU ({platform.processor() or platform.machine()}), shared with other "
                   f"jobs; torch threads {args.threads}; Python {platform.python_version()}",
        "date": datetime.now().strftime("%Y-%m-%d %H:%M"),
    }
    parts = args.parts.split(",")
    stamp = {"command": results["meta"]["command"], "date": results["meta"]["date"]}
    if "inspect" in parts:
        part_inspect(results)
        results["inspect"].update(stamp)
        save(results)
    if "ckplus" in parts:
        part_ckplus(results, args.ck_seeds, args.ck_epochs, args.threads)
        results["ckplus"].update(stamp)
        save(results)
    if "remedies" in parts:
        part_remedies(results, args.fer_epochs, args.threads, args.fer_train_limit)
        results["remedies"].update(stamp)
        save(results)
    print(f"wrote {MD_PATH}")


if __name__ == "__main__":
    main()
