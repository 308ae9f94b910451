"""The optimizer and learning-rate-scheduler studies of Khaireddin & Chen (2021), at a CPU budget.

Every run trains the same network (default ``fast_cnn``) on FER2013 Training for the same number of
epochs, selects the epoch on PublicTest and reports PrivateTest (centre crop and ten-crop).

    python benchmarks/optim_study.py --epochs 6 --study optimizers
    python benchmarks/optim_study.py --epochs 6 --study schedulers

Runs land in runs/study-*; results in benchmarks/results/{optimizer,scheduler}_study.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date
from pathlib import Path

from affectlens.config_io import load_config
from affectlens.training.config import TrainConfig
from affectlens.training.loop import Trainer, new_run_dir

RESULTS = Path(__file__).resolve().parent / "results"

#: (name, optimizer, learning rate): each optimizer at its customary learning rate
OPTIMIZERS = [
    ("SGD", "sgd", 0.01), ("SGD + Nesterov", "sgd_nesterov", 0.01), ("Averaged SGD", "asgd", 0.01),
    ("Adam", "adam", 0.001), ("Adam + AMSGrad", "amsgrad", 0.001), ("Adadelta", "adadelta", 1.0),
    ("Adagrad", "adagrad", 0.01),
]
SCHEDULERS = ["plateau", "cosine", "cosine_restarts", "onecycle", "step"]


def run_one(name: str, overrides: list[str], args: argparse.Namespace) -> dict:
    base = [f"model.name={args.model}", f"epochs={args.epochs}", f"threads={args.threads}", "output_dir=runs",
            f"data.path={args.data}", "batch_size=128", "scheduler.patience=1", "checkpoint_every_steps=0",
            f"data.max_train_samples={args.train_samples}"]
    cfg = load_config(TrainConfig, None, base + overrides + [f"run_name=study-{args.study}-{name}"])
    run_dir = Path(cfg.output_dir) / cfg.run_name
    if (run_dir / "summary.json").exists():  # finished earlier: reuse (the study is resumable)
        summary = json.loads((run_dir / "summary.json").read_text())
    else:
        trainer = Trainer(cfg, run_dir if run_dir.exists() else new_run_dir(cfg))
        if (run_dir / "checkpoint.pt").exists():
            trainer.load_checkpoint()
        summary = trainer.fit()
    history = json.loads((run_dir / "metrics.json").read_text())
    return {"name": name, "overrides": overrides, "best_public": max(r["val_accuracy"] for r in history),
            "private": summary["test_accuracy"], "private_tencrop": summary.get("test_accuracy_tencrop"),
            "private_macro_f1": summary["test_macro_f1"], "seconds": summary["train_seconds"],
            "run_dir": str(run_dir)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", choices=["optimizers", "schedulers"], required=True)
    parser.add_argument("--model", default="fast_cnn")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train-samples", type=int, default=0, help="stratified cap on Training (0 = all)")
    parser.add_argument("--data", default="../shared/data/fer2013")
    args = parser.parse_args()
    started = time.time()
    rows = []
    if args.study == "optimizers":
        for label, opt, lr in OPTIMIZERS:
            rows.append(run_one(opt, [f"optim.name={opt}", f"optim.lr={lr}", "scheduler.name=plateau"], args))
            rows[-1]["label"] = f"{label} (lr {lr:g})"
    else:
        for sched in SCHEDULERS:
            period = max(1, args.epochs // 3)
            extra = [f"scheduler.restart_period={period}", f"scheduler.step_size={period}", "scheduler.max_lr=0.05"]
            overrides = ["optim.name=sgd_nesterov", "optim.lr=0.01", f"scheduler.name={sched}", *extra]
            rows.append(run_one(sched, overrides, args))
            rows[-1]["label"] = sched
    meta = {"study": args.study, "model": args.model, "epochs": args.epochs, "date": date.today().isoformat(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch threads {args.threads}",
            "command": f"python benchmarks/optim_study.py --study {args.study} --epochs {args.epochs} "
                       f"--model {args.model} --threads {args.threads} --train-samples {args.train_samples}",
            "wall_seconds": round(time.time() - started)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "optimizer_study" if args.study == "optimizers" else "scheduler_study"
    (RESULTS / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = [f"Command: `{meta['command']}`  ", f"Machine: {meta['machine']}; date {meta['date']}; "
             f"{args.epochs} epochs per run on FER2013 Training "
             f"({args.train_samples or 'all'} images, stratified), epoch chosen on PublicTest (full), "
             "reported on PrivateTest (full).", "",
             "| run | best PublicTest acc | PrivateTest acc | PrivateTest ten-crop | PrivateTest macro-F1 "
             "| train time |",
             "|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: -r["private"]):
        tc = f"{100 * r['private_tencrop']:.2f}" if r["private_tencrop"] is not None else "-"
        lines.append(f"| {r['label']} | {100 * r['best_public']:.2f} | {100 * r['private']:.2f} | {tc} | "
                     f"{r['private_macro_f1']:.3f} | {r['seconds'] / 60:.1f} min |")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
