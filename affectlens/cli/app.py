"""The ``affectlens`` click group, its one grammar, and the option decorators every command shares.

The grammar (the same in every command, after ultralytics and timm):

- ``-m/--model`` is always *weights*: a shipped name (``default``, ``fast``, ``vgg_fer_small.fer2013``),
  a run folder or a ``.safetensors``/``.onnx`` file. ``--arch`` is an architecture (``train`` only).
- ``--data`` / ``--kind`` name a dataset wherever one is read.
- ``-o/--out`` is every output (a folder or a file, as the command says); ``--exist-ok`` lets an
  output that already holds something be replaced.
- ``-s/--set KEY=VALUE`` is every override (config keys for ``train``, loader options for the
  dataset commands).
- Numbers are range-checked (and finite) when the command line is parsed.

Options are declared once here, so a flag means the same in every command.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import click

from affectlens.data.limits import CHANNEL_COUNTS, MAX_IMAGE_SIZE
from affectlens.inference.options import DEFAULTS, ENGINE_DEFAULTS, ENGINES, EngineOptions, PredictOptions

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
PROG = "affectlens"


def warn(message: str) -> None:
    """One ``affectlens: warning: ...`` line on stderr (notices about inputs)."""
    click.echo(f"{PROG}: warning: {' '.join(str(message).split())}", err=True)


# ---------------------------------------------------------------------------------------------- types
class FiniteFloatRange(click.FloatRange):
    """A :class:`click.FloatRange` that also refuses ``nan`` and ``inf`` (which pass every comparison test)."""

    name = "float range"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)


#: greater than zero (learning rates)
POSITIVE = FiniteFloatRange(min=0.0, min_open=True)
#: zero or more (sizes in pixels)
NON_NEGATIVE = FiniteFloatRange(min=0.0)
#: a probability-like threshold in [0, 1]
UNIT_INTERVAL = FiniteFloatRange(0.0, 1.0)
#: at least one (counts, epochs, batch sizes)
AT_LEAST_ONE = click.IntRange(min=1)
#: zero or more (counts where 0 means "off" or "all")
COUNT = click.IntRange(min=0)
#: a side in pixels that images are resized to (up to :data:`~affectlens.data.limits.MAX_IMAGE_SIZE`)
IMAGE_SIZE = click.IntRange(1, MAX_IMAGE_SIZE)
#: 1 (grey) or 3 (RGB): 2 is no image format
CHANNELS = click.Choice(CHANNEL_COUNTS)


# ------------------------------------------------------------------------------------------ commands
def command(name: str) -> Callable[[Callable[..., Any]], click.Command]:
    """``@command("predict")``: a command of this CLI (the shared context settings)."""
    return click.command(name, context_settings=dict(CONTEXT))


class _LevelFormatter(logging.Formatter):
    """Log lines in the CLI's own voice: ``affectlens: warning: ...``."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{PROG}: {record.levelname.lower()}: {record.getMessage()}"


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="affectlens")
@click.option("-v", "--verbose", is_flag=True, help="Log more detail.")
def cli(verbose: bool) -> None:
    """Recognise emotions in faces, and train and evaluate emotion models on your own data.

    One grammar in every command: -m/--model is weights (a shipped name, run folder or file),
    --arch an architecture, --data/--kind a dataset, -o/--out an output, --set KEY=VALUE an override.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(_LevelFormatter())
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])


# ------------------------------------------------------------------------------------ shared options
def _apply(options: list[Callable[[Any], Any]], func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(options):
        func = option(func)
    return func


def model_option(default: str | None = DEFAULTS.model,
                 help: str = "Weights: a shipped name, run folder, or .safetensors/.onnx file "
                             "(see `affectlens models`).",
                 dest: str = "model_spec") -> Callable[[Any], Any]:
    """``-m/--model``: always weights, never an architecture."""
    return click.option("-m", "--model", dest, default=default, show_default=default is not None,
                        metavar="WEIGHTS", help=help)


def arch_option(help: str = "Architecture (see `affectlens models --all`).") -> Callable[[Any], Any]:
    """``--arch``: an architecture of the registry."""
    return click.option("--arch", "arch", metavar="NAME", help=help)


def data_options(kind_default: str | None = "auto",
                 data_help: str = "Dataset path (file or folder).") -> Callable[[Callable[..., Any]], Any]:
    """``--data`` and ``--kind``: a dataset wherever one is read."""
    kind_help = "Dataset kind (fer2013, ferplus, folder, manifest, ckplus, affwild2_expr, affwild2_va, packed, ...)" + (
        "; auto guesses it from the path." if kind_default == "auto" else ".")
    return functools.partial(_apply, [
        click.option("--data", "data_path", metavar="PATH", help=data_help),
        click.option("--kind", "data_kind", default=kind_default, show_default=kind_default is not None,
                     help=kind_help),
    ])


def out_option(help: str, default: Path | None = None, required: bool = False) -> Callable[[Any], Any]:
    """``-o/--out``: every output."""
    given = {"default": default, "show_default": True} if default is not None else {}  # default=None defeats required
    return click.option("-o", "--out", "out", type=click.Path(path_type=Path), required=required, help=help, **given)


def exist_ok_option(func: Callable[..., Any]) -> Any:
    """``--exist-ok``: an output that already holds something may be replaced (never an input)."""
    return click.option("--exist-ok", is_flag=True, help="Replace the files of an existing output "
                        "(without it a non-empty output is refused).")(func)


def set_option(help: str) -> Callable[[Any], Any]:
    """``-s/--set KEY=VALUE`` (repeatable): every override."""
    return click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE", help=help)


def device_option(default: str, help: str = "auto, cpu, cuda, cuda:N or mps.") -> Callable[[Any], Any]:
    return click.option("--device", default=default, show_default=True, help=help)


# ------------------------------------------------------------------- recognizer and video options
def build_recognizer(options: PredictOptions) -> Any:
    """The :class:`~affectlens.inference.recognizer.Recognizer` the command-line ``options`` describe
    (a torch device is checked first, for a one-line error naming it)."""
    from affectlens.inference.recognizer import Recognizer
    from affectlens.utils.devices import check_torch_device

    if options.backend == "torch":
        options = replace(options, device=check_torch_device(options.device))
    return Recognizer.from_options(options)


_RECOGNIZER_OPTIONS = [
    model_option(dest="model"),
    click.option("--backend", type=click.Choice(["onnx", "torch"]), default=DEFAULTS.backend, show_default=True,
                 help="Inference backend (onnx: ONNX Runtime on CPU; torch needs the train extra)."),
    device_option(DEFAULTS.device, help="Torch device with --backend torch: cpu, cuda, cuda:N or mps."),
    click.option("--detector", default=DEFAULTS.detector, show_default=True, help="Face detector: centerface, haar."),
    click.option("--threshold", type=UNIT_INTERVAL, default=DEFAULTS.threshold,
                 help="Face detector confidence threshold in [0, 1] (default: the detector's own)."),
    click.option("--min-face-size", type=NON_NEGATIVE, default=DEFAULTS.min_face_size, show_default=True,
                 help="Ignore faces smaller than this many pixels."),
    click.option("--max-side", type=COUNT, default=DEFAULTS.max_side, show_default=True,
                 help="Detect on images downscaled to this longer side (0: full size). Lower is faster."),
    click.option("--ten-crop", is_flag=True, default=DEFAULTS.ten_crop, help="Average ten crops per face (slower)."),
    click.option("--mirror/--no-mirror", default=DEFAULTS.mirror,
                 help="Also classify each face's mirror image and average (default: as the model card says; "
                      "the fast model does). --no-mirror doubles the classifier's speed at its unmirrored "
                      "accuracy."),
    click.option("--threads", type=AT_LEAST_ONE, default=DEFAULTS.threads,
                 help="Classifier threads (default: up to 4)."),
    click.option("--detect-every", type=AT_LEAST_ONE, default=DEFAULTS.detect_every, show_default=True,
                 help="Video: full face detection on every N-th processed frame, faces followed in between "
                      "(1: detect on every frame)."),
    click.option("--prior-correction", type=UNIT_INTERVAL, default=DEFAULTS.prior_correction, show_default=True,
                 help="Divide the training class frequencies out of the probabilities, 0 (as trained) to 1 "
                      "(as if every emotion were equally common): rare emotions such as disgust are then "
                      "recognised more often on faces from other sources, at some cost in accuracy on "
                      "faces like the training set."),
]


def _option_group(
    group: type, options: list[Callable[[Any], Any]], parameter: str, unbundled: tuple[str, ...] = ()
) -> Callable[[Callable[..., Any]], Any]:
    """A decorator adding ``options``; the command receives them bundled as ``parameter: group``.

    Why bundled: commands sharing a group (``predict`` and ``camera``) pass one typed value on
    instead of a dozen loose keywords, and an option added to the group reaches all of them.
    ``unbundled``: fields of ``group`` that these options do not set (they keep the group's defaults).
    """
    fields = [name for name in group.__dataclass_fields__ if name not in unbundled]

    def decorator(func: Callable[..., Any]) -> Any:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bundled = group(**{name: kwargs.pop(name) for name in fields})
            return func(*args, **{parameter: bundled}, **kwargs)

        return _apply(options, wrapper)

    return decorator


#: the model/backend/detector options; the command receives ``recognizer: PredictOptions``
recognizer_options = _option_group(PredictOptions, _RECOGNIZER_OPTIONS, "recognizer",
                                   unbundled=("smoothing", "calibrate"))  # smoothing is a video option


@dataclass(frozen=True)
class VideoOptions:
    """How a video or camera stream is sampled and smoothed."""

    every: int
    smoothing: float
    max_frames: int | None

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~affectlens.inference.camera.run_loop`."""
        return asdict(self)


_VIDEO_OPTIONS = [
    click.option("--every", type=AT_LEAST_ONE, default=1, show_default=True, help="Video: process every N-th frame."),
    click.option("--smoothing", type=FiniteFloatRange(0.0, 1.0, max_open=True), default=DEFAULTS.smoothing,
                 show_default=True,
                 help="Video: weight of the past in the per-face moving average of probabilities, in [0, 1) "
                      "(0: off)."),
    click.option("--max-frames", type=AT_LEAST_ONE, default=None,
                 help="Video/camera: stop after this many processed frames."),
]


#: the video sampling/smoothing options; the command receives ``video: VideoOptions``
video_options = _option_group(VideoOptions, _VIDEO_OPTIONS, "video")


_ENGINE_OPTIONS = [
    click.option("--engine", type=click.Choice(ENGINES), default=ENGINE_DEFAULTS.engine, show_default=True,
                 help="How a collection is run: sequential (one input after another, in this process), "
                      "process (a pool of local worker processes) or ray (Ray actors, embedded here or on "
                      "--address; needs affectlens[batch]). The same records; process and ray also write "
                      "predictions.parquet and resume: a rerun into the same --out skips finished inputs."),
    click.option("--workers", type=AT_LEAST_ONE, default=ENGINE_DEFAULTS.workers,
                 help="Worker processes of --engine process/ray, each holding the model once "
                      "(default: this machine's CPUs, or the cluster's with --address)."),
    click.option("--address", default=ENGINE_DEFAULTS.address, metavar="ADDRESS",
                 help="--engine ray on an existing cluster: auto, HOST:6379 or ray://HOST:10001 "
                      "(default: Ray embedded on this machine, no set-up)."),
]

#: the engine options of ``predict``; the command receives ``engine: EngineOptions``
engine_options = _option_group(EngineOptions, _ENGINE_OPTIONS, "engine")


# ------------------------------------------------------------------------------------------ tables
def format_table(header: list[str], rows: list[list[str]], right: set[int] | frozenset[int] = frozenset(),
                 indent: str = "") -> list[str]:
    """Aligned plain-text table lines (header, rule, rows); columns in ``right`` are right-aligned."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        text = "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        return indent + text.rstrip()

    return [line(header), indent + "  ".join("-" * w for w in widths), *(line(r) for r in rows)]
