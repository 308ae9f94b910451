"""``affectlens pack``: decode a dataset's images once into a packed, memory-mapped store.

Any dataset a command can read (a class-per-folder tree, a manifest CSV, Aff-Wild2 annotations
with their cropped-aligned frames...) becomes a store that ``train``, ``evaluate`` and ``inspect``
read as ``--kind packed`` (guessed from the folder) without decoding a JPEG per image per epoch.
Stopped packing (Ctrl-C, ``kill``, a lost machine) resumes when the same command runs again.
"""

from __future__ import annotations

from pathlib import Path

import click

from affectlens.cli.app import AT_LEAST_ONE, CHANNELS, IMAGE_SIZE, command, exist_ok_option, out_option, set_option
from affectlens.cli.data import LOADER_OPTION_HELP, chosen_dataset, dataset_argument


@command("pack")
@dataset_argument
@out_option("The store folder to write (resumed when it holds this job's unfinished store).", required=True)
@exist_ok_option
@click.option("--image-size", type=IMAGE_SIZE, help="Side images are stored at (loaders that resize; "
              "default theirs, e.g. 48 for folders, 112 for Aff-Wild2).")
@click.option("--channels", type=CHANNELS, help="1 (grey) or 3 (RGB), for loaders that convert.")
@click.option("--workers", type=AT_LEAST_ONE, default=1, show_default=True, help="Threads decoding image files.")
@click.option("--chunk-size", type=AT_LEAST_ONE, default=512, show_default=True,
              help="Images written between two progress records (a resumed run repeats at most one chunk).")
@set_option(LOADER_OPTION_HELP)
def pack_command(dataset_path: Path | None, data_path: str | None, data_kind: str, out: Path, exist_ok: bool,
                 image_size: int | None, channels: int | None, workers: int, chunk_size: int,
                 overrides: tuple[str, ...]) -> None:
    """Pack a dataset's images into one memory-mapped uint8 array with an index (labels, valence/arousal,
    subject, video, frame, split); train on it with --kind packed."""
    from affectlens.data.packing import pack_dataset
    from affectlens.data.registry import guess_kind, loader_accepts
    from affectlens.data.resolve import load_requested
    from affectlens.utils.assignments import parse_assignments
    from affectlens.utils.interrupts import stop_signals_as_interrupt

    path = chosen_dataset(dataset_path, data_path)
    options = parse_assignments(overrides)
    kind = guess_kind(path) if data_kind == "auto" and path.exists() else data_kind
    if loader_accepts(kind, "in_memory"):
        options.setdefault("in_memory", False)  # decode each file once, while packing, not all of them first
    dataset = load_requested(path, kind, options, image_size=image_size, channels=channels)
    with stop_signals_as_interrupt():
        result = pack_dataset(dataset, out, exist_ok=exist_ok, inputs=[path], chunk_size=chunk_size,
                              workers=workers)
    h, w, c = result.image_shape
    resumed = f", resumed after {result.resumed_at:,}" if result.resumed_at else ""
    click.echo(f"packed {result.images:,} images ({h}x{w}x{c}, {result.bytes / 2**20:,.1f} MiB) into {out}{resumed}")
    if result.skipped:
        click.echo(f"{result.skipped:,} image file(s) could not be read; the store leaves them out (listed in "
                   f"{out / 'store.json'})")
    click.echo(f"train on it: affectlens train --kind packed --data {out} --set data.image_size={h} "
               f"--set data.channels={c}")
