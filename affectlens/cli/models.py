"""``affectlens models``: the shipped models as a table a person reads (or JSON for a script).

Where the rows come from (:func:`shipped_rows`) is kept apart from how they are shown
(:func:`pretrained_table`), so the source of the rows can change without touching the layout.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import click

from affectlens.cli.app import CONTEXT, exist_ok_option, format_table, out_option
from affectlens.errors import AffectlensError

#: the accuracy numbers worth a column: (header, metric key in the table, explanation for the footnote)
KEY_METRICS = (
    ("FER2013", "PrivateTest_accuracy", "FER2013 PrivateTest accuracy (one centre crop)"),
    ("10-crop", "PrivateTest_tencrop_accuracy", "the same with ten-crop averaging"),
    ("F1", "PrivateTest_macro_f1", "FER2013 PrivateTest macro-F1 (centre crop)"),
    ("FER+", "ferplus_PrivateTest_accuracy", "FER+ PrivateTest majority-vote accuracy"),
    ("CK+", "ckplus_cross_dataset_accuracy", "accuracy on CK+, a dataset not seen in training"),
)


def shipped_rows() -> list[dict[str, Any]]:
    """One plain-JSON row per shipped model (name, aliases, architecture, classes, input, metrics, files)."""
    from affectlens.runtime.pretrained import list_pretrained

    return list_pretrained()


def architecture_rows() -> list[dict[str, Any]]:
    """One row per trainable architecture of the registry (needs the train extra: it imports torch)."""
    try:
        from affectlens.models import list_models, model_info

        return [model_info(name) for name in list_models()]
    except ImportError as exc:
        raise AffectlensError(f"listing architectures needs PyTorch: pip install 'affectlens[train]' ({exc})") \
            from None


def _params(count: Any) -> str:
    if not isinstance(count, int | float):
        return "-"
    return f"{count / 1e6:.2f}M" if count < 1e6 else f"{count / 1e6:.1f}M"


def _percent(value: Any) -> str:
    return f"{100 * value:.1f}" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def _ece(scores: dict[str, Any]) -> str:
    """The calibrated test-split ECE (``PrivateTest_ece`` or ``<data>_PrivateTest_ece``), or ``-``."""
    values = [v for k, v in scores.items() if k.endswith("PrivateTest_ece")]
    return f"{values[0]:.3f}" if values else "-"


def pretrained_table(rows: list[dict[str, Any]]) -> list[str]:
    """The rows as aligned lines: identity, input, size, then the key accuracies (in %) any row has."""
    metrics = [(header, key, why) for header, key, why in KEY_METRICS
               if any(key in row.get("metrics", {}) for row in rows)]
    header = ["model", "aliases", "architecture", "classes", "input", "params", *(h for h, _, _ in metrics), "ECE"]
    body = []
    for row in rows:
        scores = row.get("metrics", {})
        grey = row.get("in_channels") == 1
        body.append([
            row["name"], ",".join(row.get("aliases", [])) or "-", row.get("architecture", "-"),
            str(len(row.get("class_names", []))), f"{row.get('input_size', '?')}px {'grey' if grey else 'RGB'}",
            _params(scores.get("params")), *(_percent(scores.get(key)) for _, key, _ in metrics), _ece(scores),
        ])
    lines = format_table(header, body, right={3, 5, *range(6, 7 + len(metrics))})
    ensembles = [row for row in rows if row.get("members")]
    if ensembles:
        lines.append("")
        lines += [f"{row['name']}: {row.get('combination', 'mean of member probabilities')}, "
                  + " + ".join(f"{weight:.2f} x {member}" for member, weight
                               in zip(row["members"], row.get("member_weights", []), strict=False))
                  + " (params: the members' sum)" for row in ensembles]
    mirrored = [row["name"] for row in rows if row.get("mirror")]
    if mirrored:
        lines += ["", f"{', '.join(mirrored)}: each face averaged with its mirror image (twice the work per face)"]
    if metrics:
        note = ("in %: " + "; ".join(f"{h}: {why}" for h, _, why in metrics) + ". ECE: expected calibration error "
                "(15 bins) on the test split of the model's own data, with its card's calibration (lower: its "
                "percentages mean more).")
        lines += ["", *textwrap.wrap(note, 100, break_on_hyphens=False)]
    return lines


def architecture_table(rows: list[dict[str, Any]]) -> list[str]:
    """Architectures as aligned lines: name, default input size, one-line summary."""
    body = [[row["name"], f"{row['default_input_size']}px" if row.get("default_input_size") else "-",
             row.get("summary", "")] for row in rows]
    return format_table(["architecture", "input", "summary"], body, right={1})


@click.group("models", context_settings=dict(CONTEXT), invoke_without_command=True)
@click.option("--all", "show_all", is_flag=True, help="Also list every architecture that can be trained (--arch).")
@click.option("--json", "as_json", is_flag=True,
              help='Print JSON instead: {"pretrained": [rows], "architectures": [...] with --all}.')
@click.pass_context
def models_command(ctx: click.Context, show_all: bool, as_json: bool) -> None:
    """List the shipped models (use their name or alias as --model) with their measured accuracy;
    `affectlens models ensemble` combines models into one."""
    if ctx.invoked_subcommand is not None:
        return
    rows = shipped_rows()
    architectures = architecture_rows() if show_all else None
    if as_json:
        payload: dict[str, Any] = {"pretrained": rows}
        if architectures is not None:
            payload["architectures"] = architectures
        click.echo(json.dumps(payload, indent=2))
        return
    if rows:
        click.echo("\n".join(pretrained_table(rows)))
    else:
        click.echo("no shipped models installed")
    if architectures is not None:
        click.echo("")
        click.echo("\n".join(architecture_table(architectures)))


@models_command.command("ensemble", context_settings=dict(CONTEXT))
@click.argument("members", nargs=-1, required=True, metavar="MODEL MODEL...")
@click.option("-w", "--weight", "weights", type=click.FloatRange(min=0.0), multiple=True,
              help="One weight per member, in order (repeatable; default: equal weights).")
@click.option("--mirror", is_flag=True, help="Every member also classifies the mirror image of each face.")
@click.option("--description", default="", help="The card's description (default: the combination in words).")
@out_option("The ensemble card to write (.json); give it to any command as --model.", required=True)
@exist_ok_option
def ensemble_command(members: tuple[str, ...], weights: tuple[float, ...], mirror: bool, description: str,
                     out: Path, exist_ok: bool) -> None:
    """Combine shipped models, run folders or weights files into one ensemble (a card naming its members:
    the weighted mean of their probabilities), checked like a shipped ensemble before it is written."""
    from affectlens.runtime.ensemble_card import write_ensemble_card

    path = out.with_suffix(".json")
    if path.exists() and not exist_ok:
        raise AffectlensError(f"{path}: already exists; pass --exist-ok to replace it")
    written = write_ensemble_card(list(members), list(weights) or None, path, description, mirror)
    click.echo(f"wrote {written}: {len(members)} members; use it as --model {written}")
