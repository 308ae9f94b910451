"""Click commands ``predict``, ``camera`` and ``export`` (registered in :mod:`affectlens.cli`).

``predict`` takes any mix of images, folders (searched recursively) and videos. One bad file
does not end a batch: its error is printed as one line, the other files are processed, and the
failures are listed at the end with exit status 1. A single file that fails raises its
:class:`AffectlensError` (one line, exit status 2, like every other command).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click

from affectlens.errors import AffectlensError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _model_options(func: Callable) -> Callable:
    """Options shared by predict and camera: which model, backend and detector settings."""
    options = [
        click.option("-m", "--model", "model_spec", default="default", show_default=True,
                     help="Shipped model name, run folder, or .safetensors/.onnx file."),
        click.option("--backend", type=click.Choice(["onnx", "torch"]), default="onnx", show_default=True,
                     help="Inference backend (onnx: ONNX Runtime on CPU)."),
        click.option("--device", default="cpu", show_default=True, help="Torch device (backend torch)."),
        click.option("--detector", default="centerface", show_default=True, help="Face detector: centerface, haar."),
        click.option("--threshold", type=float, default=None,
                     help="Face detector confidence threshold (default: the detector's own)."),
        click.option("--min-face-size", type=float, default=0.0, show_default=True,
                     help="Ignore faces smaller than this many pixels."),
        click.option("--max-side", type=int, default=640, show_default=True,
                     help="Detect on images downscaled to this longer side (0: full size). Lower is faster."),
        click.option("--ten-crop", is_flag=True, help="Average ten crops per face (slower)."),
        click.option("--threads", type=int, default=None, help="Classifier threads (default: up to 4)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _video_options(func: Callable) -> Callable:
    options = [
        click.option("--every", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Video: process every N-th frame."),
        click.option("--smoothing", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.5, show_default=True,
                     help="Video: weight of the past in the per-face moving average of probabilities (0: off)."),
        click.option("--max-frames", type=click.IntRange(min=1), default=None,
                     help="Video/camera: stop after this many processed frames."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def build_recognizer(model_spec, backend, device, detector, threshold, min_face_size, max_side, ten_crop, threads,
                     smoothing: float = 0.5):
    from affectlens.inference.recognizer import Recognizer

    return Recognizer(model=model_spec, detector=detector, backend=backend, device=device, threshold=threshold,
                      min_face_size=min_face_size, max_side=max_side or None, smoothing=smoothing,
                      ten_crop=ten_crop, num_threads=threads)


# ------------------------------------------------------------------------------------------ inputs
@dataclass
class Job:
    """One input file: its kind and where its annotated outputs go (relative to --out)."""

    path: Path
    kind: str  # "image" | "video"
    rel: Path


@dataclass
class Plan:
    jobs: list[Job] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    batch: bool = False  # folder or several paths: keep going on errors


def plan_inputs(paths: tuple[Path, ...]) -> Plan:
    """Expand folders recursively; unreadable arguments become failures, not exceptions."""
    from affectlens.data.image_io import is_image_file
    from affectlens.inference.video import is_video_file

    plan = Plan(batch=len(paths) > 1)
    for arg in paths:
        if not arg.exists():
            plan.failures.append(f"{arg}: file does not exist")
            continue
        if arg.is_dir():
            plan.batch = True
            found = sorted(
                p for p in arg.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(arg).parts)
                and (is_image_file(p) or is_video_file(p))
            )
            if not found:
                plan.failures.append(f"{arg}: folder holds no images or videos")
            for p in found:
                plan.jobs.append(Job(p, "image" if is_image_file(p) else "video", Path(arg.name) / p.relative_to(arg)))
            continue
        if is_image_file(arg):
            plan.jobs.append(Job(arg, "image", Path(arg.name)))
        elif is_video_file(arg):
            plan.jobs.append(Job(arg, "video", Path(arg.name)))
        else:
            plan.failures.append(f"{arg}: not an image or video file (unsupported extension '{arg.suffix}')")
    return plan


def _output_path(out_dir: Path, rel: Path, tag: str, suffix: str, used: set[Path]) -> Path:
    """``out/<rel parent>/<stem>.<tag><suffix>``, made unique when two inputs share a stem."""
    path = out_dir / rel.parent / f"{rel.stem}.{tag}{suffix}"
    if path in used:
        path = out_dir / rel.parent / f"{rel.stem}_{rel.suffix.lstrip('.')}.{tag}{suffix}"
    used.add(path)
    return path


_WRITABLE = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def write_annotated_image(path: Path, image, faces) -> None:
    import cv2
    import numpy as np

    from affectlens.inference.annotate import draw_faces

    if image.ndim == 2 or image.shape[2] == 1:
        bgr = cv2.cvtColor(np.ascontiguousarray(image.reshape(image.shape[0], image.shape[1])), cv2.COLOR_GRAY2BGR)
    else:
        bgr = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2BGR)
    draw_faces(bgr, faces)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), bgr):
        raise AffectlensError(f"{path}: cannot write annotated image")


# ----------------------------------------------------------------------------------------- predict
@click.command("predict", context_settings=CONTEXT)
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--camera", type=int, default=None, metavar="N", help="Read camera N instead of files (Ctrl-C stops).")
@_model_options
@_video_options
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), default=Path("predictions"),
              show_default=True, help="Folder for all outputs.")
@click.option("--no-annotate", is_flag=True, help="Write no annotated images/videos (records and timelines only).")
@click.option("--format", "formats", default="jsonl,csv", show_default=True,
              help="Record formats, comma-separated: jsonl, csv (or 'none').")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
def predict_command(paths, camera, model_spec, backend, device, detector, threshold, min_face_size, max_side,
                    ten_crop, threads, every, smoothing, max_frames, out_dir, no_annotate, formats,
                    progress) -> None:
    """Find faces and recognise their emotions in images, folders, videos or a camera.

    Writes to --out: predictions.jsonl (one record per image or processed frame) and
    predictions.csv (one row per face), annotated images and videos, and for each video a
    timeline plot of the emotion probabilities per face.
    """
    from tqdm import tqdm

    from affectlens.data.image_io import read_image
    from affectlens.inference.camera import run_loop
    from affectlens.inference.outputs import FORMATS, CsvWriter, JsonlWriter

    chosen = [f.strip().lower() for f in formats.split(",") if f.strip()]
    chosen = [] if chosen == ["none"] else chosen
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown:
        raise AffectlensError(f"unknown output format '{unknown[0]}'; valid: {', '.join(FORMATS)}, none")
    if not paths and camera is None:
        raise click.UsageError("give one or more PATHs (images, folders, videos) or --camera N")

    plan = plan_inputs(tuple(paths))
    if not plan.batch and plan.failures and camera is None:
        raise AffectlensError(plan.failures[0])
    for message in plan.failures:
        click.echo(f"affectlens: error: {message}", err=True)
    failures = list(plan.failures)

    recognizer = build_recognizer(model_spec, backend, device, detector, threshold, min_face_size, max_side,
                                  ten_crop, threads, smoothing)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sinks: list = []
    jsonl = JsonlWriter(out_dir / "predictions.jsonl") if "jsonl" in chosen else None
    csv_out = CsvWriter(out_dir / "predictions.csv", recognizer.class_names, recognizer.has_valence_arousal) \
        if "csv" in chosen else None
    sinks = [w.write for w in (jsonl, csv_out) if w is not None]
    used: set[Path] = set()
    counts = {"images": 0, "videos": 0, "frames": 0, "faces": 0}

    def fail(exc: AffectlensError) -> None:
        if not plan.batch and camera is None:
            raise exc
        click.echo(f"affectlens: error: {exc}", err=True)
        failures.append(str(exc))

    try:
        images = [job for job in plan.jobs if job.kind == "image"]
        videos = [job for job in plan.jobs if job.kind == "video"]
        show = progress if len(images) > 1 else False
        for job in tqdm(images, unit="image", desc="images", disable=(not show) if show is not None else None,
                        leave=False, dynamic_ncols=True):
            try:
                image = read_image(job.path)
                result = recognizer.predict(image)
                result.source = str(job.path)
                for sink in sinks:
                    sink(result)
                if not no_annotate:
                    suffix = job.path.suffix.lower() if job.path.suffix.lower() in _WRITABLE else ".png"
                    write_annotated_image(_output_path(out_dir, job.rel, "annotated", suffix, used), image,
                                          result.faces)
                counts["images"] += 1
                counts["faces"] += len(result.faces)
            except AffectlensError as exc:
                fail(exc)
        video_sources: list[tuple[str | Path | int, Path]] = [(job.path, job.rel) for job in videos]
        if camera is not None:
            video_sources.append((camera, Path(f"camera{camera}")))
        for source, rel in video_sources:
            try:
                stats = run_loop(
                    recognizer, source, every=every, smoothing=smoothing, max_frames=max_frames, sinks=sinks,
                    video_out=None if no_annotate else _output_path(out_dir, rel, "annotated", ".mp4", used),
                    timeline_out=_output_path(out_dir, rel, "timeline", ".png", used), progress=progress,
                )
                counts["videos"] += 1
                counts["frames"] += stats.frames
                counts["faces"] += stats.faces
                click.echo(f"{stats.source}: {stats.frames} frames, {stats.faces} faces, {len(stats.tracks)} "
                           f"tracks, {stats.fps:.1f} fps", err=True)
            except AffectlensError as exc:
                fail(exc)
    finally:
        for writer in (jsonl, csv_out):
            if writer is not None:
                writer.close()

    total = len(plan.jobs) + len(plan.failures) + (camera is not None)
    done = counts["images"] + counts["videos"]
    click.echo(f"{done} of {total} inputs processed ({counts['images']} images, {counts['videos']} videos, "
               f"{counts['frames']} frames, {counts['faces']} faces); outputs in {out_dir}")
    if failures:
        click.echo(f"{len(failures)} failed:", err=True)
        for message in failures:
            click.echo(f"  {message}", err=True)
        sys.exit(1)


# ------------------------------------------------------------------------------------------ camera
@click.command("camera", context_settings=CONTEXT)
@click.option("--source", default="0", show_default=True,
              help="Camera index, or a video file (the same loop; for testing and headless runs).")
@_model_options
@_video_options
@click.option("--no-window", is_flag=True, help="Headless: no window; write an annotated video instead.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Write the annotated video here (default with --no-window: camera.mp4).")
@click.option("--jsonl", "jsonl_path", type=click.Path(path_type=Path), default=None,
              help="Also write one JSON record per frame here.")
def camera_command(source, model_spec, backend, device, detector, threshold, min_face_size, max_side, ten_crop,
                   threads, every, smoothing, max_frames, no_window, output, jsonl_path) -> None:
    """Live emotion recognition: a window with boxes, labels and fps (q or Esc quits)."""
    from affectlens.inference.camera import check_display, run_loop
    from affectlens.inference.outputs import JsonlWriter

    if not no_window:
        check_display()  # before loading anything: fail fast on a headless machine
    if no_window and output is None:
        output = Path("camera.mp4")
    recognizer = build_recognizer(model_spec, backend, device, detector, threshold, min_face_size, max_side,
                                  ten_crop, threads, smoothing)
    jsonl = JsonlWriter(jsonl_path) if jsonl_path else None
    try:
        stats = run_loop(recognizer, source, every=every, smoothing=smoothing, max_frames=max_frames,
                         sinks=[jsonl.write] if jsonl else [], video_out=output, window=not no_window,
                         show_fps=True, progress=False if not no_window else None)
    finally:
        if jsonl is not None:
            jsonl.close()
    message = f"{stats.source}: {stats.frames} frames, {stats.faces} faces, {stats.fps:.1f} fps"
    if stats.annotated is not None:
        message += f"; annotated video: {stats.annotated}"
    click.echo(message)


# ------------------------------------------------------------------------------------------ export
@click.command("export", context_settings=CONTEXT)
@click.option("-m", "--model", "model_spec", default="default", show_default=True,
              help="Shipped model name, run folder, or .safetensors file.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="ONNX file to write (default: <model name>.onnx here); the .json sidecar goes beside it.")
@click.option("--opset", type=int, default=17, show_default=True)
@click.option("--no-check", is_flag=True, help="Skip comparing ONNX Runtime with PyTorch on random input.")
def export_command(model_spec, output, opset, no_check) -> None:
    """Export a model to ONNX (dynamic batch) with its JSON model card."""
    from affectlens.inference.export import export_onnx
    from affectlens.models.pretrained import resolve_model

    weights = resolve_model(model_spec)
    if output is None:
        stem = f"{weights.parent.name}-{weights.stem}" if weights.stem in ("best", "last") else weights.stem
        output = Path(f"{stem}.onnx")
    summary = export_onnx(weights, output, opset=opset, check=not no_check)
    line = f"wrote {summary['onnx']} ({summary['bytes'] / 1e6:.1f} MB) and {summary['sidecar']}"
    if summary["max_abs_diff"] is not None:
        line += f"; max |onnx - torch| probability difference {summary['max_abs_diff']:.2e}"
    click.echo(line)
