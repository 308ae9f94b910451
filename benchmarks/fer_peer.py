"""Side by side with the ``fer`` package (TensorFlow mini-Xception + Haar) on the test media.

fer needs TensorFlow, which must not enter affectlens' own environment, so this script builds a
separate virtual environment (``/tmp/fer-venv`` by default, only if missing) with the recipe from
the field notes and keeps fer running there in a child process; affectlens runs in this one.

    python benchmarks/fer_peer.py --venv /work/fer-venv --json benchmarks/results/fer_peer.json
    python benchmarks/fer_peer.py --setup-only          # just build the fer venv

The tools take turns input by input (fer, affectlens, then affectlens, fer, ...) for ``--rounds``
rounds, so both see the same load on a shared machine, and each input's row gives both tools'
best turn and their ratio from one run. Per file: faces found, labels (per face for photos; the
label of the first face per frame for videos) and time per image (median of ``--repeats``
after a warm-up, from decoded pixels) or frames per second (from the file, decoding included).
affectlens runs at its default settings unless ``--set`` says otherwise. Last, the work of
``affectlens predict`` on single_face.mp4 (records, annotated video, timeline plot) is timed in
process against the analysis-only figure.
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
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MEDIA = REPO.parent / "shared" / "media"
PHOTOS = ["single_face.jpg", "multi_face.jpg", "BWPictureHuman.jpg", "Image_with_alpha.png",
          "free-mountain-vector-01.jpg"]
VIDEOS = ["single_face.mp4", "no_face.mp4", "face_noface.mov"]
CLI_VIDEOS = ["single_face.mp4"]
# The field notes' recipe: fer's hard requirements pull a GPU TensorFlow and opencv-contrib, so
# install the CPU/headless pieces first and fer itself without dependencies.
REQUIREMENTS = [
    "tensorflow-cpu==2.21.0",
    "opencv-python-headless==4.10.0.84",
    "matplotlib", "pandas", "requests", "tqdm", "moviepy<2", "ffmpeg-python", "Pillow", "setuptools<81",
]
FER = "fer==25.10.3"

CHILD = r"""
import json, sys, time, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import cv2, numpy as np
from fer.fer import FER

t0 = time.perf_counter()
detector = FER()  # its defaults: Haar cascade + the bundled mini-Xception
detector.detect_emotions(np.zeros((64, 64, 3), np.uint8))
print("@@READY@@" + json.dumps({"load_seconds": time.perf_counter() - t0}), flush=True)

def top(face):
    emotions = face["emotions"]
    return max(emotions, key=emotions.get)

