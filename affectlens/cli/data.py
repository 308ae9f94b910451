"""``affectlens inspect`` (why validation lags training) and ``affectlens split`` (a leak-free split).

``inspect`` answers "why is validation so much worse than training?" with evidence (class mix,
subjects/videos per class, leakage, duplicates, unusable images) in a Markdown + JSON report;
``split`` then writes a stratified and/or grouped split as a manifest CSV that ``train`` reads.
Both name the dataset as every command does (``--data``/``--kind``, or the path as an argument)
and take loader options as ``--set KEY=VALUE``.
"""

from __future__ import annotations

from pathlib import Path

import click

from affectlens.cli.app import (
    CHANNELS,
    COUNT,
    IMAGE_SIZE,
    command,
    data_options,
    exist_ok_option,
    format_table,
    out_option,
    set_option,
)
from affectlens.data.duplicates import NEAR_THRESHOLD

SEVERITY_TAG = {"high": "HIGH  ", "medium": "MEDIUM", "info": "info  "}
LOADER_OPTION_HELP = ("Dataset loader option, e.g. --set frames_dir=/data/cropped_aligned or "
                      "--set class_names=[a,b] (repeatable).")


def dataset_argument(func):
    """``DATASET`` as an argument, or ``--data``/``--kind`` as in every other command."""
    func = data_options()(func)
    return click.argument("dataset_path", required=False, metavar="[DATASET]", type=click.Path(path_type=Path))(func)


def chosen_dataset(dataset_path: Path | None, data_path: str | None) -> Path:
    """The dataset named by the argument or ``--data`` (the same one if both are given)."""
    if dataset_path is not None and data_path is not None and Path(data_path) != dataset_path:
        raise click.UsageError(f"DATASET {dataset_path} and --data {data_path} differ; name the dataset once")
    if dataset_path is None and data_path is None:
        raise click.UsageError("name the dataset: DATASET or --data PATH")
    return dataset_path if dataset_path is not None else Path(data_path)  # type: ignore[arg-type]


@command("inspect")
@dataset_argument
@out_option("Report folder (default: reports/inspect-<dataset name>).")
@exist_ok_option
@click.option("--near-threshold", type=click.IntRange(0, 32), default=NEAR_THRESHOLD, show_default=True,
              help="Largest perceptual-hash distance (bits of 64) between near-duplicates.")
@click.option("--no-near", is_flag=True, help="Skip the near-duplicate search (exact duplicates are always found).")
@click.option("--image-size", type=IMAGE_SIZE, help="Side images are resized to (loaders that resize; "
              "default theirs).")
@click.option("--channels", type=CHANNELS, help="1 (grey) or 3 (RGB), for loaders that convert.")
@set_option(LOADER_OPTION_HELP)
def inspect_command(dataset_path: Path | None, data_path: str | None, data_kind: str, out: Path | None,
                    exist_ok: bool, near_threshold: int, no_near: bool, image_size: int | None, channels: int | None,
                    overrides: tuple[str, ...]) -> None:
    """Find why validation lags training: class mix, subjects/videos per class, leakage, duplicates.

    Writes report.md (findings first, then tables), report.json, duplicates.csv and PNG charts.
    """
    from affectlens.data.doctor import inspect_dataset, write_inspection_report
    from affectlens.data.resolve import load_requested, refuse_output_in_dataset
    from affectlens.utils.assignments import parse_assignments
    from affectlens.utils.outputs import prepare_output_dir, staged_dir

    path = chosen_dataset(dataset_path, data_path)
    options = parse_assignments(overrides)
    if out is not None:  # before the dataset is read: a refused output costs nothing
        refuse_output_in_dataset(out, path)
        out = prepare_output_dir(out, exist_ok=exist_ok, inputs=[path])
    dataset = load_requested(path, data_kind, options, image_size=image_size, channels=channels)
    if out is None:
        default = Path("reports") / f"inspect-{dataset.name}"
        refuse_output_in_dataset(default, path)  # run from inside the dataset folder
        out = prepare_output_dir(default, exist_ok=exist_ok, inputs=[path])
    result = inspect_dataset(dataset, near_duplicates=not no_near, near_threshold=near_threshold)
    with staged_dir(out) as stage:  # the report appears whole or not at all (--exist-ok replaces it whole)
        written = {k: out / p.name for k, p in write_inspection_report(result, stage, dataset).items()}
    click.echo(dataset.describe())
    warnings = result["warnings"]
    counts = {s: sum(w["severity"] == s for w in warnings) for s in ("high", "medium", "info")}
    click.echo(f"{len(warnings)} findings ({counts['high']} high, {counts['medium']} medium, {counts['info']} info)"
               + (":" if warnings else "."))
    for w in warnings:
        click.echo(f"  {SEVERITY_TAG[w['severity']]} {w['message']}")
    click.echo(f"report: {written['markdown']} (also {written['json'].name}, {written['duplicates_csv'].name}, "
               "PNG charts)")


