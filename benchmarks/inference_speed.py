"""Inference speed and memory of the predictor on the test media (CPU).

    python benchmarks/inference_speed.py --model default --json benchmarks/results/inference.json

Measures, with the given model:

1. classifier throughput: aligned faces/s at batch 64 on ONNX Runtime (and torch eager for
   comparison), plus the load time of a ``.safetensors`` model on ONNX Runtime (in-memory export);
2. face detector time per frame at the detection resolutions compared below;
3. end-to-end fps per sample video: analysis only (decode, detect, align, classify, track) and
   the full ``affectlens predict`` pipeline (plus annotated video, JSON Lines and timeline), at
   ``--max-side`` 640 (default) and 480;
4. peak memory (VmHWM) of the full pipeline on the longest sample video and on the same video
   concatenated ten times (a temporary file in /tmp), each in a fresh process: streaming must
   keep the peak flat.

The machine is shared: the load average before and after is recorded with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_MEDIA = REPO.parent / "shared" / "media"
VIDEOS = ["single_face.mp4", "no_face.mp4", "face_noface.mov"]
LONGEST = "face_noface.mov"


def vm_status() -> dict[str, float]:
    """VmHWM (peak resident set) and VmRSS of this process in MB, from /proc/self/status."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmHWM", "VmRSS")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) / 1024
    return out


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def classifier_throughput(model: str, batch: int, seconds: float, threads: int) -> dict:
    import torch

    from affectlens.runtime.factory import create_classifier
    from affectlens.runtime.pretrained import resolve_model

    path = resolve_model(model)
    out: dict = {}
    onnx = create_classifier(path, "onnx", num_threads=threads)
    out["onnx_load_seconds"] = round(onnx.load_seconds, 3)
    card = onnx.card
    faces = np.random.default_rng(0).integers(0, 256, (batch, card.image_size, card.image_size, card.in_channels),
                                             dtype=np.uint8)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch_cls = create_classifier(path, "torch")
        out["torch_load_seconds"] = round(torch_cls.load_seconds, 3)
        out["max_abs_diff_onnx_torch"] = float(np.abs(onnx.predict(faces) - torch_cls.predict(faces)).max())
        for name, classifier in (("onnx", onnx), ("torch", torch_cls)):
            classifier.predict(faces)  # warm-up
            rates = []
            for _ in range(3):
                n, started = 0, time.perf_counter()
                while time.perf_counter() - started < seconds / 3:
                    classifier.predict(faces)
                    n += batch
                rates.append(n / (time.perf_counter() - started))
            out[f"{name}_faces_per_s"] = round(max(rates), 1)
            out[f"{name}_faces_per_s_runs"] = [round(r, 1) for r in rates]
            classifier.predict(faces[:1])
            single = []
            for _ in range(50):
                t = time.perf_counter()
                classifier.predict(faces[:1])
                single.append(time.perf_counter() - t)
            out[f"{name}_ms_one_face"] = round(1000 * statistics.median(single), 3)
    finally:
        torch.set_num_threads(previous)
    out.update(architecture=card.architecture, input=f"{card.in_channels}x{card.input_size}x{card.input_size}",
               batch=batch, threads=threads, model=str(path))
    return out


def detector_times(media: Path, sides: list[int]) -> dict:
    import cv2

    from affectlens.faces import create_detector

    capture = cv2.VideoCapture(str(media / "single_face.mp4"))
    frames = []
    while len(frames) < 30:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    out = {}
    for side in sides:
        detector = create_detector("centerface", max_side=side)
        detector.detect(frames[0])
        times = []
        for frame in frames:
            t = time.perf_counter()
            detector.detect(frame)
            times.append(time.perf_counter() - t)
        out[f"centerface_ms_at_{side}"] = round(1000 * statistics.median(times), 2)
    return out


