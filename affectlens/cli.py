"""The ``affectlens`` command: predict, train, evaluate, inspect and more.

Errors the user can fix (:class:`AffectlensError`) print as one line and exit with status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from affectlens.errors import AffectlensError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="affectlens")
@click.option("-v", "--verbose", is_flag=True, help="Log more detail.")
def cli(verbose: bool) -> None:
    """Recognise emotions in faces, and train and evaluate emotion models on your own data."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")


# ---------------------------------------------------------------------------------------------- train
@cli.command(context_settings=CONTEXT)
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), help="YAML config (see configs/).")
@click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set optim.lr=0.01 (repeatable).")
@click.option("--resume", "resume_dir", type=click.Path(path_type=Path),
              help="Continue a killed or finished run from its last checkpoint.")
@click.option("--epochs", type=int, help="Total number of epochs (also extends a resumed run).")
@click.option("--model", "model_name", help="Architecture (see `affectlens models --all`).")
@click.option("--data", "data_path", help="Dataset path.")
@click.option("--kind", "data_kind", help="Dataset kind (fer2013, ferplus, folder, manifest, ckplus, ...).")
@click.option("--batch-size", type=int)
@click.option("--lr", type=float)
@click.option("--device", help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--pretrained", type=click.Path(path_type=Path), help="Backbone weights file (.pth/.safetensors).")
@click.option("--trainable-layers", type=int, help="With --pretrained: train only the head and the last N layers.")
@click.option("--output-dir", help="Folder that holds run folders (default runs/).")
@click.option("--run-name", help="Name of the run folder.")
def train(config_path, overrides, resume_dir, epochs, model_name, data_path, data_kind, batch_size, lr, device,
          pretrained, trainable_layers, output_dir, run_name) -> None:
    """Train a model; each run writes config, metrics, plots, checkpoints and weights to its own folder."""
    from affectlens.config_io import load_config
    from affectlens.training.config import TrainConfig
    from affectlens.training.loop import resume
    from affectlens.training.loop import train as run_training

    if resume_dir is not None:
        summary = resume(resume_dir, extra_epochs=epochs)
    else:
        flags = {"epochs": epochs, "model.name": model_name, "data.path": data_path, "data.kind": data_kind,
                 "batch_size": batch_size, "optim.lr": lr, "device": device,
                 "model.pretrained": str(pretrained) if pretrained else None,
                 "model.trainable_layers": trainable_layers, "output_dir": output_dir, "run_name": run_name}
        items = list(overrides) + [f"{k}={v}" for k, v in flags.items() if v is not None]
        cfg = load_config(TrainConfig, config_path, items)
        summary = run_training(cfg)
    click.echo(json.dumps(summary, indent=2))


@cli.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--lr", type=float, default=1e-4, show_default=True)
@click.option("--run-name", default="")
@click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE")
def finetune(run_dir, epochs, lr, run_name, overrides) -> None:
    """Continue a run's best weights on train + validation with cosine annealing at a small lr."""
    from affectlens.training.loop import finetune as run_finetune

    click.echo(json.dumps(run_finetune(run_dir, epochs, lr, run_name, list(overrides)), indent=2))


# ------------------------------------------------------------------------------------------- evaluate
@cli.command(context_settings=CONTEXT)
@click.option("-m", "--model", "model_spec", default="default", show_default=True,
              help="Shipped model name, run folder, or weights file.")
@click.option("--data", "data_path", help="Dataset path (default: the run's own dataset).")
@click.option("--kind", "data_kind", default="auto", show_default=True, help="Dataset kind.")
@click.option("--split", "split_name", help="Split to evaluate (default: the run's test split / all data).")
@click.option("--ten-crop", is_flag=True, help="Average ten crops per face (test-time augmentation).")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), help="Report folder.")
@click.option("--device", default="auto", show_default=True)
def evaluate(model_spec, data_path, data_kind, split_name, ten_crop, out_dir, device) -> None:
    """Accuracy, macro-F1, per-class metrics, confusion matrices, ROC curves: a JSON and Markdown report."""
    from affectlens.config_io import load_config
    from affectlens.data.registry import load_dataset
    from affectlens.evaluation import format_metrics_line
    from affectlens.evaluation.runner import evaluate_weights
    from affectlens.models.pretrained import resolve_model
    from affectlens.training.config import TrainConfig
    from affectlens.training.data_setup import load_configured
    from affectlens.training.loop import choose_device

    weights = resolve_model(model_spec)
    run_dir = Path(model_spec) if Path(model_spec).is_dir() else None
    if data_path is None:
        if run_dir is None or not (run_dir / "config.yaml").exists():
            raise AffectlensError("--data is required unless --model is a run folder")
        cfg = load_config(TrainConfig, run_dir / "config.yaml")
        dataset = load_configured(cfg.data)
        split_name = split_name or cfg.data.test_split
    else:
        dataset = load_dataset(data_kind, data_path)
    if split_name and dataset.splits is not None:
        dataset = dataset.select_splits(split_name)
    elif split_name:
        raise AffectlensError(f"dataset '{dataset.name}' has no splits; drop --split")
    out_dir = out_dir or Path("reports") / f"{Path(str(weights)).parent.name}-{dataset.name}-{split_name or 'all'}" \
        f"{'-tencrop' if ten_crop else ''}"
    metrics = evaluate_weights(weights, dataset, out_dir, ten_crop=ten_crop, device=choose_device(device))
    click.echo(format_metrics_line(metrics))
    click.echo(f"report: {out_dir / 'report.md'}")


# --------------------------------------------------------------------------------------------- models
@cli.command(context_settings=CONTEXT)
@click.option("--all", "show_all", is_flag=True, help="Also list every architecture that can be trained.")
def models(show_all: bool) -> None:
    """List the shipped models with their benchmark numbers."""
    from affectlens.models import list_models, model_info
    from affectlens.models.pretrained import list_pretrained

    shipped = list_pretrained()
    if not shipped:
        click.echo("no shipped models installed")
    for row in shipped:
        tags = row["aliases"]
        metrics = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                            for k, v in row["metrics"].items() if not isinstance(v, dict | list))
        click.echo(f"{row['name']}{' (' + ', '.join(tags) + ')' if tags else ''}: {row['architecture']}, "
                   f"{len(row['class_names'])} classes [{', '.join(row['class_names'])}], input "
                   f"{row['input_size']}px {'grey' if row['in_channels'] == 1 else 'RGB'}; {row['training_data']}")
        if metrics:
            click.echo(f"    {metrics}")
    if show_all:
        click.echo("\narchitectures:")
        for name in list_models():
            info = model_info(name)
            click.echo(f"  {name:18s} {info.get('summary', '')}")


def _register_commands() -> None:
    """Commands that live beside the code they drive (data doctor, inference)."""
    from affectlens.data.commands import inspect_command, split_command
    from affectlens.inference.commands import camera_command, export_command, predict_command

    for command in (predict_command, camera_command, export_command, inspect_command, split_command):
        cli.add_command(command)


_register_commands()


def main() -> None:
    """Console entry point: one-line errors for user mistakes."""
    try:
        cli.main(standalone_mode=False)
    except AffectlensError as exc:
        click.echo(f"affectlens: error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
