"""Throughput of ``predict`` on a collection: sequential vs ``--engine process`` and ``--engine ray``.

    python benchmarks/batch_engines.py --json benchmarks/results/batch_engines.json

Builds a collection in a temporary folder from the shared media (every photo ``--photo-copies``
times, every video ``--video-copies`` times, under distinct names) and runs ``affectlens predict``
on it, each configuration in a fresh process as a user would: sequential, then each engine with 1
and 2 workers (``--configs`` chooses). For each run: wall time, records (photos + processed frames),
faces, frames/s and the ratio to sequential in the same run, with the load average before and after
(the machine is shared: speeds are only comparable as same-run ratios), and whether the records are
byte-identical to sequential's.

Per-input cost of an engine, from two more runs per engine (1 worker): start-up is the wall time
on one photo minus sequential's on the same photo (pool spawn or Ray start, model load in the
worker); scheduling is the extra seconds per photo on the photo-only part of the collection,
beyond sequential's per-photo time, once start-up is taken out.

Smoke test (seconds): ``--photo-copies 1 --video-copies 0 --configs sequential,process:1 --no-cost``.
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
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MEDIA = REPO.parent / "shared" / "media"
PHOTOS = ("single_face.jpg", "multi_face.jpg", "Image_with_alpha.png", "free-mountain-vector-01.jpg",
          "BWPictureHuman.jpg")
VIDEOS = ("single_face.mp4", "no_face.mp4", "face_noface.mov")
CONFIGS = "sequential,process:1,process:2,ray:1,ray:2"


def build_collection(media: Path, folder: Path, photo_copies: int, video_copies: int) -> dict[str, int]:
    """The collection: copies under distinct names (each is its own input with its own records)."""
    counts = {"photos": 0, "videos": 0}
    for copy in range(photo_copies):
        for name in PHOTOS:
            target = folder / "photos" / f"{copy:03d}_{name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(media / name, target)
            counts["photos"] += 1
    for copy in range(video_copies):
        for name in VIDEOS:
            target = folder / "videos" / f"{copy:03d}_{name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(media / name, target)
            counts["videos"] += 1
    return counts


def run_predict(inputs: Path, out: Path, config: str, extra: list[str]) -> dict[str, Any]:
    """One ``affectlens predict`` in a fresh process; wall time, records and faces."""
    engine, _, workers = config.partition(":")
    argv = [sys.executable, "-m", "affectlens", "predict", str(inputs), "-o", str(out), "--no-annotate",
            "--no-progress", *extra]
    if engine != "sequential":
        argv += ["--engine", engine, "--workers", workers or "1"]
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{config} failed ({result.returncode}): {result.stderr[-2000:]}")
    jsonl = out / "predictions.jsonl"
    records = [json.loads(line) for line in jsonl.read_text().splitlines()] if jsonl.exists() else []
    faces = sum(len(record["faces"]) for record in records)
    return {"config": config, "wall_s": round(wall, 3), "records": len(records), "faces": faces,
            "frames_per_s": round(len(records) / wall, 2), "faces_per_s": round(faces / wall, 2),
            "load_before": load_before, "load_after": [round(x, 2) for x in os.getloadavg()],
            "summary": result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""}


def per_input_cost(media: Path, photos: Path, work: Path, engine: str, reference: dict[str, float],
                   extra: list[str]) -> dict[str, Any]:
    """Start-up and scheduling cost of ``engine`` (1 worker) beyond sequential (see the module docstring)."""
    one = work / f"one_{engine}"
    one.mkdir()
    shutil.copyfile(media / "single_face.jpg", one / "single_face.jpg")
    single = run_predict(one, work / f"out_one_{engine}", f"{engine}:1", extra)
    many = run_predict(photos, work / f"out_photos_{engine}", f"{engine}:1", extra)
    n = many["records"]
    startup = single["wall_s"] - reference["one"]
    per_photo = (many["wall_s"] - single["wall_s"]) / max(1, n - 1)
    per_photo_sequential = (reference["photos"] - reference["one"]) / max(1, n - 1)
    return {"engine": engine, "startup_s": round(startup, 3), "per_photo_s": round(per_photo, 4),
            "per_photo_sequential_s": round(per_photo_sequential, 4),
            "scheduling_per_input_s": round(per_photo - per_photo_sequential, 4), "photos": n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA)
    parser.add_argument("--photo-copies", type=int, default=20)
    parser.add_argument("--video-copies", type=int, default=3)
    parser.add_argument("--max-frames", type=int, default=None, help="cap per video (default: whole videos)")
    parser.add_argument("--configs", default=CONFIGS, help=f"comma-separated ENGINE[:WORKERS] (default {CONFIGS})")
    parser.add_argument("--no-cost", action="store_true", help="skip the per-input cost runs")
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "batch_engines.json")
    args = parser.parse_args()

    extra = ["--max-frames", str(args.max_frames)] if args.max_frames else []
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    if "sequential" not in configs:
        configs.insert(0, "sequential")
    result: dict[str, Any] = {
        "command": " ".join(sys.argv), "cpus": os.cpu_count(), "machine": platform.machine(),
        "python": platform.python_version(), "load_before": [round(x, 2) for x in os.getloadavg()], "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="affectlens-batch-bench-") as tmp:
        work = Path(tmp)
        inputs = work / "collection"
        result["collection"] = build_collection(args.media, inputs, args.photo_copies, args.video_copies)
        reference_bytes = None
        for config in configs:
            out = work / f"out_{config.replace(':', '_')}"
            run = run_predict(inputs, out, config, extra)
            records = (out / "predictions.jsonl").read_bytes() if (out / "predictions.jsonl").exists() else b""
            if config == "sequential":
                reference_bytes, sequential_fps = records, run["frames_per_s"]
            run["same_records_as_sequential"] = records == reference_bytes
            run["speed_vs_sequential"] = round(run["frames_per_s"] / sequential_fps, 3) if sequential_fps else None
            result["runs"].append(run)
            print(json.dumps(run), flush=True)
        engines = sorted({c.partition(":")[0] for c in configs} - {"sequential"})
        if not args.no_cost and engines and args.photo_copies:
            one = work / "one_sequential"
            one.mkdir()
            shutil.copyfile(args.media / "single_face.jpg", one / "single_face.jpg")
            photos = run_predict(inputs / "photos", work / "out_photos_seq", "sequential", extra)
            reference = {"one": run_predict(one, work / "out_one_seq", "sequential", extra)["wall_s"],
                         "photos": photos["wall_s"]}
            result["per_input_cost"] = [per_input_cost(args.media, inputs / "photos", work, engine, reference, extra)
                                        for engine in engines]
            print(json.dumps(result["per_input_cost"]), flush=True)
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
