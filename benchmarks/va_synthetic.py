"""Synthetic continuous-emotion benchmark: CNN-GRU vs per-frame CNN on real FER2013 faces in "videos".

No valence/arousal video data is available offline; this measures the sequence machinery on a task
whose answer is known (:mod:`affectlens.data.synthetic_va`): FER2013 faces (Training rows only)
dealt into videos, each face's value its ranked mean brightness in [-1, 1], and a frame's target the
exponential moving average (``--memory``) of the values up to it, 20% of frames unlabelled (NaN).
A per-frame model cannot exceed a correlation (hence CCC) of ``sqrt(1 - memory^2)``; a recurrent one
can reach 1. Both models train with the same recipe (windows of 80 frames, 4 per batch, 1 - CCC,
Adam) through the ordinary training loop, and are scored on the PrivateTest videos, whole videos
from their first frame, as ``affectlens evaluate`` scores them.

    python benchmarks/va_synthetic.py                  # full size: about 3 min on 2 quiet cores
    python benchmarks/va_synthetic.py --quick          # a smoke run (about a minute), not for the table

Writes benchmarks/results/va_synthetic.json and .md (the --quick run writes *_quick.*).
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from affectlens.data.preprocessing import Normalization
from affectlens.data.registry import load_dataset
from affectlens.data.synthetic_va import synthetic_va_videos
from affectlens.training.config import TrainConfig
from affectlens.training.data_setup import PreparedData
from affectlens.training.runs import make_trainer
from affectlens.utils.markdown import markdown_table

ROOT = Path(__file__).resolve().parents[1]


def models(width: int, hidden: int) -> dict[str, dict]:
    backbone = {"width": width, "fc_dim": 32, "dropout": 0.0}
    return {
        "per-frame CNN (fast_cnn)": {"name": "fast_cnn", "options": backbone},
        "CNN-GRU (fast_cnn + 2-layer GRU)": {"name": "cnn_gru", "options": {
            "backbone": "fast_cnn", "backbone_options": backbone, "hidden": hidden, "layers": 2}},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fer2013"))
    parser.add_argument("--size", type=int, default=32, help="face side in pixels")
    parser.add_argument("--videos", type=int, nargs=3, default=[120, 30, 30],
                        help="Training PublicTest PrivateTest videos (all cut from the 28,709 Training faces)")
    parser.add_argument("--frames", type=int, nargs=2, default=[60, 200], help="shortest and longest video")
    parser.add_argument("--memory", type=float, default=0.9)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="small smoke run, written to *_quick.*")
    args = parser.parse_args()
    if args.quick:
        args.size, args.videos, args.frames, args.epochs, args.seeds = 16, [24, 6, 6], [30, 60], 2, [0]
    torch.set_num_threads(args.threads)
    started = time.time()
    fer = load_dataset("fer2013", args.data).select_splits("Training")
    faces = np.stack([cv2.resize(f, (args.size, args.size), interpolation=cv2.INTER_AREA)
                      for f in fer.images[..., 0]])[..., None]
    rows, results = [], []
    for seed in args.seeds:
        ds = synthetic_va_videos(faces, tuple(args.videos), tuple(args.frames), args.memory, 0.2, seed)
        train, val, test = (ds.select_splits(s) for s in ("Training", "PublicTest", "PrivateTest"))
        data = PreparedData(train, val, test, Normalization.fit("unit", train.images), [])
        for label, model in models(8, 32).items():
            cfg = TrainConfig.model_validate({
                "task": "va", "model": model, "data": {"image_size": args.size, "channels": 1},
                "augment": {"enabled": False, "crop_size": 0}, "sequence": {"length": 80, "per_batch": 4},
                "optim": {"name": "adam", "lr": 0.003, "weight_decay": 0}, "scheduler": {"name": "cosine"},
                "epochs": args.epochs, "select_metric": "val_ccc", "ten_crop": False, "device": "cpu",
                "threads": args.threads, "checkpoint_every_steps": 0, "seed": seed})
            with tempfile.TemporaryDirectory() as folder:
                summary = make_trainer(cfg, Path(folder) / "run", data).fit()
            result = {"model": label, "seed": seed, "test_ccc": summary["test_ccc"],
                      "test_ccc_valence": summary["test_ccc_valence"], "test_mse": summary["test_mse"],
                      "best_epoch": summary["best_epoch"], "train_seconds": summary["train_seconds"]}
            results.append(result)
            print(json.dumps(result), flush=True)
    ceiling = float(np.sqrt(1 - args.memory**2))
    for label in models(8, 32):
        cccs = [r["test_ccc"] for r in results if r["model"] == label]
        rows.append([label, f"{np.mean(cccs):.3f}", f"{np.std(cccs):.3f}", len(cccs)])
    stem = "va_synthetic_quick" if args.quick else "va_synthetic"
    out = ROOT / "benchmarks" / "results"
    setup = {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv), "size": args.size,
             "videos": args.videos, "frames": args.frames, "memory": args.memory, "unlabelled": 0.2,
             "epochs": args.epochs, "seeds": args.seeds, "threads": args.threads,
             "per_frame_ccc_ceiling": ceiling, "seconds": round(time.time() - started, 1),
             "python": platform.python_version(), "torch": torch.__version__}
    (out / f"{stem}.json").write_text(json.dumps({"setup": setup, "results": results}, indent=2) + "\n")
    lines = ["# Synthetic valence/arousal task: CNN-GRU vs per-frame CNN", "",
             f"`{setup['command']}`; EMA memory {args.memory} (per-frame CCC ceiling {ceiling:.3f}), "
             f"{args.size} px FER2013 Training faces, videos {args.videos}, PrivateTest videos scored whole.", ""]
    lines += markdown_table(["model", "test CCC (mean)", "std", "seeds"], rows, right={1, 2, 3})
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
