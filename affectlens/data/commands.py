"""The ``affectlens inspect`` and ``affectlens split`` commands (registered in :mod:`affectlens.cli`).

``inspect`` answers "why is validation so much worse than training?" with evidence (class mix,
subjects/videos per class, leakage, duplicates, unusable images) in a Markdown + JSON report;
``split`` then writes a stratified and/or grouped split as a manifest CSV that ``train`` reads.
"""

from __future__ import annotations

import inspect as pyinspect
import os
from pathlib import Path
from typing import Any

import click
import numpy as np

from affectlens.data.dataset import EmotionDataset
from affectlens.data.duplicates import NEAR_THRESHOLD
from affectlens.errors import AffectlensError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
SEVERITY_TAG = {"high": "HIGH  ", "medium": "MEDIUM", "info": "info  "}


def _parse_options(items: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` loader options (values read as YAML: numbers, lists, true/false)."""
    import yaml

    options: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise AffectlensError(f"option '{item}' must look like KEY=VALUE, e.g. frames_dir=/data/cropped_aligned")
        options[key.strip()] = yaml.safe_load(raw) if raw else ""
    return options


def _load(path: Path, kind: str, options: dict[str, Any], image_size: int | None = None,
          channels: int | None = None) -> EmotionDataset:
    """Load with the registry; --image-size / --channels only for loaders that resize / convert."""
    from affectlens.data.registry import LOADERS, guess_kind, load_dataset

    if kind == "auto" and path.exists():
        kind = guess_kind(path)
    accepted = pyinspect.signature(LOADERS[kind]).parameters if kind in LOADERS else {}
    for flag, name, value in (("--image-size", "image_size", image_size), ("--channels", "channels", channels)):
        if value is None:
            continue
        if kind in LOADERS and name not in accepted:
            raise AffectlensError(f"{flag} does not apply to dataset kind '{kind}' (it delivers fixed-size images)")
        options.setdefault(name, value)
    return load_dataset(kind, path, **options)


@click.command("inspect", context_settings=CONTEXT)
@click.argument("dataset_path", type=click.Path(path_type=Path))
@click.option("--kind", default="auto", show_default=True,
              help="Dataset kind (fer2013, ferplus, folder, manifest, ckplus, affwild2_expr, affwild2_va, ...).")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path),
              help="Report folder (default: reports/inspect-<dataset name>).")
@click.option("--near-threshold", type=click.IntRange(0, 32), default=NEAR_THRESHOLD, show_default=True,
              help="Largest perceptual-hash distance (bits of 64) between near-duplicates.")
@click.option("--no-near", is_flag=True, help="Skip the near-duplicate search (exact duplicates are always found).")
@click.option("--image-size", type=int, help="Side images are resized to (loaders that resize; default theirs).")
@click.option("--channels", type=click.IntRange(1, 3), help="1 (grey) or 3 (RGB), for loaders that convert.")
@click.option("-O", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Loader option, e.g. -O frames_dir=/data/cropped_aligned or -O class_names=[a,b] (repeatable).")
def inspect_command(dataset_path: Path, kind: str, out_dir: Path | None, near_threshold: int, no_near: bool,
                    image_size: int | None, channels: int | None, options: tuple[str, ...]) -> None:
    """Find why validation lags training: class mix, subjects/videos per class, leakage, duplicates.

    Writes report.md (findings first, then tables), report.json, duplicates.csv and PNG charts.
    """
    from affectlens.data.inspection import inspect_dataset
    from affectlens.data.inspection_report import write_inspection_report

    dataset = _load(dataset_path, kind, _parse_options(options), image_size, channels)
    result = inspect_dataset(dataset, near_duplicates=not no_near, near_threshold=near_threshold)
    out_dir = out_dir or Path("reports") / f"inspect-{dataset.name}"
    written = write_inspection_report(result, out_dir, dataset)
    click.echo(dataset.describe())
    warnings = result["warnings"]
    counts = {s: sum(w["severity"] == s for w in warnings) for s in ("high", "medium", "info")}
    click.echo(f"{len(warnings)} findings ({counts['high']} high, {counts['medium']} medium, {counts['info']} info)"
               + (":" if warnings else "."))
    for w in warnings:
        click.echo(f"  {SEVERITY_TAG[w['severity']]} {w['message']}")
    click.echo(f"report: {written['markdown']} (also {written['json'].name}, {written['duplicates_csv'].name}, "
               "PNG charts)")


@click.command("split", context_settings=CONTEXT)
@click.argument("dataset_path", type=click.Path(path_type=Path))
@click.option("-o", "--out", "out_path", type=click.Path(path_type=Path), required=True,
              help="Manifest CSV to write (path,label,...,split).")
@click.option("--method", type=click.Choice(["auto", "stratified", "grouped", "stratified_grouped"]),
              default="auto", show_default=True,
              help="auto: stratified_grouped when subject/video ids exist, else stratified.")
@click.option("--group-by", type=click.Choice(["auto", "subject", "video", "subject+video"]), default="auto",
              show_default=True, help="Ids no split may share (auto: every id column the dataset has).")
@click.option("--fractions", default="train=0.8,val=0.1,test=0.1", show_default=True,
              help="Split names and fractions, e.g. train=0.8,val=0.2.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same split.")
@click.option("--kind", default="auto", show_default=True, help="Dataset kind.")
@click.option("--keep-split", "keep", multiple=True,
              help="An existing split to keep unchanged (e.g. --keep-split PrivateTest); the rest is re-split.")
@click.option("--images-dir", type=click.Path(path_type=Path),
              help="For datasets without image files (npz): where to write them as PNG (default <out>_images/).")
@click.option("-O", "--option", "options", multiple=True, metavar="KEY=VALUE", help="Loader option (repeatable).")
def split_command(dataset_path: Path, out_path: Path, method: str, group_by: str, fractions: str, seed: int,
                  kind: str, keep: tuple[str, ...], images_dir: Path | None, options: tuple[str, ...]) -> None:
    """Write a stratified and/or grouped train/val/test split as a manifest CSV (fixed seed).

    Grouped splits keep every subject/video in one split, which removes the identity leakage that
    makes random image-level splits of video frames or repeated photos look too good.
    """
    from affectlens.data.splits import group_ids, make_splits

    dataset = _load(dataset_path, kind, _parse_options(options))
    has_ids = dataset.subjects is not None or dataset.videos is not None
    if method == "auto":
        method = "stratified_grouped" if has_ids else "stratified"
    kept = np.zeros(len(dataset), bool)
    if keep:
        available = dataset.split_names()
        unknown = [k for k in keep if k not in available]
        if unknown:
            raise AffectlensError(f"dataset '{dataset.name}' has no split {', '.join(unknown)} to keep; "
                                  f"available: {', '.join(available) or 'none'}")
        kept = np.isin(dataset.splits, list(keep))  # type: ignore[arg-type]
    replaced = [n for n in dataset.split_names() if n not in keep]
    if replaced:
        click.echo(f"re-splitting the samples of {', '.join(replaced)} (keep a split as it is with --keep-split)")
    pool = np.flatnonzero(~kept)
    if not len(pool):
        raise AffectlensError("--keep-split keeps every sample; nothing is left to split")
    parts = make_splits(dataset.subset(pool), method, fractions, group_by, seed)
    clash = [name for name in parts if name in keep]
    if clash:
        raise AffectlensError(f"new split name(s) {', '.join(clash)} equal a kept split; rename them in --fractions")
    names = np.empty(len(dataset), dtype=object)
    if keep:
        names[kept] = dataset.splits[kept]  # type: ignore[index]
    for name, idx in parts.items():
        names[pool[idx]] = name
    from dataclasses import replace

    result = replace(dataset, splits=names.astype(str))
    paths = _manifest_paths(result, out_path, images_dir)
    from affectlens.data.manifest import write_manifest

    write_manifest(result, out_path, paths=paths)
    grouping = group_ids(dataset, group_by)[1] if method != "stratified" else None
    _echo_split_summary(result, out_path, method, grouping, seed, [*parts, *keep])


def _manifest_paths(dataset: EmotionDataset, out_path: Path, images_dir: Path | None) -> list[str]:
    """Image paths relative to the manifest; npz datasets get their images written as PNG first."""
    from affectlens.data.inspection import file_paths

    base = out_path.resolve().parent
    paths = file_paths(dataset)
    if paths is None:
        from PIL import Image
        from tqdm import tqdm

        folder = (images_dir or out_path.with_name(out_path.stem + "_images")).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        click.echo(f"'{dataset.name}' has no image files: writing its {len(dataset):,} images to {folder}")
        paths = []
        for i in tqdm(range(len(dataset)), desc="writing PNG", unit="img", leave=False):
            image = dataset.image(i)
            file = folder / f"{i:06d}.png"
            Image.fromarray(image[..., 0] if image.shape[2] == 1 else image).save(file)
            paths.append(str(file))
    return [os.path.relpath(Path(p).resolve(), base) for p in paths]


def _echo_split_summary(dataset: EmotionDataset, out_path: Path, method: str, grouping: str | None, seed: int,
                        names: list[str]) -> None:
    click.echo(f"wrote {out_path}: {len(dataset):,} rows, method {method}"
               + (f" (grouped by {grouping})" if grouping else "") + f", seed {seed}")
    header = ["split", "images", "share", *dataset.class_names]
    id_columns = [(k, v) for k, v in (("subjects", dataset.subjects), ("videos", dataset.videos)) if v is not None]
    header += [k for k, _ in id_columns]
    rows = []
    for name in names:
        mask = dataset.splits == name
        counts = np.bincount(dataset.labels[mask & (dataset.labels >= 0)], minlength=dataset.num_classes)
        row = [name, f"{int(mask.sum()):,}", f"{100 * mask.mean():.1f}%", *[f"{int(c):,}" for c in counts]]
        row += [f"{len(np.unique(np.asarray(v)[mask])):,}" for _, v in id_columns]
        rows.append(row)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        click.echo("  " + "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in
                                     enumerate(zip(r, widths, strict=True))))
    for kind, values in id_columns:
        ids = np.asarray(values).astype(str)
        shared = 0
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                shared += len((set(ids[dataset.splits == a]) & set(ids[dataset.splits == b])) - {""})
        click.echo(f"{kind}: {'none' if not shared else shared} shared between splits")
    train = next((n for n in names if "train" in n.lower()), names[0])
    val = next((n for n in names if n.lower().startswith("val")), None)
    test = next((n for n in names if "test" in n.lower()), None)
    hint = f"affectlens train --kind manifest --data {out_path} --set data.train_splits=[{train}]"
    hint += f" --set data.val_split={val}" if val else ""
    hint += f" --set data.test_split={test}" if test else ""
    if list(dataset.class_names) != sorted(dataset.class_names):
        hint += f" --set data.options.class_names=[{','.join(dataset.class_names)}]"
    click.echo(f"train on it: {hint}")
