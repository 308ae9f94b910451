"""The ``affectlens`` command line: one package of thin commands over the library.

Each module holds one family of commands (``train``/``finetune``, ``evaluate``, ``models``,
``predict``/``camera``, ``export``, ``inspect``/``split``, ``pack``); :mod:`affectlens.cli.app` holds the group,
the shared grammar and its option decorators. Commands import their heavy dependencies (torch,
OpenCV, ONNX Runtime) when they run, so ``affectlens --help`` and the torch-free prediction path
stay light. A new command family registers itself by joining :data:`COMMANDS` below.

Errors the user can fix print as one line and exit with status 2 (:class:`AffectlensError` and
click usage errors such as an out-of-range number); Ctrl-C exits with 130, SIGTERM/SIGHUP with
128 + the signal; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

import click

from affectlens.cli.app import PROG, cli, warn
from affectlens.cli.data import inspect_command, split_command
from affectlens.cli.evaluate import evaluate_command
from affectlens.cli.export import export_command
from affectlens.cli.models import models_command
from affectlens.cli.pack import pack_command
from affectlens.cli.predict import camera_command, predict_command
from affectlens.cli.train import finetune_command, train_command
from affectlens.errors import AffectlensError
from affectlens.serve.command import serve_command
from affectlens.utils.interrupts import Terminated

#: every command of ``affectlens`` (``--help`` lists them by name); a new one joins here
COMMANDS: tuple[click.Command, ...] = (
    predict_command, camera_command, serve_command, models_command, train_command, finetune_command,
    evaluate_command, export_command, inspect_command, split_command, pack_command,
)
for _command in COMMANDS:
    cli.add_command(_command)

__all__ = ["COMMANDS", "cli", "main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point (``affectlens``, ``python -m affectlens``): one-line errors for user mistakes."""
    try:
        with _one_line_warnings():
            code = cli.main(args=list(argv) if argv is not None else None, prog_name=PROG, standalone_mode=False)
    except AffectlensError as exc:
        _error(str(exc))
        sys.exit(2)
    except click.exceptions.Abort as exc:  # click turns Ctrl-C (and SIGTERM, see Terminated) into Abort
        _stopped(exc.__cause__ if isinstance(exc.__cause__, KeyboardInterrupt) else None)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else PROG
        _error(f"{exc.format_message()} (see '{command} --help')")
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        _error(exc.format_message())
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        _stopped(exc)
    if isinstance(code, int) and code:  # ctx.exit(N) inside a command
        sys.exit(code)


def _stopped(cause: KeyboardInterrupt | None) -> NoReturn:
    """Ctrl-C: exit 130; SIGTERM/SIGHUP (:class:`Terminated`): 128 + the signal; a declined prompt: 130."""
    if isinstance(cause, Terminated):
        click.echo("terminated", err=True)
        sys.exit(cause.exit_code)
    click.echo("interrupted" if cause is not None else "aborted", err=True)
    sys.exit(130)


def _error(message: str) -> None:
    click.echo(f"{PROG}: error: {' '.join(message.split())}", err=True)


@contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Python warnings (Pillow's, NumPy's) as one ``affectlens: warning:`` line, not a source excerpt."""
    previous = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> None:
        if category.__name__ == "DecompressionBombWarning":  # our pixel limit is checked, and named, before decoding
            return
        warn(f"{message} ({category.__name__})")

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous
