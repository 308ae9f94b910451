"""Typed dataclass configs loaded from YAML with ``key.sub=value`` command-line overrides.

Unknown keys are errors that list the valid ones: a misspelt option in a config must never be
ignored silently, because the run would then quietly use the default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from affectlens.errors import AffectlensError

T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "config") -> T:
    """Build dataclass ``cls`` from a nested dict, checking keys and basic types."""
    data = data or {}
    if not isinstance(data, dict):
        raise AffectlensError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = [k for k in data if k not in known]
    if unknown:
        raise AffectlensError(
            f"{where}: unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
        )
    kwargs = {}
    for key, value in data.items():
        kwargs[key] = _coerce(hints[key], value, f"{where}.{key}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)  # type: ignore[arg-type]
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        for arg in args:
            try:
                return _coerce(arg, value, where)
            except AffectlensError:
                continue
        raise AffectlensError(f"{where}: value {value!r} does not fit {hint}")
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            value = [value]
        (item,) = typing.get_args(hint)[:1] or (Any,)
        items = [_coerce(item, v, where) for v in value]
        return items if origin is list else tuple(items)
    if origin is dict or hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise AffectlensError(f"{where}: expected true/false, got {value!r}")
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise AffectlensError(f"{where}: expected a number, got {value!r}")
        try:
            number = float(value)
        except ValueError:
            raise AffectlensError(f"{where}: expected a number, got {value!r}") from None
        if hint is int:
            if number != int(number):
                raise AffectlensError(f"{where}: expected an integer, got {value!r}")
            return int(number)
        return number
    if hint is str:
        if isinstance(value, dict | list):
            raise AffectlensError(f"{where}: expected text, got {value!r}")
        return str(value)
    return value


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides (values parsed as YAML, so ``lr=1e-3`` is a float)."""
    for item in overrides:
        if "=" not in item:
            raise AffectlensError(f"override '{item}' must look like key.sub=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw != "" else ""
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise AffectlensError(f"override '{item}': '{part}' is not a section")
        node[parts[-1]] = value
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Read YAML ``path`` (optional), apply overrides, and build the typed config."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise AffectlensError(f"{path}: config file does not exist")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise AffectlensError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    data = apply_overrides(data, overrides or [])
    return from_dict(cls, data, where=str(path) if path else "config")


def save_config(config: Any, path: Path) -> None:
    path.write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
