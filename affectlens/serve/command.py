"""``affectlens serve``: the web page, REST API and live camera on one uvicorn server.

A click command of its own, registered by the CLI package (``cli.add_command(serve_command)``),
so the web app's options live next to the code they configure.
"""

from __future__ import annotations

import click

from affectlens.errors import AffectlensError
from affectlens.inference.options import DEFAULTS

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.command("serve", context_settings=CONTEXT)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; loopback by default (the API has no authentication).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("-m", "--model", "model_spec", default=DEFAULTS.model, show_default=True,
              help="The default model: a shipped name, run folder or .safetensors/.onnx file.")
@click.option("--extra-model", "extra_models", multiple=True, metavar="NAME",
              help="Also offer this model (repeatable; default: the shipped 'default' and 'fast').")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Server processes, each with its own copy of the models.")
@click.option("--concurrency", type=click.IntRange(1, 1024), default=2, show_default=True,
              help="Inferences at once per process; more requests wait for a slot.")
@click.option("--max-upload-mb", type=click.FloatRange(0.001, 100_000), default=50.0, show_default=True,
              help="Largest photo or video upload.")
@click.option("--max-pixels", type=click.IntRange(1, 10**10), default=50_000_000, show_default=True,
              help="Largest decoded image or video frame (guards against decompression bombs).")
@click.option("--max-video-frames", type=click.IntRange(min=1), default=9000, show_default=True,
              help="Most frames one video request may analyse.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0.001, 86_400), default=120.0, show_default=True,
              help="Per-request time limit in seconds (503 when no slot frees up, 504 when work runs past it).")
@click.option("--detector", default=DEFAULTS.detector, show_default=True, help="Face detector: centerface, haar.")
@click.option("--prior-correction", type=click.FloatRange(0.0, 1.0), default=DEFAULTS.prior_correction,
              show_default=True,
              help="Every model answers with its training class frequencies divided out, 0 (as trained) to 1 "
                   "(as if every emotion were equally common); see predict --prior-correction.")
def serve_command(host, port, model_spec, extra_models, workers, concurrency, max_upload_mb, max_pixels,
                  max_video_frames, timeout_s, detector, prior_correction) -> None:
    """Serve the web page (photo, video, live camera) and the REST API; docs at /docs."""
    try:
        from affectlens.serve.app import run_server
        from affectlens.serve.limits import ServeLimits
    except ImportError as exc:
        raise AffectlensError(f"the web app needs the serve extra: pip install 'affectlens[serve]' ({exc})") from None

    limits = ServeLimits(max_upload_mb=max_upload_mb, max_pixels=max_pixels, max_video_frames=max_video_frames,
                         timeout_s=timeout_s, concurrency=concurrency)
    run_server(host=host, port=port, model=model_spec, workers=workers, detector=detector, limits=limits,
               extra_models=list(extra_models) or None,
               recognizer_options={"prior_correction": prior_correction} if prior_correction else None,
               on_listening=lambda: click.echo(
                   f"affectlens: serving on http://{host}:{port}/ (API docs at /docs); Ctrl-C stops", err=True))


if __name__ == "__main__":  # ``python -m affectlens.serve.command``: the server without the CLI package
    serve_command()
