"""``affectlens predict`` (images, folders, videos) and ``affectlens camera`` (a live source).

``predict`` takes any mix of images, folders (searched recursively) and videos. One bad file
does not end a batch: its error is printed as one line, the other files are processed, and the
failures are listed at the end with exit status 1. A single file that fails raises its
:class:`AffectlensError` (one line, exit status 2, like every other command).

The camera is its own command, ``camera --source N``.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from affectlens.cli.app import (
    VideoOptions,
    build_recognizer,
    command,
    engine_options,
    exist_ok_option,
    out_option,
    recognizer_options,
    video_options,
    warn,
)
from affectlens.errors import AffectlensError
from affectlens.inference.options import EngineOptions, PredictOptions

if TYPE_CHECKING:
    from affectlens.inference.camera import LoopStats


# ----------------------------------------------------------------------------------------- predict
@command("predict")
@click.argument("paths", nargs=-1, type=click.Path())
@recognizer_options
@video_options
@out_option("Folder for all outputs (must be empty or new unless --exist-ok).", default=Path("predictions"))
@exist_ok_option
@click.option("--no-annotate", is_flag=True, help="Write no annotated images/videos (records and timelines only).")
@click.option("--format", "formats", default="jsonl,csv", show_default=True,
              help="Record formats, comma-separated: jsonl, csv (or 'none').")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
@engine_options
def predict_command(paths: tuple[str, ...], recognizer: PredictOptions, video: VideoOptions, out: Path,
                    exist_ok: bool, no_annotate: bool, formats: str, progress: bool | None,
                    engine: EngineOptions) -> None:
    """Find faces and recognise their emotions in images, folders and videos.

    Writes to --out: predictions.jsonl (one record per image or processed frame) and
    predictions.csv (one row per face), annotated images and videos, and for each video a
    timeline plot of the emotion probabilities per face. For a live camera use `affectlens camera`.

    Whole collections: --engine process or ray runs the inputs on several worker processes (or a
    Ray cluster), writes the same records plus predictions.parquet, and resumes: a rerun into the
    same --out skips the inputs already finished (by content hash).
    """
    from affectlens.inference.batch import parse_formats, plan_inputs, predict_inputs, remove_earlier_outputs
    from affectlens.utils.outputs import prepare_output_dir

    chosen = parse_formats(formats)
    if engine.engine != "ray" and engine.address is not None:
        raise click.UsageError("--address applies to --engine ray")
    if engine.engine == "sequential" and engine.workers is not None:
        raise click.UsageError("--workers applies to --engine process or ray")
    if any(not path.strip() for path in paths):  # Path("") is ".", the whole current folder: never meant
        raise click.BadParameter("an empty PATH was given (an unset shell variable?)", param_hint="PATHS")
    if not paths:
        raise click.UsageError("give one or more PATHs (images, folders, videos); for a camera use "
                               "`affectlens camera --source N`")

    plan = plan_inputs([Path(p) for p in paths], exclude=out)
    if not plan.batch and plan.failures:
        raise AffectlensError(plan.failures[0])
    resume = False
    if engine.engine != "sequential":
        from affectlens.engines.collection import check_engine
        from affectlens.engines.ledger import has_ledger

        check_engine(engine)  # Ray missing: one line, before any output exists
        resume = has_ledger(out)  # an engine run's folder: a rerun resumes it
    out_dir = prepare_output_dir(out, exist_ok=exist_ok or resume, inputs=paths)
    if plan.skipped:
        shown = ", ".join(plan.skipped[:5]) + (f" and {len(plan.skipped) - 5} more" if len(plan.skipped) > 5 else "")
        warn(f"{len(plan.skipped)} file{'s' if len(plan.skipped) != 1 else ''} left out (not an image or video): "
             f"{shown}")
    for message in plan.failures:
        click.echo(f"affectlens: error: {message}", err=True)
    failures = list(plan.failures)

    def on_error(exc: AffectlensError) -> None:
        if not plan.batch:
            raise exc
        click.echo(f"affectlens: error: {exc}", err=True)
        failures.append(str(exc))

    def on_video(s: LoopStats) -> None:
        click.echo(f"{s.source}: {s.frames} frames, {s.faces} faces, {len(s.tracks)} tracks, {s.fps:.1f} fps", err=True)

    options = replace(recognizer, smoothing=video.smoothing)
    earlier = ""
    if engine.engine == "sequential":
        counts = predict_inputs(build_recognizer(options), plan, out_dir, on_error=on_error, formats=chosen,
                                annotate=not no_annotate, progress=progress, on_notice=warn, on_video=on_video,
                                **video.as_kwargs())
    else:
        from affectlens.engines.collection import run_collection

        if options.backend == "torch" and engine.address is None:  # a cluster's devices are its workers' to check
            from affectlens.utils.devices import check_torch_device

            options = replace(options, device=check_torch_device(options.device))
        counts = run_collection(options, plan, out_dir, engine=engine, on_error=on_error, formats=chosen,
                                annotate=not no_annotate, every=video.every, max_frames=video.max_frames,
                                restart=exist_ok, progress=progress, on_notice=warn, on_video=on_video)
        earlier = f"; {counts.earlier} finished by an earlier run" if counts.earlier else ""
    if exist_ok and counts.done:  # this run's outputs replace the earlier run's: the folder never mixes two
        remove_earlier_outputs(out_dir, counts.written, [job.path for job in plan.jobs])
    click.echo(f"{counts.done} of {plan.total} inputs processed ({counts.images} images, {counts.videos} videos, "
               f"{counts.frames} frames, {counts.faces} faces{earlier}); outputs in {out_dir}")
    if failures:
        click.echo(f"{len(failures)} failed:", err=True)
        for message in failures:
            click.echo(f"  {message}", err=True)
        sys.exit(1)


# ------------------------------------------------------------------------------------------ camera
def run_camera(recognizer: PredictOptions, video: VideoOptions, source: str | int, *, window: bool,
               video_out: Path | None, jsonl: Path | None = None) -> LoopStats:
    """The loop of ``camera``: a window or an annotated video, and JSON records."""
    from affectlens.inference.batch import record_writers
    from affectlens.inference.camera import check_display, run_loop

    if window:
        check_display()  # before loading anything: fail fast on a headless machine
    model = build_recognizer(replace(recognizer, smoothing=video.smoothing))
    with record_writers(model, jsonl) as sinks:
        return run_loop(model, source, sinks=sinks, video_out=video_out, window=window, show_fps=True,
                        progress=False if window else None, **video.as_kwargs())


@command("camera")
@click.option("--source", default="0", show_default=True,
              help="Camera index, or a video file (the same loop; for testing and headless runs).")
@recognizer_options
@video_options
@click.option("--no-window", is_flag=True, help="Headless: no window; write an annotated video instead.")
@out_option("Annotated video to write (default with --no-window: camera.mp4).")
@click.option("--jsonl", "jsonl_path", type=click.Path(path_type=Path), default=None,
              help="Also write one JSON record per frame here.")
@exist_ok_option
def camera_command(source: str, recognizer: PredictOptions, video: VideoOptions, no_window: bool,
                   out: Path | None, jsonl_path: Path | None, exist_ok: bool) -> None:
    """Live emotion recognition: a window with boxes, labels and fps (q or Esc quits)."""
    from affectlens.inference.camera import parse_source
    from affectlens.utils.outputs import prepare_output_file

    if no_window and out is None:
        out = Path("camera.mp4")
    parsed = parse_source(source)
    inputs = [parsed]
    if out is not None:
        out = prepare_output_file(out, exist_ok=exist_ok, inputs=inputs)
        inputs.append(out)
    if jsonl_path is not None:
        jsonl_path = prepare_output_file(jsonl_path, exist_ok=exist_ok, inputs=inputs, option="--jsonl")
    stats = run_camera(recognizer, video, parsed, window=not no_window, video_out=out, jsonl=jsonl_path)
    message = f"{stats.source}: {stats.frames} frames, {stats.faces} faces, {stats.fps:.1f} fps"
    if stats.annotated is not None:
        message += f"; annotated video: {stats.annotated}"
    click.echo(message)
