"""``affectlens train`` and ``affectlens finetune``: runs that write config, metrics, plots and weights.

Both run unchanged under ``torchrun --nproc-per-node N -m affectlens train ...`` (distributed
data-parallel training; see :mod:`affectlens.training.distributed`); rank 0 prints the summary.

``--arch`` names the architecture to build and ``--model`` the weights to start from (a shipped
name, run folder or file), as everywhere else.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from affectlens.cli.app import (
    AT_LEAST_ONE,
    COUNT,
    POSITIVE,
    arch_option,
    command,
    data_options,
    device_option,
    model_option,
    out_option,
    set_option,
)
from affectlens.errors import AffectlensError


def weights_items(model_spec: str) -> list[str]:
    """``--set`` items that start a run from the weights ``model_spec`` names (its architecture and options)."""
    from affectlens.runtime.card import read_card
    from affectlens.runtime.ensemble_card import is_ensemble_card
    from affectlens.runtime.pretrained import resolve_model

    weights = resolve_model(model_spec)
    if weights.suffix == ".onnx":
        raise AffectlensError(f"--model {model_spec}: training starts from .safetensors weights, not an ONNX graph")
    if is_ensemble_card(weights):
        raise AffectlensError(f"--model {model_spec}: training starts from one model's weights, not an ensemble; "
                              "to learn from an ensemble, give it as a distillation teacher")
    card = read_card(weights)
    items = [f"init_weights={weights}", f"model.name={card.architecture}", f"data.channels={card.in_channels}"]
    if card.model_options:
        items.append(f"model.options={json.dumps(card.model_options)}")
    return items


@command("train")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), help="YAML config (see configs/).")
@set_option("Override a config value, e.g. --set optim.lr=0.01 (repeatable; applied after the config file).")
@click.option("--resume", "resume_dir", type=click.Path(path_type=Path),
              help="Continue a killed or finished run from its last checkpoint.")
@click.option("--epochs", type=AT_LEAST_ONE, help="Total number of epochs (also extends a resumed run).")
@arch_option()
@model_option(default=None, help="Weights to start from: a shipped name, run folder or .safetensors file "
              "(the architecture follows them unless --arch is given).")
@data_options(kind_default=None)
@click.option("--batch-size", type=AT_LEAST_ONE)
@click.option("--lr", type=POSITIVE, help="Learning rate (> 0).")
@device_option(None, help="auto, cpu, cuda, cuda:N or mps (default: the config's, auto).")
@click.option("--pretrained", type=click.Path(path_type=Path),
              help="Backbone weights file (.pth/.safetensors) for the architecture, e.g. ImageNet.")
@click.option("--trainable-layers", type=COUNT, help="With --pretrained: train only the head and the last N layers.")
@out_option("Folder that holds run folders (default: the config's, runs/).")
@click.option("--run-name", help="Name of the run folder inside --out.")
def train_command(config_path: Path | None, overrides: tuple[str, ...], resume_dir: Path | None, epochs: int | None,
                  arch: str | None, model_spec: str | None, data_path: str | None, data_kind: str | None,
                  batch_size: int | None, lr: float | None, device: str | None, pretrained: Path | None,
                  trainable_layers: int | None, out: Path | None, run_name: str | None) -> None:
    """Train a model; each run writes config, metrics, plots, checkpoints and weights to its own folder."""
    from affectlens.config_io import load_config
    from affectlens.training.config import TrainConfig
    from affectlens.training.runs import resume
    from affectlens.training.runs import train as run_training
    from affectlens.utils.devices import check_torch_device

    if device is not None:
        device = check_torch_device(device)
    start: list[str] = []
    if model_spec is not None:
        try:
            start = weights_items(model_spec)
        except AffectlensError as exc:
            if Path(model_spec).exists():
                raise
            raise AffectlensError(f"{exc}; --model is weights to start from, an architecture is --arch "
                                  "(see `affectlens models --all`)") from None
    if arch is not None:
        from affectlens.models import model_info

        model_info(arch)  # an unknown architecture is one line now, not after the data is read
    flags = {"epochs": epochs, "model.name": arch, "data.path": data_path, "data.kind": data_kind,
             "batch_size": batch_size, "optim.lr": lr, "device": device,
             "model.pretrained": str(pretrained) if pretrained else None,
             "model.trainable_layers": trainable_layers, "output_dir": out, "run_name": run_name}
    items = [*start, *overrides, *(f"{k}={v}" for k, v in flags.items() if v is not None)]
    if resume_dir is not None:
        # --epochs extends the run and --device moves it; anything else would change the run under way
        settings = [*start, *overrides, *(f"{k}={v}" for k, v in flags.items()
                                         if v is not None and k not in ("epochs", "device"))]
        check_resume_settings(resume_dir, config_path, settings,
                              may_change=[key for key in ("epochs", "device") if flags[key] is not None])
        _report(resume(resume_dir, extra_epochs=epochs, device=device))
        return
    cfg = load_config(TrainConfig, config_path, items)
    _report(run_training(cfg))


def check_resume_settings(run_dir: Path, config_path: Path | None, items: list[str],
                          may_change: list[str] | tuple[str, ...] = ()) -> None:
    """``--resume`` continues a run with the config it saved; a config or options that say otherwise are refused.

    Why not apply them: a run whose learning rate, data or model changed half-way is neither the old
    run nor a new one, and its checkpoint may not even fit. Giving the run's own settings again (the
    same command line plus ``--resume``) is allowed.
    """
    from affectlens.config_io import load_config, to_dict
    from affectlens.training.config import TrainConfig

    if config_path is None and not items:
        return
    saved_path = run_dir / "config.yaml"
    if not saved_path.is_file():
        return  # resume() says it is not a run folder
    saved = _flat(to_dict(load_config(TrainConfig, saved_path)))
    # options alone change the saved config; a config file replaces it
    asked = _flat(to_dict(load_config(TrainConfig, config_path or saved_path, items)))
    differ = [key for key in dict.fromkeys([*saved, *asked])
              if key not in may_change and saved.get(key) != asked.get(key)]
    if not differ:
        return
    given = [part for part in (f"-c {config_path}" if config_path else "", "the options given" if items else "")
             if part]
    shown = "; ".join(f"{key}: {asked.get(key)!r}, the run's {saved.get(key)!r}" for key in differ[:3])
    more = f" (and {len(differ) - 3} more)" if len(differ) > 3 else ""
    verb = "differ" if len(given) > 1 else "differs"
    raise AffectlensError(f"--resume {run_dir} continues the run with its saved config ({saved_path}), but "
                          f"{' and '.join(given)} {verb} from it in {shown}{more}; leave them out to resume "
                          "(--epochs and --device may change), or start a new run")


def _flat(config: dict, prefix: str = "") -> dict[str, object]:
    """``{"optim": {"lr": 0.1}}`` as ``{"optim.lr": 0.1}``."""
    flat: dict[str, object] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value and key != "options":
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _report(summary: dict) -> None:
    """The run's summary as JSON, printed once: by rank 0 when torchrun started several processes."""
    from affectlens.training.distributed import launch_rank

    if launch_rank() == 0:
        click.echo(json.dumps(summary, indent=2))


@command("finetune")
@click.argument("run_dir", required=False, type=click.Path(path_type=Path))
@model_option(default=None, help="The run folder to fine-tune (or give it as RUN_DIR).")
@click.option("--epochs", type=AT_LEAST_ONE, default=10, show_default=True)
@click.option("--lr", type=POSITIVE, default=1e-4, show_default=True, help="Learning rate (> 0).")
@click.option("--run-name", default="", help="Name of the new run folder (default: <run>-finetune).")
@set_option("Override a value of the run's config (repeatable).")
def finetune_command(run_dir: Path | None, model_spec: str | None, epochs: int, lr: float, run_name: str,
                     overrides: tuple[str, ...]) -> None:
    """Continue a run's best weights on train + validation with cosine annealing at a small lr."""
    from affectlens.training.runs import finetune as run_finetune

    if run_dir is not None and model_spec is not None and Path(model_spec) != run_dir:
        raise click.UsageError(f"RUN_DIR {run_dir} and --model {model_spec} differ; give the run once")
    source = run_dir if run_dir is not None else model_spec
    if source is None:
        raise click.UsageError("give the run folder to fine-tune: RUN_DIR or --model RUN_DIR")
    _report(run_finetune(source, epochs, lr, run_name, list(overrides)))
