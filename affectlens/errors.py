"""User-facing errors.

Anything a user can get wrong (a path, a column, an option name) raises :class:`AffectlensError`
with a message that fits on one line and names the offending file or value. The CLI prints such
errors without a traceback; every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class AffectlensError(Exception):
    """An error caused by input the user can fix; its message is printed as one line."""


def unknown_name_error(kind: str, name: str, valid: Iterable[str]) -> AffectlensError:
    """Build the error for an unknown model/option/dataset name, listing the valid names."""
    valid_list = ", ".join(sorted(valid))
    return AffectlensError(f"unknown {kind} '{name}'; valid names: {valid_list}")
