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
    names = list(class_names) if class_names else _infer_classes(rows)
    base = path.parent
    paths, labels = [], []
    columns: dict[str, list] = {c: [] for c in OPTIONAL_COLUMNS}
    for row_number, row in rows:
        image_path = Path(row["path"])
        image_path = image_path if image_path.is_absolute() else base / image_path
        if check_files and not image_path.is_file():
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
            columns["frame"].append(int(row["frame"]) if (row["frame"] or "").strip() else -1)
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
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for i in range(len(dataset)):
            label = dataset.labels[i]
            row = [file_paths[i], dataset.class_names[label] if label >= 0 else ""]
            row += [optional[c][i] for c in columns[2:]]  # type: ignore[index]
            writer.writerow(row)
    return path


def _read_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    with open_csv(path) as handle:
        reader = csv.DictReader(handle)
        require_columns(path, reader.fieldnames, ["path"])
        header = [c.strip() for c in reader.fieldnames or []]
        if "label" not in header and not {"valence", "arousal"} <= set(header):
            raise AffectlensError(f"{path}: needs a 'label' column or 'valence' and 'arousal' columns")
        rows = [(n, {k.strip(): (v or "").strip() for k, v in row.items() if k}) for n, row in
                enumerate(reader, start=2)]
    if not rows:
        raise AffectlensError(f"{path}: no data rows")
    return rows


def _infer_classes(rows: list[tuple[int, dict[str, str]]]) -> list[str]:
    values = {r.get("label", "") for _, r in rows} - {"", "-1"}
    if all(v.lstrip("-").isdigit() for v in values):
        top = max((int(v) for v in values), default=-1)
        return [str(i) for i in range(top + 1)]
    return sorted(values)


def _parse_label(value: str, names: list[str], path: Path, row: int) -> int:
    if value in ("", "-1"):
        return NO_LABEL
    if value in names:
        return names.index(value)
    if value.isdigit() and int(value) < len(names):
        return int(value)
    raise AffectlensError(f"{path}: row {row}: label '{value}' is not in the class list {names}")


def _parse_float(value: str, column: str, path: Path, row: int) -> float:
    if value == "":
        return math.nan
    try:
        return float(value)
    except ValueError:
        raise AffectlensError(f"{path}: row {row}: {column} '{value}' is not a number") from None
