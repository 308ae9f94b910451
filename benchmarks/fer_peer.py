"""Side by side with the ``fer`` package (TensorFlow mini-Xception + Haar) on the test media.

fer needs TensorFlow, which must not enter affectlens' own environment, so this script builds a
separate virtual environment (``/tmp/fer-venv`` by default, only if missing) with the recipe from
the field notes, runs fer there in a child process, then runs affectlens on the same files here.

    python benchmarks/fer_peer.py --model default --json benchmarks/results/fer_peer.json
    python benchmarks/fer_peer.py --setup-only          # just build the fer venv

Per file it records faces found, labels (per face for photos; the label of the first face per
frame for videos) and time per image / per video frame, both tools end to end from decoded
pixels (file decoding excluded for photos, included for videos).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MEDIA = REPO.parent / "shared" / "media"
PHOTOS = ["single_face.jpg", "multi_face.jpg", "BWPictureHuman.jpg", "Image_with_alpha.png",
          "free-mountain-vector-01.jpg"]
VIDEOS = ["single_face.mp4", "no_face.mp4", "face_noface.mov"]
# The field notes' recipe: fer's hard requirements pull a GPU TensorFlow and opencv-contrib, so
# install the CPU/headless pieces first and fer itself without dependencies.
REQUIREMENTS = [
    "tensorflow-cpu==2.21.0",
    "opencv-python-headless==4.10.0.84",
    "matplotlib", "pandas", "requests", "tqdm", "moviepy<2", "ffmpeg-python", "Pillow", "setuptools<81",
]
FER = "fer==25.10.3"

CHILD = r'''
import json, sys, time, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import cv2, numpy as np
from fer.fer import FER

media, photos, videos, repeats = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
t0 = time.perf_counter()
detector = FER()  # its defaults: Haar cascade + the bundled mini-Xception
detector.detect_emotions(np.zeros((64, 64, 3), np.uint8))
out = {"load_seconds": time.perf_counter() - t0, "photos": {}, "videos": {}}

def top(face):
    emotions = face["emotions"]
    return max(emotions, key=emotions.get)

for name in photos:
    from PIL import Image
    with Image.open(os.path.join(media, name)) as img:
        rgb = np.asarray(img.convert("RGB"))
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    detector.detect_emotions(bgr)  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); faces = detector.detect_emotions(bgr); times.append(time.perf_counter() - t)
    faces = sorted(faces, key=lambda f: f["box"][0])
    out["photos"][name] = {"faces": len(faces), "labels": [top(f) for f in faces],
                           "ms": 1000 * sorted(times)[len(times) // 2]}

for name in videos:
    cap = cv2.VideoCapture(os.path.join(media, name))
    labels, frames, with_faces = [], 0, 0
    t = time.perf_counter()
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        faces = sorted(detector.detect_emotions(bgr), key=lambda f: f["box"][0])
        frames += 1
        with_faces += bool(faces)
        labels.append(top(faces[0]) if faces else None)
    seconds = time.perf_counter() - t
    out["videos"][name] = {"frames": frames, "frames_with_faces": with_faces, "labels": labels,
                           "ms_per_frame": 1000 * seconds / max(frames, 1), "fps": frames / seconds}
print("@@RESULT@@" + json.dumps(out))
'''


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(venv: Path, log) -> str | None:
    """Build the fer venv if missing; returns None on success, else why it failed."""
    py = venv_python(venv)
    check = [str(py), "-c", "from fer.fer import FER; import tensorflow"]
    if py.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return None
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"],
        [str(py), "-m", "pip", "install", "-q", *REQUIREMENTS],
        [str(py), "-m", "pip", "install", "-q", "--no-deps", FER],
    ]
    for step in steps:
        log(f"$ {' '.join(step)}")
        started = time.time()
        proc = subprocess.run(step, capture_output=True, text=True)
        log(f"  ({time.time() - started:.0f} s, exit {proc.returncode})")
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return f"step failed: {' '.join(step[-3:])}: {' | '.join(tail)}"
    proc = subprocess.run(check, capture_output=True, text=True)
    if proc.returncode != 0:
        return f"fer does not import: {(proc.stderr.strip().splitlines() or ['?'])[-1]}"
    return None


def run_fer(venv: Path, media: Path, repeats: int) -> dict:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [str(venv_python(venv)), "-c", CHILD, str(media), json.dumps(PHOTOS), json.dumps(VIDEOS), str(repeats)],
        capture_output=True, text=True, env=env,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("@@RESULT@@"):
            return json.loads(line[len("@@RESULT@@"):])
    raise RuntimeError(f"fer run failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")


def run_affectlens(model: str, media: Path, repeats: int, max_side: int) -> dict:
    sys.path.insert(0, str(REPO))
    from affectlens.data.image_io import read_image
    from affectlens.inference.recognizer import Recognizer

    t0 = time.perf_counter()
    recognizer = Recognizer(model, max_side=max_side)
    out: dict = {"load_seconds": time.perf_counter() - t0, "model": str(recognizer.model_path),
                 "architecture": recognizer.card.architecture, "photos": {}, "videos": {}}
    for name in PHOTOS:
        image = read_image(media / name)
        recognizer.predict(image)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            result = recognizer.predict(image)
            times.append(time.perf_counter() - t)
        out["photos"][name] = {"faces": len(result.faces), "labels": [f.label for f in result.faces],
                               "ms": 1000 * sorted(times)[len(times) // 2]}
    for name in VIDEOS:
        labels, frames, with_faces = [], 0, 0
        t = time.perf_counter()
        for result in recognizer.predict_video(media / name, smoothing=0.0):
            frames += 1
            with_faces += bool(result.faces)
            labels.append(result.faces[0].label if result.faces else None)
        seconds = time.perf_counter() - t
        out["videos"][name] = {"frames": frames, "frames_with_faces": with_faces, "labels": labels,
                               "ms_per_frame": 1000 * seconds / max(frames, 1), "fps": frames / seconds}
    return out


def label_summary(labels: list) -> str:
    counts = Counter(label.lower() for label in labels if label)
    return ", ".join(f"{k} {v}" for k, v in counts.most_common(3)) or "-"


def markdown(result: dict) -> str:
    fer, ours = result.get("fer"), result["affectlens"]
    lines = ["| file | fer faces | fer labels | fer ms | affectlens faces | affectlens labels | affectlens ms |",
             "|---|---|---|---|---|---|---|"]
    for name in PHOTOS:
        a = ours["photos"][name]
        f = fer["photos"][name] if fer else None
        fer_cols = f"{f['faces']} | {', '.join(f['labels']) or '-'} | {f['ms']:.1f}" if f else "- | - | -"
        lines.append(f"| {name} | {fer_cols} | {a['faces']} | {', '.join(a['labels']) or '-'} | {a['ms']:.1f} |")
    lines += ["", "| video | frames | fer frames with face | fer ms/frame (fps) | fer labels (top 3) | "
              "affectlens frames with face | affectlens ms/frame (fps) | affectlens labels (top 3) |",
              "|---|---|---|---|---|---|---|---|"]
    for name in VIDEOS:
        a = ours["videos"][name]
        f = fer["videos"][name] if fer else None
        fer_cols = "- | - | -"
        if f:
            fer_cols = (f"{f['frames_with_faces']} | {f['ms_per_frame']:.1f} ({f['fps']:.1f}) | "
                        f"{label_summary(f['labels'])}")
        lines.append(f"| {name} | {a['frames']} | {fer_cols} | {a['frames_with_faces']} | "
                     f"{a['ms_per_frame']:.1f} ({a['fps']:.1f}) | {label_summary(a['labels'])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="affectlens model (name, run folder or file)")
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA)
    parser.add_argument("--venv", type=Path, default=Path("/tmp/fer-venv"))
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per photo (median reported)")
    parser.add_argument("--max-side", type=int, default=640, help="affectlens detection resolution")
    parser.add_argument("--json", type=Path, help="write the full result here")
    parser.add_argument("--setup-only", action="store_true")
    parser.add_argument("--skip-fer", action="store_true", help="only run affectlens")
    args = parser.parse_args()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    result: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "load_before": os.getloadavg(), "fer_setup": REQUIREMENTS + [FER]}
    fer_error = None if args.skip_fer else ensure_venv(args.venv, log)
    if args.setup_only:
        print("fer venv ready" if fer_error is None else f"fer venv failed: {fer_error}")
        sys.exit(0 if fer_error is None else 1)
    if fer_error is None and not args.skip_fer:
        log("running fer ...")
        result["fer"] = run_fer(args.venv, args.media, args.repeats)
    else:
        result["fer"] = None
        result["fer_error"] = fer_error or "skipped"
    log("running affectlens ...")
    result["affectlens"] = run_affectlens(args.model, args.media, args.repeats, args.max_side)
    result["load_after"] = os.getloadavg()
    table = markdown(result)
    print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**result, "markdown": table}, indent=1) + "\n")


if __name__ == "__main__":
    main()
