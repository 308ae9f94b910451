"""``KEY=VALUE`` command-line items (``--set optim.lr=1e-3``), parsed one way everywhere."""

from __future__ import annotations

from typing import Any

import yaml

from affectlens.errors import AffectlensError


def parse_assignment(item: str, flag: str = "--set") -> tuple[str, Any]:
    """``"a.b=1e-3"`` -> ``("a.b", 0.001)``; values are read as YAML (numbers, lists, true/false)."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise AffectlensError(f"{flag} '{item}' must look like KEY=VALUE, e.g. {flag} optim.lr=0.01")
    if raw == "":
        return key, ""
    try:
        return key, yaml.safe_load(raw)
    except (yaml.YAMLError, ValueError):
        return key, raw  # not YAML (an unbalanced bracket, an impossible date): keep the text as written


def parse_assignments(items: list[str] | tuple[str, ...], flag: str = "--set") -> dict[str, Any]:
    """Several ``KEY=VALUE`` items as a flat dict (later items win)."""
    return dict(parse_assignment(item, flag) for item in items)
