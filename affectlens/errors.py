"""User-facing errors.

Anything a user can get wrong (a path, a column, an option name) raises :class:`AffectlensError`
with a message that fits on one line and names the offending file or value. The CLI prints such
errors without a traceback; every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class AffectlensError(Exception):
    """An error caused by input the user can fix; its message is printed as one line.

    Messages quote user content (file names, CSV cells); a newline or terminal escape in them is
    written as an escape (``\\n``), so the message stays one line and cannot restyle a terminal.
    """

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(_CONTROL.sub(lambda m: repr(m.group())[1:-1], str(message)), *args)


def unknown_name_error(kind: str, name: str, valid: Iterable[str]) -> AffectlensError:
    """Build the error for an unknown model/option/dataset name, listing the valid names."""
    valid_list = ", ".join(sorted(valid))
    return AffectlensError(f"unknown {kind} '{name}'; valid names: {valid_list}")
