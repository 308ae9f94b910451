"""``affectlens export``: a model's ONNX graph and its JSON card, for ONNX Runtime anywhere."""

from __future__ import annotations

from pathlib import Path

import click

from affectlens.cli.app import command, exist_ok_option, model_option, out_option

#: a plausible ONNX opset: torch's exporter starts at 7; the upper bound turns a typo (170) into a usage error
OPSETS = click.IntRange(7, 25)


@command("export")
@model_option(help="Weights: a shipped name, run folder, or .safetensors file.")
@out_option("ONNX file to write (default: <model name>.onnx here); the .json sidecar goes beside it.")
@exist_ok_option
@click.option("--opset", type=OPSETS, default=17, show_default=True, help="ONNX opset version.")
@click.option("--no-check", is_flag=True, help="Skip comparing ONNX Runtime with PyTorch on random input.")
def export_command(model_spec: str, out: Path | None, exist_ok: bool, opset: int, no_check: bool) -> None:
    """Export a model to ONNX (dynamic batch) with its JSON model card."""
    from affectlens.inference.export import export_onnx
    from affectlens.runtime.card import sidecar_path
    from affectlens.runtime.pretrained import resolve_model
    from affectlens.utils.outputs import prepare_output_file

    weights = resolve_model(model_spec)
    if out is None:
        stem = f"{weights.parent.name}-{weights.stem}" if weights.stem in ("best", "last") else weights.stem
        out = Path(f"{stem}.onnx")
    out = out.with_suffix(".onnx")  # the exporter writes .onnx; check the file it will write
    inputs = [weights, sidecar_path(weights)]
    prepare_output_file(out, exist_ok=exist_ok, inputs=inputs)
    prepare_output_file(sidecar_path(out), exist_ok=exist_ok, inputs=inputs)
    summary = export_onnx(weights, out, opset=opset, check=not no_check)
    line = f"wrote {summary['onnx']} ({summary['bytes'] / 1e6:.1f} MB) and {summary['sidecar']}"
    if summary["max_abs_diff"] is not None:
        line += f"; max |onnx - torch| probability difference {summary['max_abs_diff']:.2e}"
    click.echo(line)
