"""Packed stores against JPEG files, and training on 1 and 2 processes (CPU).

    python benchmarks/pack_throughput.py --json benchmarks/results/pack_throughput.json

Measures, on FER2013 Training faces written as JPEG files into a class-per-folder tree in a
scratch folder (``--work``, default a temporary one, removed afterwards):

1. packing: images/s of ``affectlens pack`` over that tree (decode once, write the store);
2. reading: images/s of shuffled batches of ``--batch`` images, as training reads them, from the
   JPEG files (decode and resize per image) and from the packed store (memory map), each in the
   main process and through a DataLoader with 2 workers; files and store are in the page cache
   (read once before timing), so the comparison is decoding against copying;
3. training: images/s of one epoch of ``--arch`` on ``--train-images`` faces of the store, with
   ``torchrun --nproc-per-node P -m affectlens train`` for (processes, threads each) = (1, 1),
   (1, 2) and (2, 1), global batch ``--batch``, no validation; from the run's ``train_seconds``.

The machine is shared: the load average before and after is recorded with the numbers, and
ratios within one run are the figures to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_DATA = REPO.parent / "shared" / "data" / "fer2013"
TRAINING_SETUPS = ((1, 1), (1, 2), (2, 1))


def write_jpeg_tree(data: Path, root: Path, count: int) -> int:
    """The first ``count`` FER2013 Training faces as ``root/<class>/<n>.jpg``."""
    from PIL import Image

    with np.load(next(data.glob("*.npz")) if data.is_dir() else data) as raw:
        # an NpzFile reads (and decompresses) the whole array on every item access: take each once
        usage, labels, names, images = raw["usage"], raw["labels"], raw["class_names"], raw["images"]
    rows = np.flatnonzero(usage == "Training")[:count]
    for i in rows.tolist():
        folder = root / str(names[labels[i]])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i]).save(folder / f"{i:05d}.jpg", quality=90)
    return len(rows)


def read_rate(dataset: object, batch: int, workers: int, seed: int = 0) -> float:
    """Images/s of one shuffled pass in batches, as the training loader reads them."""
    import torch
    from torch.utils.data import DataLoader

    from affectlens.data.batches import BatchDataset, keep_batch

    order = np.random.default_rng(seed).permutation(len(dataset)).tolist()  # type: ignore[arg-type]
    batches = [order[i:i + batch] for i in range(0, len(order), batch)]
    loader = DataLoader(BatchDataset(dataset), batch_sampler=batches, collate_fn=keep_batch,  # type: ignore[arg-type]
                        num_workers=workers)
    started = time.perf_counter()
    seen = 0
    with torch.no_grad():
        for item in loader:
            seen += len(item["image"])
    return seen / (time.perf_counter() - started)


def train_rate(store: Path, work: Path, processes: int, threads: int, images: int, args: argparse.Namespace) -> dict:
    """One epoch under torchrun; images/s from the run's own training time."""
    launcher = Path(sys.executable).with_name("torchrun")
    command = [str(launcher)] if launcher.exists() else [sys.executable, "-m", "torch.distributed.run"]
    name = f"p{processes}t{threads}"
    command += ["--standalone", "--nproc-per-node", str(processes), "-m", "affectlens", "train",
                "--kind", "packed", "--data", str(store), "--arch", args.arch, "--batch-size", str(args.batch),
                "--epochs", "1", "-o", str(work / "runs"), "--run-name", name,
                "--set", f"threads={threads}", "--set", "data.val_split=null", "--set", "data.test_split=null",
                "--set", f"data.max_train_samples={images}", "--set", "checkpoint_every_steps=0",
                "--set", "device=cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    wall = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - wall
    if done.returncode:
        raise SystemExit(f"training {name} failed:\n{done.stderr[-3000:]}")
    summary = json.loads((work / "runs" / name / "summary.json").read_text())
    return {"processes": processes, "threads_each": threads, "images": images,
            "train_seconds": summary["train_seconds"], "images_per_s": round(images / summary["train_seconds"], 1),
            "wall_seconds_with_start": round(wall, 1),
            "command": " ".join(["torchrun", *command[1:]] if launcher.exists() else command)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="FER2013 npz or its folder.")
    parser.add_argument("--images", type=int, default=20000, help="JPEG faces to write, pack and read.")
    parser.add_argument("--train-images", type=int, default=8192, help="Faces of the one training epoch.")
    parser.add_argument("--batch", type=int, default=128, help="Batch (the global batch when training).")
    parser.add_argument("--arch", default="fast_cnn", help="Architecture trained.")
    parser.add_argument("--work", type=Path, help="Scratch folder (default: a temporary one, removed after).")
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "pack_throughput.json")
    args = parser.parse_args()

    import torch

    from affectlens.data.folder import load_folder
    from affectlens.data.packed import load_packed
    from affectlens.data.packing import pack_dataset

    work = args.work or Path(tempfile.mkdtemp(prefix="pack-throughput-"))
    result: dict = {"date": date.today().isoformat(), "machine": f"{platform.processor() or platform.machine()}, "
                    f"{os.cpu_count()} CPUs", "torch": torch.__version__, "python": platform.python_version(),
                    "load_before": [round(x, 2) for x in os.getloadavg()], "command": " ".join(sys.argv)}
    try:
        tree, store = work / "jpeg", work / "store"
        count = write_jpeg_tree(args.data, tree, args.images)
        files = load_folder(tree, in_memory=False)
        started = time.perf_counter()
        pack_dataset(files, store, exist_ok=True, inputs=[tree], progress=False)
        result["pack"] = {"images": count, "images_per_s": round(count / (time.perf_counter() - started), 1),
                          "store_mib": round((store / "images.npy").stat().st_size / 2**20, 1)}
        packed = load_packed(store)
        read_rate(files, args.batch, 0)  # warm the page cache: both read from memory
        read_rate(packed, args.batch, 0)
        result["read"] = []
        for workers in (0, 2):
            jpeg, mapped = read_rate(files, args.batch, workers), read_rate(packed, args.batch, workers)
            result["read"].append({"loader_workers": workers, "batch": args.batch,
                                   "jpeg_images_per_s": round(jpeg, 1), "packed_images_per_s": round(mapped, 1),
                                   "packed_over_jpeg": round(mapped / jpeg, 1)})
        images = min(args.train_images, count)
        result["training"] = [train_rate(store, work, p, t, images, args) for p, t in TRAINING_SETUPS]
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
