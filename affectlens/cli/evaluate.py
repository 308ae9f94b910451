"""``affectlens evaluate``: accuracy, macro-F1, per-class metrics and plots of a model on a dataset."""

from __future__ import annotations

import json
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

#: ``--kind`` of a class-per-folder tree of whole photos, scored through the whole pipeline
PHOTOS = "photos"


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
@click.option("--fit-calibration", "--fit-temperature", "fit_temperature", is_flag=True,
              help="Fit the calibration of the model's confidence on this split (a validation split, never the "
                   "test split): a temperature, then a top-label confidence map if it lowers the cross-validated "
                   "ECE. The report is of the raw probabilities, plus calibration.json.")
@click.option("--write-card", is_flag=True,
              help="With --fit-temperature: store the fitted calibration in the model's card, so predict, serve "
                   "and the Python API answer with it.")
@out_option("Report folder (default: reports/<model>-<dataset>-<split>).")
@exist_ok_option
@device_option("auto")
def evaluate_command(model_spec: str, data_path: str | None, data_kind: str, split_name: str | None,
                     overrides: tuple[str, ...], ten_crop: bool, mirror: bool | None, prior_correction: float,
                     plot_videos: tuple[str, ...], fit_temperature: bool, write_card: bool, out: Path | None,
                     exist_ok: bool, device: str) -> None:
    """Accuracy, macro-F1, per-class metrics, confusion matrices, ROC curves: a JSON and Markdown report.

    --kind photos: a class-per-folder tree of whole photos, scored as `predict` answers (face
    detection, alignment, classification; the largest face per photo), with the photos where no
    face was found counted and reported.

    Valence/arousal models: CCC, MSE and Pearson r per dimension over every video, per-frame
    predictions and timelines of predicted vs annotated values (any dataset with valence/arousal:
    the run's own test split, or another dataset for a cross-dataset test)."""
    from affectlens.data.resolve import is_run_folder, refuse_output_in_dataset, resolve_evaluation_data, run_data
    from affectlens.evaluation import format_metrics_line
    from affectlens.evaluation.calibration import fit_from_report
    from affectlens.evaluation.runner import evaluate_weights
    from affectlens.runtime.card import read_card
    from affectlens.runtime.card import write_card as write_card_file
    from affectlens.runtime.pretrained import resolve_model
    from affectlens.runtime.prior import model_prior_weights
    from affectlens.training.loop import choose_device
    from affectlens.utils.assignments import parse_assignments
    from affectlens.utils.devices import check_torch_device
    from affectlens.utils.outputs import prepare_output_dir, staged_dir

    if write_card and not fit_temperature:
        raise click.UsageError("--write-card stores a fitted temperature: add --fit-temperature")
    if fit_temperature and prior_correction:
        raise click.UsageError("--fit-temperature fits on the probabilities as trained; drop --prior-correction")
    torch_device = choose_device(check_torch_device(device))
    weights = resolve_model(model_spec)
    if write_card:
        refuse_shipped_card(weights)
    model_prior_weights(weights, prior_correction)  # a card without a class prior fails before any data is read
    # the dataset's folder, where no report may go (its charts would be read back as images)
    source = data_path if data_path is not None else run_data(model_spec).path if is_run_folder(model_spec) else None
    if out is not None:  # before any data is read: a refused output costs nothing
        if source is not None:
            refuse_output_in_dataset(out, source)
        out = prepare_output_dir(out, exist_ok=exist_ok)
    if data_kind == PHOTOS:
        _evaluate_photos(weights, data_path, split_name, ten_crop, fit_temperature, prior_correction, mirror, out,
                         source, exist_ok)
        return
    resolved = resolve_evaluation_data(model_spec, data_path, data_kind, split_name, parse_assignments(overrides))
    if out is None:
        tencrop = "-tencrop" if ten_crop else ""
        prior = f"-prior{prior_correction:g}" if prior_correction else ""
        views = {True: "-mirror", False: "-nomirror", None: ""}[mirror]
        name = f"{weights.parent.name}-{resolved.dataset.name}-{resolved.split or 'all'}{tencrop}{views}{prior}"
        if source is not None:  # run from inside the dataset folder
            refuse_output_in_dataset(Path("reports") / name, source)
        out = prepare_output_dir(Path("reports") / name, exist_ok=exist_ok)
    with staged_dir(out) as stage:  # the report appears whole or not at all (--exist-ok replaces it whole)
        metrics = evaluate_weights(weights, resolved.dataset, stage, ten_crop=ten_crop, device=torch_device,
                                   videos=list(plot_videos) or None, prior_correction=prior_correction,
                                   mirror=mirror, calibrate=not fit_temperature)
        if fit_temperature:
            record = fit_from_report(stage, f"{resolved.dataset.name} {resolved.split or 'all'}")
            (stage / "calibration.json").write_text(json.dumps(record, indent=2) + "\n")
    click.echo(format_metrics_line(metrics))
    if fit_temperature:
        fitted = record["fitted_temperature"]
        kept = "" if record["temperature"] != 1.0 else f" (fitted {fitted:g} raised the ECE: kept 1)"
        click.echo(f"temperature {record['temperature']:g}{kept} fitted on {record['samples']} faces: ECE "
                   f"{record['ece_before']:.4f} -> {record['ece_after']:.4f}, log-loss {record['nll_before']:.4f} -> "
                   f"{record['nll_after']:.4f}")
        if "confidence_map_candidates" in record:
            scores = "; ".join(f"{method} {score['cv_ece']:.4f} (log-loss {score['cv_nll']:.4f})"
                               for method, score in record["confidence_map_candidates"].items())
            base = record["temperature_only"]
            chosen = (f"adopted the {record['confidence_map']['method']} one" if "confidence_map" in record
                      else "none adopted")
            click.echo(f"top-label confidence maps, cross-validated ECE against {base['ece']:.4f} (log-loss "
                       f"{base['nll']:.4f}) without: {scores}; {chosen}")
        if write_card:
            card = read_card(weights)
            card.calibration = record
            click.echo(f"written into {write_card_file(card, weights)}")
    click.echo(f"report: {out / 'report.md'}")