for line in sys.stdin:  # one request per line, one answer per line: the parent alternates the tools
    request = json.loads(line)
    if "photo" in request:
        from PIL import Image
        with Image.open(request["photo"]) as img:
            bgr = cv2.cvtColor(np.asarray(img.convert("RGB")), cv2.COLOR_RGB2BGR)
        detector.detect_emotions(bgr)  # warm-up
        times = []
        for _ in range(request["repeats"]):
            t = time.perf_counter(); faces = detector.detect_emotions(bgr); times.append(time.perf_counter() - t)
        faces = sorted(faces, key=lambda f: f["box"][0])
        out = {"faces": len(faces), "labels": [top(f) for f in faces], "ms": 1000 * sorted(times)[len(times) // 2]}
    else:
        cap = cv2.VideoCapture(request["video"])
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
        out = {"frames": frames, "frames_with_faces": with_faces, "labels": labels,
               "ms_per_frame": 1000 * seconds / max(frames, 1), "fps": frames / seconds}
    print("@@RESULT@@" + json.dumps(out), flush=True)
"""


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


class FerChild:
    """fer in its own venv, kept running: one request per input, so the two tools can alternate."""

    def __init__(self, venv: Path) -> None:
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
        self.proc = subprocess.Popen([str(venv_python(venv)), "-c", CHILD], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        self.load_seconds = self._answer("@@READY@@")["load_seconds"]

    def _answer(self, tag: str) -> dict:
        for line in self.proc.stdout:
            if line.startswith(tag):
                return json.loads(line[len(tag):])
        raise RuntimeError(f"fer child ended (exit {self.proc.wait()})")

    def photo(self, path: Path, repeats: int) -> dict:
        return self._ask({"photo": str(path), "repeats": repeats})

    def video(self, path: Path) -> dict:
        return self._ask({"video": str(path)})

    def _ask(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._answer("@@RESULT@@")

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


class Affectlens:
    """affectlens in this process, at its default settings unless told otherwise."""

    def __init__(self, model: str, options: dict) -> None:
        sys.path.insert(0, str(REPO))
        from affectlens.inference.recognizer import Recognizer

        t0 = time.perf_counter()
        self.recognizer = Recognizer(model, **options)
        self.load_seconds = time.perf_counter() - t0

    def photo(self, path: Path, repeats: int) -> dict:
        from affectlens.data.image_io import read_image

        image = read_image(path)
        self.recognizer.predict(image)  # warm-up
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            result = self.recognizer.predict(image)
            times.append(time.perf_counter() - t)
        return {"faces": len(result.faces), "labels": [f.label for f in result.faces],
                "ms": 1000 * sorted(times)[len(times) // 2]}

    def video(self, path: Path) -> dict:
        labels, frames, with_faces, detected = [], 0, 0, 0
        t = time.perf_counter()
        for result in self.recognizer.predict_video(path, smoothing=0.0):
            frames += 1
            with_faces += bool(result.faces)
            detected += result.detected
            labels.append(result.faces[0].label if result.faces else None)
        seconds = time.perf_counter() - t
        return {"frames": frames, "frames_with_faces": with_faces, "labels": labels, "full_detections": detected,
                "ms_per_frame": 1000 * seconds / max(frames, 1), "fps": frames / seconds}

    def cli_video(self, path: Path, out: Path) -> dict:
        """``affectlens predict``'s work on one video (records, annotated video, timeline), timed in process."""
        from affectlens.inference.batch import plan_inputs, predict_inputs

        def fail(exc: Exception) -> None:
            raise exc

        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        t = time.perf_counter()
        counts = predict_inputs(self.recognizer, plan_inputs([path]), out, on_error=fail, progress=False)
        seconds = time.perf_counter() - t
        return {"frames": counts.frames, "fps": counts.frames / seconds}


def best(runs: list[dict], key: str, low: bool) -> dict:
    """The run with the best figure (lowest ms / highest fps): the least disturbed by other jobs."""
    return (min if low else max)(runs, key=lambda r: r[key])


def side_by_side(fer: FerChild | None, ours: Affectlens, media: Path, rounds: int, repeats: int,
                 cli_out: Path | None, log) -> dict:
    """Per input, the tools take turns (fer, affectlens, affectlens, fer, ...) for ``rounds`` rounds each."""
    out: dict = {"photos": {}, "videos": {}, "cli": {}}
    for kind, names in (("photos", PHOTOS), ("videos", VIDEOS)):
        for name in names:
            path = media / name
            runs: dict[str, list[dict]] = {"fer": [], "affectlens": []}
            for r in range(rounds):
                order = [("fer", fer), ("affectlens", ours)]
                for tool, runner in order if r % 2 == 0 else order[::-1]:
                    if runner is None:
                        continue
                    runs[tool].append(runner.photo(path, repeats) if kind == "photos" else runner.video(path))
            key, low = ("ms", True) if kind == "photos" else ("fps", False)
            entry = {tool: best(r, key, low) for tool, r in runs.items() if r}
            entry["all"] = {tool: [round(x[key], 2) for x in r] for tool, r in runs.items() if r}
            if "fer" in entry:
                a, f = entry["affectlens"][key], entry["fer"][key]
                entry["ratio"] = f / a if low else a / f  # > 1: affectlens faster
            out[kind][name] = entry
            log(f"{name}: " + ", ".join(f"{t} {v}" for t, v in entry["all"].items())
                + (f", ratio {entry['ratio']:.2f}" if "ratio" in entry else ""))
    if cli_out is not None:
        for name in CLI_VIDEOS:
            runs = [ours.cli_video(media / name, cli_out / name) for _ in range(rounds)]
            entry = best(runs, "fps", False)
            entry["analysis_fps"] = out["videos"][name]["affectlens"]["fps"]
            out["cli"][name] = entry
            log(f"{name}: predict CLI work {entry['fps']:.1f} fps vs analysis only {entry['analysis_fps']:.1f}")
    return out


def label_summary(labels: list) -> str:
    counts = Counter(label.lower() for label in labels if label)
    return ", ".join(f"{k} {v}" for k, v in counts.most_common(3)) or "-"


def markdown(result: dict) -> str:
    """One table per kind: each tool's best run and the ratio (> 1: affectlens faster), from one run."""
    runs = result["runs"]
    lines = ["| photo | fer faces | fer labels | fer ms | affectlens faces | affectlens labels | affectlens ms | "
             "speed ratio |", "|---|---|---|---|---|---|---|---|"]
    for name, e in runs["photos"].items():
        a, f = e["affectlens"], e.get("fer")
        fer_cols = f"{f['faces']} | {', '.join(f['labels']) or '-'} | {f['ms']:.1f}" if f else "- | - | -"
        ratio = f"**{e['ratio']:.2f}x**" if "ratio" in e else "-"
        lines.append(f"| {name} | {fer_cols} | {a['faces']} | {', '.join(a['labels']) or '-'} | {a['ms']:.1f} | "
                     f"{ratio} |")
    lines += ["", "| video | frames | fer frames with face | fer fps | fer labels (top 3) | affectlens frames with "
              "face | affectlens fps | affectlens labels (top 3) | full detections | speed ratio |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for name, e in runs["videos"].items():
        a, f = e["affectlens"], e.get("fer")
        fer_cols = f"{f['frames_with_faces']} | {f['fps']:.1f} | {label_summary(f['labels'])}" if f else "- | - | -"
        ratio = f"**{e['ratio']:.2f}x**" if "ratio" in e else "-"
        lines.append(f"| {name} | {a['frames']} | {fer_cols} | {a['frames_with_faces']} | {a['fps']:.1f} | "
                     f"{label_summary(a['labels'])} | {a['full_detections']} | {ratio} |")
    if runs["cli"]:
        lines += ["", "| video | `affectlens predict` work (records, annotated video, timeline) fps | "
                  "analysis only fps |", "|---|---|---|"]
        for name, e in runs["cli"].items():
            lines.append(f"| {name} | {e['fps']:.1f} | {e['analysis_fps']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="affectlens model (name, run folder or file)")
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA)
    parser.add_argument("--venv", type=Path, default=Path("/tmp/fer-venv"))
    parser.add_argument("--rounds", type=int, default=3, help="turns per tool and input (best one reported)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per photo and turn (median)")
    parser.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE",
                        help="affectlens Recognizer option (e.g. max_side=640, detect_every=1); default: none")
    parser.add_argument("--no-cli", action="store_true", help="skip timing the predict command's outputs")
    parser.add_argument("--json", type=Path, help="write the full result here")
    parser.add_argument("--setup-only", action="store_true")
    parser.add_argument("--skip-fer", action="store_true", help="only run affectlens")
    args = parser.parse_args()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    options = {key: json.loads(value) for key, value in (o.split("=", 1) for o in args.options)}
    result: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "load_before": os.getloadavg(), "fer_setup": REQUIREMENTS + [FER],
                    "affectlens_options": options, "rounds": args.rounds, "repeats": args.repeats}
    fer_error = None if args.skip_fer else ensure_venv(args.venv, log)
    if args.setup_only:
        print("fer venv ready" if fer_error is None else f"fer venv failed: {fer_error}")
        sys.exit(0 if fer_error is None else 1)
    fer = FerChild(args.venv) if fer_error is None and not args.skip_fer else None
    if fer is None:
        result["fer_error"] = fer_error or "skipped"
    ours = Affectlens(args.model, options)
    result["load_seconds"] = {"affectlens": ours.load_seconds, "fer": fer.load_seconds if fer else None}
    result["model"] = str(ours.recognizer.model_path)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            result["runs"] = side_by_side(fer, ours, args.media, args.rounds, args.repeats,
                                          None if args.no_cli else Path(tmp), log)
        finally:
            if fer is not None:
                fer.close()
    result["load_after"] = os.getloadavg()
    table = markdown(result)
    print(table)
    print(f"\nload average before {result['load_before'][0]:.2f}, after {result['load_after'][0]:.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**result, "markdown": table}, indent=1) + "\n")


if __name__ == "__main__":
    main()
