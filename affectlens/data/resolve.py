"""Which dataset a command means: the path and kind a user names, or the data a run was trained on.

Commands name datasets in one way (``--data PATH --kind KIND --set option=value``), and
``evaluate --model RUN`` without ``--data`` means "the test split of the data this run trained
on". Both rules live here, below the command line, so the CLI, scripts and the web app resolve a
dataset the same way. A run's data is read from the ``data`` section of its saved ``config.yaml``
(every key is written there), by duck typing, so this module does not import the training package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from affectlens.config_io import read_mapping
from affectlens.data.conform import load_configured
from affectlens.data.dataset import EmotionDataset
from affectlens.data.limits import CHANNEL_COUNTS, MAX_IMAGE_SIZE
from affectlens.data.registry import guess_kind, list_dataset_kinds, load_dataset, loader_accepts
from affectlens.errors import AffectlensError

RUN_CONFIG = "config.yaml"


def load_requested(path: str | Path, kind: str = "auto", options: Mapping[str, Any] | None = None, *,
                   image_size: int | None = None, channels: int | None = None) -> EmotionDataset:
    """Load the dataset at ``path`` as a command names it (``kind`` ``auto`` guesses it).

    ``image_size`` and ``channels`` go to loaders that resize or convert themselves; naming them
    for a dataset of fixed-size images (FER2013, CK+) is an error rather than silently ignored.
    Explicit loader ``options`` win over both.
    """
    path = Path(path).expanduser()
    chosen = dict(options or {})
    if kind == "auto" and path.exists():
        kind = guess_kind(path)
    known = kind in list_dataset_kinds()
    for flag, name, value in (("--image-size", "image_size", image_size), ("--channels", "channels", channels)):
        if value is None:
            continue
        if known and not loader_accepts(kind, name):
            raise AffectlensError(f"{flag} does not apply to dataset kind '{kind}' (it delivers fixed-size images)")
        chosen.setdefault(name, value)
    _check_delivery(chosen)
    return load_dataset(kind, path, **chosen)


def _check_delivery(options: Mapping[str, Any]) -> None:
    """Refuse a size or channel count from ``--set`` that no image can have, before any image is read
    (a side of 30,000 px fails hours later with a memory error; 2 channels deep in a conversion)."""
    size, channels = options.get("image_size"), options.get("channels")
    if isinstance(size, int) and not isinstance(size, bool) and not 1 <= size <= MAX_IMAGE_SIZE:
        raise AffectlensError(f"--set image_size={size}: the image size must be 1 to {MAX_IMAGE_SIZE} pixels")
    if isinstance(channels, int) and not isinstance(channels, bool) and channels not in CHANNEL_COUNTS:
        raise AffectlensError(f"--set channels={channels}: channels must be 1 (grey) or 3 (RGB)")


def refuse_output_in_dataset(out: str | Path, dataset: str | Path, option: str = "--out") -> None:
    """Refuse an output folder that is, or lies inside, the dataset folder a command reads.

    A report's PNG charts written there would be read back by the next command on that dataset:
    a class-per-folder reader takes them for faces of a class named after the report folder (or
    for images without a class), and training on them is silent. Checked before anything is written.
    """
    data = Path(dataset).expanduser()
    if not data.is_dir():
        return  # a file (CSV, npz) lists its images; writing beside it adds none
    where, root = Path(out).expanduser().resolve(), data.resolve()
    if where == root or where.is_relative_to(root):
        raise AffectlensError(f"{option} {out}: lies inside the dataset folder {dataset}, where its charts would be "
                              "read back as images of the dataset; choose a folder outside it")


@dataclass(frozen=True)
class RunData:
    """The dataset a training run read (a :class:`~affectlens.data.conform.DatasetSpec`) and its test split."""

    kind: str
    path: str
    image_size: int
    channels: int
    options: Mapping[str, Any] = field(default_factory=dict)
    test_split: str | None = None


def run_data(run_dir: str | Path) -> RunData:
    """The ``data`` section of a run folder's saved config."""
    config = Path(run_dir) / RUN_CONFIG
    section = read_mapping(config).get("data")
    if not isinstance(section, dict):
        raise AffectlensError(f"{config}: has no 'data' section; not a config written by a training run")
    expected: dict[str, type | tuple[type, ...]] = {"kind": str, "path": str, "image_size": int, "channels": int,
                                                     "options": dict, "test_split": (str, type(None))}
    for key, kinds in expected.items():
        if key not in section:
            raise AffectlensError(f"{config}: data.{key} is missing")
        if not isinstance(section[key], kinds) or isinstance(section[key], bool):
            raise AffectlensError(f"{config}: data.{key} has the wrong type ({type(section[key]).__name__})")
    return RunData(**{key: section[key] for key in expected})


def is_run_folder(spec: str | Path) -> bool:
    """Whether a model spec names a training run folder (one with a saved config)."""
    path = Path(str(spec)).expanduser()
    return path.is_dir() and (path / RUN_CONFIG).exists()


@dataclass
class EvaluationData:
    """The samples to evaluate on, and the split they were selected by (None: all of them)."""

    dataset: EmotionDataset
    split: str | None


def resolve_evaluation_data(model_spec: str | Path, data_path: str | Path | None = None, kind: str = "auto",
                            split: str | None = None,
                            options: Mapping[str, Any] | None = None) -> EvaluationData:
    """The dataset ``evaluate`` reports on.

    With ``data_path``: that dataset (``kind``, loader ``options``), all of it or ``split``.
    Without: ``model_spec`` must be a run folder; its own dataset is read as it was for training
    (size, channels, options; ``options`` added) and its test split is chosen unless ``split`` is given.
    """
    from_config = False  # the split is the run's test split, not one the user named
    if data_path is None:
        if not is_run_folder(model_spec):
            raise AffectlensError("--data is required unless --model is a run folder")
        spec = run_data(model_spec)
        if options:
            spec = replace(spec, options={**spec.options, **options})
        dataset = load_configured(spec)
        from_config = split is None and spec.test_split is not None
        split = split or spec.test_split
    else:
        dataset = load_requested(data_path, kind, options)  # type: ignore[arg-type]
    if split and dataset.splits is not None:
        dataset = dataset.select_splits(split)
    elif split and from_config:
        raise AffectlensError(f"dataset '{dataset.name}' of run {model_spec} has no splits, so not its test split "
                              f"'{split}' (data.test_split); pass --data to evaluate on other data")
    elif split:
        raise AffectlensError(f"dataset '{dataset.name}' has no splits; drop --split")
    return EvaluationData(dataset, split)