def _evaluate_photos(weights: Path, data_path: str | None, split_name: str | None, ten_crop: bool,
                     fit_temperature: bool, prior_correction: float, mirror: bool | None, out: Path | None,
                     source: str | Path | None, exist_ok: bool) -> None:
    """``--kind photos``: whole images through detector + alignment + classifier, as ``predict`` answers."""
    from affectlens.evaluation import format_metrics_line
    from affectlens.inference.photo_evaluation import evaluate_photos
    from affectlens.utils.outputs import prepare_output_dir, staged_dir

    if data_path is None:
        raise click.UsageError("--kind photos scores a class-per-folder tree of photos: give it with --data")
    for flag, given in (("--split", split_name), ("--ten-crop", ten_crop), ("--fit-temperature", fit_temperature)):
        if given:
            raise click.UsageError(f"{flag} does not apply to --kind photos (whole photos, one answer each)")
    if out is None:
        name = f"{weights.parent.name}-{Path(data_path).name}-photos"
        if source is not None:
            from affectlens.data.resolve import refuse_output_in_dataset

            refuse_output_in_dataset(Path("reports") / name, source)
        out = prepare_output_dir(Path("reports") / name, exist_ok=exist_ok)
    with staged_dir(out) as stage:
        metrics = evaluate_photos(weights, data_path, stage, prior_correction=prior_correction, mirror=mirror)
    pipeline = metrics["pipeline"]
    click.echo(f"{format_metrics_line(metrics)} (on the {pipeline['faces_found']} images whose face was found)")
    click.echo(f"end to end: accuracy {pipeline['end_to_end_accuracy']:.4f} over {pipeline['images']} images, "
               f"no face found in {pipeline['faces_missed']}")
    click.echo(f"report: {out / 'report.md'}")


def refuse_shipped_card(weights: Path) -> None:
    """A shipped model's card is part of the package (its checksum is in the table): not for --write-card."""
    from affectlens.runtime.pretrained import TABLE_FILE

    if weights.resolve().parent == TABLE_FILE.resolve().parent:
        raise click.UsageError(f"--write-card: {weights.name} is a shipped model; calibrate a copy or a run folder "
                               "(maintainers: tools/ship_model.py --calibrate)")
