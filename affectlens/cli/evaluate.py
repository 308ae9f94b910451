"""``affectlens evaluate``: accuracy, macro-F1, per-class metrics and plots of a model on a dataset."""

from __future__ import annotations

from pathlib import Path

import click

from affectlens.cli.app import (
    UNIT_INTERVAL,
    command,
    data_options,
    device_option,
    exist_ok_option,
    model_option,
    out_option,
    set_option,
)


@command("evaluate")
@model_option()
@data_options(data_help="Dataset path (default: the run's own dataset when --model is a run folder).")
@click.option("--split", "split_name", help="Split to evaluate (default: the run's test split / all data).")
@set_option("Dataset loader option, e.g. --set class_names=[a,b] (repeatable).")
@click.option("--ten-crop", is_flag=True, help="Average ten crops per face (test-time augmentation).")
@click.option("--mirror/--no-mirror", default=None,
              help="Average each face with its mirror image, or not (default: as the model card says).")
@click.option("--prior-correction", type=UNIT_INTERVAL, default=0.0, show_default=True,
              help="Score with the training class frequencies divided out of the probabilities, 0 (as "
                   "trained) to 1 (as if every emotion were equally common); see predict --prior-correction.")
@click.option("--plot-video", "plot_videos", multiple=True, metavar="VIDEO",
              help="Valence/arousal models: draw predicted vs annotated values over time for this video id "
                   "(repeatable; default: the first 3 videos).")
@out_option("Report folder (default: reports/<model>-<dataset>-<split>).")
@exist_ok_option
@device_option("auto")
def evaluate_command(model_spec: str, data_path: str | None, data_kind: str, split_name: str | None,
                     overrides: tuple[str, ...], ten_crop: bool, mirror: bool | None, prior_correction: float,
                     plot_videos: tuple[str, ...], out: Path | None, exist_ok: bool, device: str) -> None:
    """Accuracy, macro-F1, per-class metrics, confusion matrices, ROC curves: a JSON and Markdown report.

    Valence/arousal models: CCC, MSE and Pearson r per dimension over every video, per-frame
    predictions and timelines of predicted vs annotated values (any dataset with valence/arousal:
    the run's own test split, or another dataset for a cross-dataset test)."""
    from affectlens.data.resolve import resolve_evaluation_data
    from affectlens.evaluation import format_metrics_line
    from affectlens.evaluation.runner import evaluate_weights
    from affectlens.models.prediction.prior import model_prior_weights
    from affectlens.models.pretrained import resolve_model
    from affectlens.training.loop import choose_device
    from affectlens.utils.assignments import parse_assignments
    from affectlens.utils.devices import check_torch_device
    from affectlens.utils.outputs import prepare_output_dir, staged_dir

    torch_device = choose_device(check_torch_device(device))
    weights = resolve_model(model_spec)
    model_prior_weights(weights, prior_correction)  # a card without a class prior fails before any data is read
    if out is not None:  # before any data is read: a refused output costs nothing
        out = prepare_output_dir(out, exist_ok=exist_ok)
    resolved = resolve_evaluation_data(model_spec, data_path, data_kind, split_name, parse_assignments(overrides))
    if out is None:
        tencrop = "-tencrop" if ten_crop else ""
        prior = f"-prior{prior_correction:g}" if prior_correction else ""
        views = {True: "-mirror", False: "-nomirror", None: ""}[mirror]
        name = f"{weights.parent.name}-{resolved.dataset.name}-{resolved.split or 'all'}{tencrop}{views}{prior}"
        out = prepare_output_dir(Path("reports") / name, exist_ok=exist_ok)
    with staged_dir(out) as stage:  # the report appears whole or not at all (--exist-ok replaces it whole)
        metrics = evaluate_weights(weights, resolved.dataset, stage, ten_crop=ten_crop, device=torch_device,
                                   videos=list(plot_videos) or None, prior_correction=prior_correction,
                                   mirror=mirror)
    click.echo(format_metrics_line(metrics))
    click.echo(f"report: {out / 'report.md'}")