def end_to_end(model: str, media: Path, sides: list[int], workdir: Path, repeats: int) -> dict:
    """Best and median fps of ``repeats`` runs (the machine is shared: the best run is the one
    least disturbed by other jobs)."""
    from affectlens.inference.camera import run_loop
    from affectlens.inference.outputs import JsonlWriter
    from affectlens.inference.recognizer import Recognizer

    out: dict = {}
    for side in sides:
        recognizer = Recognizer(model, max_side=side)
        for name in VIDEOS:
            path = media / name
            list(recognizer.predict_video(path, max_frames=5))  # warm-up
            analysis, full = [], []
            frames = faces = 0
            for _ in range(repeats):
                started = time.perf_counter()
                frames = faces = 0
                for result in recognizer.predict_video(path):
                    frames += 1
                    faces += len(result.faces)
                analysis.append(frames / (time.perf_counter() - started))
                with JsonlWriter(workdir / f"{name}.jsonl") as jsonl:
                    stats = run_loop(recognizer, path, sinks=[jsonl.write], video_out=workdir / f"{name}.mp4",
                                     timeline_out=workdir / f"{name}.png", progress=False)
                full.append(stats.fps)
            out[f"{name}@{side}"] = {
                "frames": frames, "faces": faces,
                "analysis_fps_best": round(max(analysis), 1),
                "analysis_fps_median": round(statistics.median(analysis), 1),
                "full_pipeline_fps_best": round(max(full), 1),
                "full_pipeline_fps_median": round(statistics.median(full), 1),
            }
    return out


def concatenate(source: Path, copies: int, target: Path) -> int:
    """Write ``copies`` back-to-back copies of ``source`` (mp4v), streaming frame by frame."""
    import cv2

    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    writer = None
    n = 0
    for _ in range(copies):
        capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            if writer is None:
                h, w = bgr.shape[:2]
                writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
            writer.write(bgr)
            n += 1
    writer.release()
    capture.release()
    return n


def memory_child(model: str, video: Path, workdir: Path) -> None:
    """Run in a fresh process: the full predict pipeline on ``video``; prints VmHWM as JSON."""
    from affectlens.inference.camera import run_loop
    from affectlens.inference.outputs import CsvWriter, JsonlWriter
    from affectlens.inference.recognizer import Recognizer

    recognizer = Recognizer(model)
    list(recognizer.predict_video(video, max_frames=3))
    after_load = vm_status()
    with JsonlWriter(workdir / "m.jsonl") as jsonl, CsvWriter(workdir / "m.csv", recognizer.class_names) as csv_w:
        stats = run_loop(recognizer, video, sinks=[jsonl.write, csv_w.write], video_out=workdir / "m.mp4",
                         timeline_out=workdir / "m.png", progress=False)
    end = vm_status()
    print("@@RESULT@@" + json.dumps({"frames": stats.frames, "faces": stats.faces, "fps": round(stats.fps, 1),
                                     "hwm_after_load_mb": round(after_load["VmHWM"], 1),
                                     "hwm_end_mb": round(end["VmHWM"], 1), "rss_end_mb": round(end["VmRSS"], 1)}))


def memory(model: str, media: Path, workdir: Path, copies: int) -> dict:
    out: dict = {}
    for n in (1, copies):
        video = workdir / f"{Path(LONGEST).stem}_x{n}.mp4"
        frames = concatenate(media / LONGEST, n, video)
        proc = subprocess.run([sys.executable, __file__, "--model", model, "--memory-child", str(video),
                               "--workdir", str(workdir)], capture_output=True, text=True)
        line = [x for x in proc.stdout.splitlines() if x.startswith("@@RESULT@@")]
        if not line:
            raise RuntimeError(f"memory child failed: {proc.stderr[-2000:]}")
        out[f"x{n}"] = {"video_frames": frames, **json.loads(line[0][len("@@RESULT@@"):])}
        video.unlink()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="model name, run folder or .safetensors/.onnx file")
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=6.0, help="timing budget per classifier backend")
    parser.add_argument("--sides", default="640,480", help="detection --max-side values to compare")
    parser.add_argument("--copies", type=int, default=10, help="length multiplier for the memory run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per video (best and median reported)")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.model, args.memory_child, args.workdir)
        return

    sides = [int(s) for s in args.sides.split(",")]
    result: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpu_name(), "cpus": os.cpu_count(),
                    "load_before": [round(x, 2) for x in os.getloadavg()], "model": args.model}
    with tempfile.TemporaryDirectory(prefix="affectlens-bench-") as tmp:
        workdir = Path(tmp)
        for name, step in (
            ("classifier", lambda: classifier_throughput(args.model, args.batch, args.seconds, args.threads)),
            ("detector", lambda: detector_times(args.media, sides)),
            ("videos", lambda: end_to_end(args.model, args.media, sides, workdir, args.repeats)),
            ("memory", lambda: None if args.skip_memory else memory(args.model, args.media, workdir, args.copies)),
        ):
            print(f"[{name}] ...", file=sys.stderr, flush=True)
            result[name] = step()
            print(json.dumps(result[name], indent=1), file=sys.stderr, flush=True)
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
