"""Manifest CSV: ``path,label[,valence,arousal][,subject][,video][,split][,frame]``.

The general format for any data the other loaders don't know (Aff-Wild2 or AffectNet frames,
a lab's own recordings). Paths are relative to the manifest's folder unless absolute. ``label``
is a class name or index; empty or -1 means "no class label" (valence/arousal-only rows).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from affectlens.data.dataset import NO_LABEL, EmotionDataset
from affectlens.data.folder import IN_MEMORY_LIMIT, load_into_memory
from affectlens.data.tabular import open_csv, require_columns
from affectlens.errors import AffectlensError
from affectlens.utils.outputs import atomic_path

OPTIONAL_COLUMNS = ("valence", "arousal", "subject", "video", "split", "frame")


def load_manifest(
    path: str | Path,
    class_names: list[str] | None = None,
    image_size: int | tuple[int, int] = 48,
    channels: int = 1,
    in_memory: bool | None = None,
    check_files: bool = True,
) -> EmotionDataset:
    """Read a manifest CSV; every bad row gets an error naming the row and the problem."""
    path = Path(path)
    rows = _read_rows(path)
    names = list(class_names) if class_names else _infer_classes(rows, path)
    base = path.parent
    paths, labels = [], []
    columns: dict[str, list] = {c: [] for c in OPTIONAL_COLUMNS}
    for row_number, row in rows:
        image_path = _image_path(row.get("path", ""), base, path, row_number)
        if check_files and not _is_file(image_path):
            raise AffectlensError(f"{path}: row {row_number}: image {image_path} does not exist")
        paths.append(image_path)
        labels.append(_parse_label(row.get("label", ""), names, path, row_number))
        for column in ("valence", "arousal"):
            if column in row:
                columns[column].append(_parse_float(row[column], column, path, row_number))
        for column in ("subject", "video", "split"):
            if column in row:
                columns[column].append(row[column] or "")
        if "frame" in row:
            columns["frame"].append(_parse_int(row["frame"], "frame", path, row_number))
    present = set(rows[0][1]) if rows else set()
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    dataset = EmotionDataset(
        name=path.stem,
        class_names=names,
        labels=np.array(labels, dtype=np.int64),
        paths=paths,
        image_size=size,  # type: ignore[arg-type]
        channels=channels,
        valence=np.array(columns["valence"], np.float32) if "valence" in present else None,
        arousal=np.array(columns["arousal"], np.float32) if "arousal" in present else None,
        subjects=np.array(columns["subject"]) if "subject" in present else None,
        videos=np.array(columns["video"]) if "video" in present else None,
        splits=np.array(columns["split"]) if "split" in present else None,
        frames=np.array(columns["frame"]) if "frame" in present else None,
        source_ids=np.array([f"row {n}" for n, _ in rows]),
        meta={"source": str(path)},
    )
    if in_memory is None:
        in_memory = len(dataset) <= IN_MEMORY_LIMIT
    return load_into_memory(dataset) if in_memory else dataset


def write_manifest(dataset: EmotionDataset, path: str | Path, paths: list[str] | None = None) -> Path:
    """Write a manifest CSV for a path-based dataset (used by `affectlens split`)."""
    path = Path(path)
    file_paths = paths or [str(p) for p in (dataset.paths or dataset.meta.get("paths") or [])]
    if len(file_paths) != len(dataset):
        raise AffectlensError(f"{path}: dataset '{dataset.name}' has no file paths to write")
    columns = ["path", "label"]
    optional = {"valence": dataset.valence, "arousal": dataset.arousal, "subject": dataset.subjects,
                "video": dataset.videos, "split": dataset.splits, "frame": dataset.frames}
    columns += [c for c, v in optional.items() if v is not None]
    with atomic_path(path) as partial, open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for i in range(len(dataset)):
            label = dataset.labels[i]
            row = [file_paths[i], dataset.class_names[label] if label >= 0 else ""]
            row += [optional[c][i] for c in columns[2:]]  # type: ignore[index]
            writer.writerow(row)
    return path


def _read_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """The data rows with their line numbers; a file that is not a readable CSV is one line."""
    try:
        with open_csv(path) as handle:
            reader = csv.DictReader(handle)
            require_columns(path, reader.fieldnames, ["path"])
            header = [c.strip() for c in reader.fieldnames or []]
            if "label" not in header and not {"valence", "arousal"} <= set(header):
                raise AffectlensError(f"{path}: needs a 'label' column or 'valence' and 'arousal' columns")
            rows = [(n, {k.strip(): (v or "").strip() for k, v in row.items() if isinstance(k, str) and k}) for n, row
                    in enumerate(reader, start=2)]
    except UnicodeDecodeError as exc:
        raise AffectlensError(f"{path}: not a UTF-8 text CSV (undecodable byte at offset {exc.start})") from None
    except csv.Error as exc:
        raise AffectlensError(f"{path}: not a readable CSV ({exc})") from None
    if not rows:
        raise AffectlensError(f"{path}: no data rows")
    return rows


def _image_path(value: str, base: Path, manifest: Path, row: int) -> Path:
    if not value:
        raise AffectlensError(f"{manifest}: row {row}: empty 'path'")
    if "\x00" in value:
        raise AffectlensError(f"{manifest}: row {row}: 'path' holds a NUL character")
    image_path = Path(value)
    return image_path if image_path.is_absolute() else base / image_path


def _is_file(path: Path) -> bool:
    """``Path.is_file`` that answers False for names the system refuses (too long, bad bytes)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _as_index(value: str) -> int | None:
    """``value`` as a plain ASCII integer ("3", "-1"), else None (so "²" or "1e3" stay names)."""
    return int(value) if value.isascii() and value.lstrip("-").isdigit() else None


#: largest class index inferred from integer labels (a typo such as 70000 must not make 70,001 classes)
MAX_INFERRED_CLASSES = 1000


def _infer_classes(rows: list[tuple[int, dict[str, str]]], path: Path) -> list[str]:
    values = {r.get("label", "") for _, r in rows} - {"", "-1"}
    if all(_as_index(v) is not None for v in values):
        top = max((_as_index(v) or 0 for v in values), default=-1)
        if top >= MAX_INFERRED_CLASSES:
            raise AffectlensError(f"{path}: label {top} implies {top + 1} classes; pass the class names "
                                  "(class_names option) or use class names as labels")
        return [str(i) for i in range(top + 1)]
    return sorted(values)


def _parse_label(value: str, names: list[str], path: Path, row: int) -> int:
    if value in ("", "-1"):
        return NO_LABEL
    if value in names:
        return names.index(value)
    index = _as_index(value)
    if index is not None and 0 <= index < len(names):
        return index
    raise AffectlensError(f"{path}: row {row}: label '{value}' is not in the class list {names}")


def _parse_int(value: str, column: str, path: Path, row: int) -> int:
    if value == "":
        return -1
    index = _as_index(value)
    if index is None:
        raise AffectlensError(f"{path}: row {row}: {column} '{value}' is not a whole number")
    return index


def _parse_float(value: str, column: str, path: Path, row: int) -> float:
    if value == "":
        return math.nan
    try:
        number = float(value)
    except ValueError:
        raise AffectlensError(f"{path}: row {row}: {column} '{value}' is not a number") from None
    if math.isinf(number):
        raise AffectlensError(f"{path}: row {row}: {column} '{value}' is not a finite number")
    return number
