"""Prediction over many inputs: images, folders (searched recursively) and videos, into one folder.

What ``affectlens predict`` does, as a library function, so the command stays a thin layer and a
script gets the same outputs: ``predictions.jsonl`` (one record per image or processed frame),
``predictions.csv`` (one row per face), annotated images and videos, and one timeline plot per
video. One bad input does not end a batch: it is reported through ``on_error`` and the batch goes
on. Files in a folder that are neither images nor videos are listed, never silently dropped.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from affectlens.errors import AffectlensError
from affectlens.inference.camera import LoopStats, run_loop
from affectlens.inference.outputs import FORMATS, CsvWriter, JsonlWriter
from affectlens.inference.recognizer import Recognizer
from affectlens.inference.types import ImageResult
from affectlens.utils.outputs import PARTIAL, atomic_path

log = logging.getLogger(__name__)

#: extensions OpenCV writes; an annotated image of any other kind (GIF, PGM) is written as PNG
WRITABLE_IMAGES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
RECORDS = {"jsonl": "predictions.jsonl", "csv": "predictions.csv"}


# ------------------------------------------------------------------------------------------ inputs
@dataclass
class Job:
    """One input file: its kind and where its annotated outputs go (relative to the output folder)."""

    path: Path
    kind: str  # "image" | "video"
    rel: Path


@dataclass
class InputPlan:
    """What to process, what could not be (``failures``), and what was left out on purpose (``skipped``)."""

    jobs: list[Job] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    batch: bool = False  # a folder or several paths: keep going on errors

    @property
    def total(self) -> int:
        """Inputs counted in the summary: the jobs and the arguments that failed."""
        return len(self.jobs) + len(self.failures)


def plan_inputs(paths: Sequence[Path], exclude: Path | None = None) -> InputPlan:
    """Expand folders recursively; unreadable arguments become failures, not exceptions.

    Hidden files and folders (``.DS_Store``, ``.git``) are system files and ignored; any other
    file in a folder that is not an image or a video is listed in ``skipped``. Files under
    ``exclude`` (the output folder, when it lies inside an input folder) are an earlier run's
    outputs, not inputs.
    """
    excluded = exclude.resolve() if exclude is not None else None
    from affectlens.data.image_io import is_image_file
    from affectlens.inference.video import is_video_file

    plan = InputPlan(batch=len(paths) > 1)
    for arg in map(Path, paths):
        if not arg.exists():
            plan.failures.append(f"{arg}: file does not exist")
            continue
        if arg.is_dir():
            plan.batch = True
            files = sorted(p for p in arg.rglob("*") if p.is_file()
                           and not any(part.startswith(".") for part in p.relative_to(arg).parts)
                           and not (excluded is not None and p.resolve().is_relative_to(excluded)))
            found = [p for p in files if is_image_file(p) or is_video_file(p)]
            plan.skipped += [str(p) for p in files if not (is_image_file(p) or is_video_file(p))]
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


def parse_formats(text: str) -> list[str]:
    """``"jsonl,csv"`` -> the record formats to write (``"none"``: none)."""
    chosen = [f.strip().lower() for f in text.split(",") if f.strip()]
    if not chosen:
        raise AffectlensError(f"--format '{text}': name at least one of {', '.join(FORMATS)}, or none")
    if chosen == ["none"]:
        return []
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown:
        raise AffectlensError(f"unknown output format '{unknown[0]}'; valid: {', '.join(FORMATS)}, none")
    return chosen


# ----------------------------------------------------------------------------------------- outputs
#: the names an earlier ``predict`` run leaves in its folder (records, annotated files, timelines)
OUTPUT_PATTERNS = (*RECORDS.values(), "*.annotated.*", "*.timeline.png")


class OutputNames:
    """``out/<rel parent>/<stem>.<tag><suffix>``, unique when two inputs share a stem, never an input.

    A name that would pass the file system's limit on one name (255 bytes on most; the input's own
    name may already be that long) keeps the start of the stem and gains a short digest of all of
    it, so two long names that share a start still get two outputs.
    """

    def __init__(self, out_dir: Path, inputs: Sequence[Path] = ()) -> None:
        self.out_dir = out_dir
        self._used: set[Path] = set()
        self._inputs = {p.resolve() for p in inputs}
        self.name_max = _name_max(out_dir)

    def __call__(self, rel: Path, tag: str, suffix: str) -> Path:
        path = self.out_dir / rel.parent / self._fit(rel.stem, f".{tag}{suffix}")
        if path in self._used:
            path = self.out_dir / rel.parent / self._fit(f"{rel.stem}_{rel.suffix.lstrip('.')}", f".{tag}{suffix}")
        self._used.add(path)
        if path.resolve() in self._inputs:
            raise AffectlensError(f"--out {path}: is also an input of this command; write to another path")
        return path

    @property
    def used(self) -> set[Path]:
        return set(self._used)

    def _fit(self, stem: str, ending: str) -> str:
        """``stem + ending``, the stem shortened when the name (while written, with ``.partial``) is too long."""
        room = self.name_max - len((ending + PARTIAL).encode())
        if len(stem.encode()) <= room:
            return stem + ending
        digest = "~" + hashlib.sha1(stem.encode()).hexdigest()[:10]
        kept = stem.encode()[: max(1, room - len(digest))].decode(errors="ignore")
        return kept + digest + ending


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows) or not answered
        return 255


def remove_earlier_outputs(out_dir: Path, written: set[Path], inputs: Sequence[Path] = ()) -> list[Path]:
    """Delete an earlier run's predict outputs in ``out_dir`` that this run did not write (``--exist-ok``).

    Without this a rerun that writes fewer formats, or fewer inputs, leaves the earlier run's
    records and annotated files beside its own, and the folder mixes two runs. Only names that
    ``predict`` itself writes are touched, never one of this run's ``inputs``; the user's other
    files stay.
    """
    kept = {path.resolve() for path in inputs}
    removed = []
    for pattern in OUTPUT_PATTERNS:
        for path in out_dir.rglob(pattern):
            relative = path.relative_to(out_dir).parts
            if path.is_file() and path not in written and path.resolve() not in kept \
                    and not any(part.startswith(".") for part in relative):
                path.unlink()
                removed.append(path)
    return removed


@contextmanager
def record_writers(recognizer: Recognizer, jsonl: Path | None = None,
                   csv: Path | None = None) -> Iterator[list[Callable]]:
    """Open the record files asked for; yields their ``write`` methods and closes them (records kept) at the end."""
    with ExitStack() as stack:
        sinks: list[Callable] = []
        if jsonl is not None:
            sinks.append(stack.enter_context(JsonlWriter(jsonl)).write)
        if csv is not None:
            writer = CsvWriter(csv, recognizer.class_names, recognizer.has_valence_arousal)
            sinks.append(stack.enter_context(writer).write)
        yield sinks


def write_annotated_image(path: Path, image: np.ndarray, faces: Sequence) -> None:
    """The image with boxes and labels drawn, written whole or not at all."""
    import cv2

    from affectlens.inference.annotate import draw_faces

    if image.ndim == 2 or image.shape[2] == 1:
        bgr = cv2.cvtColor(np.ascontiguousarray(image.reshape(image.shape[0], image.shape[1])), cv2.COLOR_GRAY2BGR)
    else:
        bgr = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2BGR)
    draw_faces(bgr, faces)
    with atomic_path(path) as partial:
        if not cv2.imwrite(str(partial), bgr):
            raise AffectlensError(f"{path}: cannot write annotated image")


# ------------------------------------------------------------------------------------------- batch
@dataclass
class BatchCounts:
    """What a batch did."""

    images: int = 0
    videos: int = 0
    frames: int = 0
    faces: int = 0
    #: every output file this run wrote (records, annotated files, timelines)
    written: set[Path] = field(default_factory=set)

    @property
    def done(self) -> int:
        return self.images + self.videos


def predict_inputs(
    recognizer: Recognizer,
    plan: InputPlan,
    out_dir: Path,
    *,
    on_error: Callable[[AffectlensError], None],
    formats: Sequence[str] = FORMATS,
    annotate: bool = True,
    every: int = 1,
    smoothing: float | None = 0.5,
    max_frames: int | None = None,
    progress: bool | None = None,
    on_notice: Callable[[str], None] = log.warning,
    on_video: Callable[[LoopStats], None] | None = None,
) -> BatchCounts:
    """Run every job of ``plan``; records go to ``out_dir`` (images first, then videos).

    A failing input goes to ``on_error`` (which may re-raise to end the run); notices about an
    input (an animated image read as its first frame) go to ``on_notice``. Records are flushed
    per input and the files are closed on every way out, Ctrl-C and SIGTERM included.
    """
    from tqdm import tqdm

    counts = BatchCounts()
    names = OutputNames(out_dir, [job.path for job in plan.jobs])
    jsonl = out_dir / RECORDS["jsonl"] if "jsonl" in formats else None
    csv = out_dir / RECORDS["csv"] if "csv" in formats else None
    with record_writers(recognizer, jsonl, csv) as sinks:
        images = [job for job in plan.jobs if job.kind == "image"]
        show = progress if len(images) > 1 else False
        for job in tqdm(images, unit="image", desc="images", disable=(not show) if show is not None else None,
                        leave=False, dynamic_ncols=True):
            try:
                name = (lambda job=job: names(job.rel, "annotated", annotated_suffix(job.path))) if annotate else None
                result = predict_image(recognizer, job.path, sinks, annotated=name, on_notice=on_notice)
                counts.images += 1
                counts.faces += len(result.faces)
            except AffectlensError as exc:
                on_error(exc)
            except OSError as exc:
                on_error(write_error(job.path, exc))
        for job in (job for job in plan.jobs if job.kind == "video"):
            try:
                stats = predict_video(
                    recognizer, job.path, sinks, every=every, smoothing=smoothing, max_frames=max_frames,
                    annotated=names(job.rel, "annotated", ".mp4") if annotate else None,
                    timeline=names(job.rel, "timeline", ".png"), progress=progress,
                )
                counts.videos += 1
                counts.frames += stats.frames
                counts.faces += stats.faces
                if on_video is not None:
                    on_video(stats)
            except AffectlensError as exc:
                on_error(exc)
            except OSError as exc:
                on_error(write_error(job.path, exc))
    counts.written = names.used | {p for p in (jsonl, csv) if p is not None}
    return counts


# ------------------------------------------------------------------------------------- one input
def annotated_suffix(path: Path) -> str:
    """The annotated image's suffix: the input's own when OpenCV writes it, else ``.png``."""
    return path.suffix.lower() if path.suffix.lower() in WRITABLE_IMAGES else ".png"


def predict_image(recognizer: Recognizer, path: Path, sinks: Sequence[Callable], *,
                  annotated: Callable[[], Path] | None = None,
                  on_notice: Callable[[str], None] = log.warning) -> ImageResult:
    """One photo: its record to every sink and, when ``annotated`` names a file, its annotated copy.

    The one step that ``predict`` and every engine (:mod:`affectlens.engines`) run per photo, so
    their records are the same bytes. ``annotated`` is called only once the photo has a result:
    a photo that fails claims no output name (two inputs that share a stem keep the plain name
    for the one that succeeds, as before).
    """
    from affectlens.data.image_io import load_image

    decoded = load_image(path)
    for notice in decoded.notices:
        on_notice(notice)
    result = recognizer.predict(decoded.pixels)
    result.source = str(path)
    for sink in sinks:
        sink(result)
    if annotated is not None:
        write_annotated_image(annotated(), decoded.pixels, result.faces)
    return result


def predict_video(recognizer: Recognizer, path: Path, sinks: Sequence[Callable], *, every: int = 1,
                  smoothing: float | None = 0.5, max_frames: int | None = None, annotated: Path | None = None,
                  timeline: Path | None = None, progress: bool | None = None) -> LoopStats:
    """One video: a record per processed frame to every sink, its annotated video and timeline (the
    step ``predict`` and every engine run per video)."""
    return run_loop(recognizer, path, every=every, smoothing=smoothing, max_frames=max_frames, sinks=sinks,
                    video_out=annotated, timeline_out=timeline, progress=progress)


#: errors after which no further input can be written either: the run stops (records kept)
FATAL_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def write_error(source: Path, exc: OSError) -> AffectlensError:
    """One line for a failed write while processing ``source``; raised at once when no later input could succeed."""
    where = f" {exc.filename}" if exc.filename else ""
    error = AffectlensError(f"{source}: cannot write its outputs:{where} ({exc.strerror or exc})")
    if exc.errno in FATAL_WRITE_ERRORS:
        raise AffectlensError(f"{error}; stopped, the records written so far are kept") from None
    return error