@command("split")
@dataset_argument
@out_option("Manifest CSV to write (path,label,...,split).", required=True)
@exist_ok_option
@click.option("--method", type=click.Choice(["auto", "stratified", "grouped", "stratified_grouped"]),
              default="auto", show_default=True,
              help="auto: stratified_grouped when subject/video ids exist, else stratified.")
@click.option("--group-by", type=click.Choice(["auto", "subject", "video", "subject+video"]), default="auto",
              show_default=True, help="Ids no split may share (auto: every id column the dataset has).")
@click.option("--fractions", default="train=0.8,val=0.1,test=0.1", show_default=True,
              help="Split names and fractions, e.g. train=0.8,val=0.2.")
@click.option("--seed", type=COUNT, default=0, show_default=True, help="Same seed, same split.")
@click.option("--keep-split", "keep", multiple=True,
              help="An existing split to keep unchanged (e.g. --keep-split PrivateTest); the rest is re-split.")
@click.option("--images-dir", type=click.Path(path_type=Path),
              help="For datasets without image files (npz): where to write them as PNG (default <out>_images/).")
@set_option(LOADER_OPTION_HELP)
def split_command(dataset_path: Path | None, data_path: str | None, data_kind: str, out: Path,
                  exist_ok: bool, method: str, group_by: str, fractions: str, seed: int, keep: tuple[str, ...],
                  images_dir: Path | None, overrides: tuple[str, ...]) -> None:
    """Write a stratified and/or grouped train/val/test split as a manifest CSV (fixed seed).

    Grouped splits keep every subject/video in one split, which removes the identity leakage that
    makes random image-level splits of video frames or repeated photos look too good.
    """
    from affectlens.data.manifest import write_manifest
    from affectlens.data.resolve import load_requested
    from affectlens.data.resplit import manifest_image_paths, needs_image_files, resplit, shared_ids, split_counts
    from affectlens.utils.assignments import parse_assignments
    from affectlens.utils.outputs import prepare_output_dir, prepare_output_file

    path = chosen_dataset(dataset_path, data_path)
    out = prepare_output_file(out, exist_ok=exist_ok, inputs=[path])
    dataset = load_requested(path, data_kind, parse_assignments(overrides))
    images = images_dir or out.with_name(out.stem + "_images")
    if needs_image_files(dataset):
        images = prepare_output_dir(images, exist_ok=exist_ok, inputs=[path], option="--images-dir")
    made = resplit(dataset, method, fractions, group_by, seed, keep)
    if made.replaced:
        click.echo(f"re-splitting the samples of {', '.join(made.replaced)} (keep a split as it is with --keep-split)")
    if needs_image_files(dataset):
        click.echo(f"'{dataset.name}' has no image files: writing its {len(dataset):,} images to {images.resolve()}")
    write_manifest(made.dataset, out, paths=manifest_image_paths(made.dataset, out, images))
    click.echo(f"wrote {out}: {len(made.dataset):,} rows, method {made.method}"
               + (f" (grouped by {made.grouping})" if made.grouping else "") + f", seed {seed}")
    header, rows = split_counts(made.dataset, made.names)
    click.echo("\n".join(format_table(header, rows, right=set(range(1, len(header))), indent="  ")))
    for kind, shared in shared_ids(made.dataset, made.names).items():
        click.echo(f"{kind}: {'none' if not shared else shared} shared between splits")
    click.echo(f"train on it: {train_hint(made.dataset.class_names, out, made.names)}")


def train_hint(class_names: list[str], manifest: Path, names: list[str]) -> str:
    """The ``affectlens train`` command line that trains on the manifest just written."""
    train = next((n for n in names if "train" in n.lower()), names[0])
    val = next((n for n in names if n.lower().startswith("val")), None)
    test = next((n for n in names if "test" in n.lower()), None)
    hint = f"affectlens train --kind manifest --data {manifest} --set data.train_splits=[{train}]"
    hint += f" --set data.val_split={val}" if val else ""
    hint += f" --set data.test_split={test}" if test else ""
    if list(class_names) != sorted(class_names):
        hint += f" --set data.options.class_names=[{','.join(class_names)}]"
    return hint
