"""Typed configs read from YAML with ``key.sub=value`` overrides, validated by pydantic when loaded.

A config is checked completely before anything runs: a misspelt option would otherwise be ignored
and the run would quietly use the default, and a bad value would only surface hours later. Every
problem becomes one :class:`AffectlensError` line that names the key path, what is allowed and
where the value came from (the YAML file, or the ``--set`` item that set it), so the user knows
which of the two to fix. No pydantic traceback reaches the user.
"""

from __future__ import annotations

import datetime
import logging
import reprlib
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar

import yaml
from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from affectlens.errors import AffectlensError
from affectlens.utils.assignments import parse_assignment

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

#: a config file is a few kilobytes; anything far larger is not one (and is not read into memory)
MAX_CONFIG_BYTES = 1_000_000
#: keys older versions wrote into run folders' config.yaml that no longer exist: dropped on load,
#: so those runs still resume and evaluate
RETIRED_KEYS = {("model", "input_size"): "the network's input size follows augment.crop_size"}


def _number(value: Any) -> Any:
    """PyYAML reads ``1e-3`` as text (YAML 1.1 wants ``1.0e-3``): parse it; refuse booleans, which
    pydantic would otherwise take as 0 and 1."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value  # pydantic reports it with the field's allowed values
    return value


def _text(value: Any) -> Any:
    """YAML turns ``run_name: 2024`` or ``val_split: 2024-01-01`` into a number or a date; the user
    meant the text as written."""
    if isinstance(value, int | float | datetime.date) and not isinstance(value, bool):
        return str(value)
    return value


def _as_list(value: Any) -> Any:
    """A single item where a list is expected (``train_splits: Training``) is a list of one."""
    return value if isinstance(value, list | tuple) else [value]


Text = Annotated[str, BeforeValidator(_text)]
Integer = Annotated[int, BeforeValidator(_number)]
Number = Annotated[float, BeforeValidator(_number)]
PositiveInt = Annotated[Integer, Field(ge=1)]
#: a count where 0 means "off" or "all"
Count = Annotated[Integer, Field(ge=0)]
NonNegative = Annotated[Number, Field(ge=0)]
Positive = Annotated[Number, Field(gt=0)]
Probability = Annotated[Number, Field(ge=0, le=1)]
TextList = Annotated[list[Text], BeforeValidator(_as_list)]

#: the error type of :func:`rule_error`
RULE = "config_rule"


def rule_error(key: str, message: str) -> PydanticCustomError:
    """A check across options (raise it in a ``model_validator``), blamed on ``key``.

    ``key`` is dotted, relative to the section that checks. The error line then names that key
    path and where its value came from (the file or the ``--set`` item), as the error of a
    single option does, rather than the section as a whole.
    """
    return PydanticCustomError(RULE, "{message}", {"key": key, "message": message})


class ConfigModel(BaseModel):
    """Base of every config section: unknown keys refused, numbers finite, assignments checked.

    Changing a config in code (``cfg.epochs = n``, :meth:`replace`) is validated like loading one
    and raises the same one-line :class:`AffectlensError`, as those values come from the user
    (``--epochs``, ``--lr``). Building a section from constants in code (``LossConfig(name=...)``)
    raises pydantic's ``ValidationError``: a wrong constant there is a bug, not a user error.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=True)

    def __setattr__(self, name: str, value: Any) -> None:
        before = dict(self.__dict__)
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            # pydantic has already stored the value when a check across fields refuses it: undo that
            self.__dict__.clear()
            self.__dict__.update(before)
            raise explain(exc, type(self), {name: value}, lambda _: type(self).__name__) from None

    def replace(self, **changes: Any) -> Self:
        """A validated copy with ``changes`` applied (what ``dataclasses.replace`` is for dataclasses)."""
        data = {name: getattr(self, name) for name in type(self).model_fields} | changes
        try:
            return type(self).model_validate(data)
        except ValidationError as exc:
            raise explain(exc, type(self), data, lambda _: type(self).__name__) from None


# ----------------------------------------------------------------------------------- loading and saving
def load_config(cls: type[M], path: str | Path | None = None, overrides: list[str] | None = None) -> M:
    """Read YAML ``path`` (optional), apply ``key.sub=value`` overrides, and validate the result as ``cls``."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        data = read_mapping(path)
        _drop_retired(data, path)
    origins = _apply(data, overrides or [])

    def source(key_path: tuple[str, ...]) -> str:
        """The last override that set this key, a section around it or a key inside it; else the file."""
        for key, item in reversed(origins):
            if key_path and (key[: len(key_path)] == key_path or key_path[: len(key)] == key):
                return f"--set {item}"
        return str(path) if path is not None else cls.__name__

    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise explain(exc, cls, data, source) from None


def read_mapping(path: Path) -> dict[str, Any]:
    """The top-level mapping of YAML file ``path``; anything else (empty, a list, binary) is an error."""
    if not path.exists():
        raise AffectlensError(f"{path}: config file does not exist")
    if path.is_dir():
        raise AffectlensError(f"{path}: is a folder; a config is a YAML file (see configs/)")
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise AffectlensError(f"{path}: {size:,} bytes is too large for a config file (YAML, a few kB)")
        with open(path, "rb") as handle:  # at most the limit: /dev/zero or a device reports size 0 and never ends
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise AffectlensError(f"{path}: cannot read the config file ({exc.strerror})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise AffectlensError(f"{path}: more than {MAX_CONFIG_BYTES:,} bytes is too large for a config file "
                              "(YAML, a few kB)")
    try:
        if b"\x00" in raw:
            raise UnicodeError
        text = raw.decode("utf-8-sig")
    except UnicodeError:
        raise AffectlensError(f"{path}: not a text file; a config is a YAML file (see configs/)") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader that refuses repeated keys
    except _RepeatedKey as exc:
        raise AffectlensError(f"{path}:{exc.problem_mark.line + 1}: {exc.problem}") from None  # type: ignore[union-attr]
    except yaml.MarkedYAMLError as exc:
        where = f"{path}:{exc.problem_mark.line + 1}" if exc.problem_mark else str(path)
        raise AffectlensError(f"{where}: not valid YAML ({exc.problem or str(exc).splitlines()[0]})") from None
    except (yaml.YAMLError, ValueError, OverflowError) as exc:  # ValueError: e.g. a date 2024-13-01
        raise AffectlensError(f"{path}: not valid YAML ({str(exc).splitlines()[0] if str(exc) else exc!r})") from None
    except RecursionError:
        raise AffectlensError(f"{path}: not valid YAML (nested too deeply)") from None
    if data is None or data == {}:
        raise AffectlensError(f"{path}: empty config; set at least one option (see configs/), or leave the "
                              "config out to train with the defaults")
    if not isinstance(data, dict):
        raise AffectlensError(f"{path}: the top level must be a mapping of options (key: value), "
                              f"not {_kind(data)}")
    return data


class _RepeatedKey(yaml.constructor.ConstructorError):
    """A key given twice in one mapping."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping.

    PyYAML keeps the last of two equal keys without a word, so an ``lr: 0.01`` added below a
    forgotten ``lr: 0.1`` (or the reverse) would change the run silently; YAML itself requires
    keys to be unique. Merge keys (``<<: *base``) may still be overridden: that is what they are for.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if first is not key_node:
                raise _RepeatedKey(None, None, f"option '{key}' is given twice in one section (lines "
                                   f"{first.start_mark.line + 1} and {key_node.start_mark.line + 1}); YAML would "
                                   "silently keep only the last: remove one", key_node.start_mark)
        return super().construct_mapping(node, deep)


def _drop_retired(data: dict[str, Any], path: Path) -> None:
    for (section, key), why in RETIRED_KEYS.items():
        node = data.get(section)
        if isinstance(node, dict) and key in node:
            del node[key]
            log.debug("%s: ignoring retired option %s.%s (%s)", path, section, key, why)


def _apply(data: dict[str, Any], overrides: list[str]) -> list[tuple[tuple[str, ...], str]]:
    """Apply the overrides; return (key path, item) for each, so errors can blame the item that set a key."""
    origins = []
    for item in overrides:
        try:
            key, value = parse_assignment(item, "--set")
        except (ValueError, RecursionError):  # YAML it cannot build (a date 2024-13-01): keep the text
            key, _, value = item.partition("=")
            key = key.strip()
        parts = tuple(part.strip() for part in key.split("."))
        if not all(parts):
            raise AffectlensError(f"--set {item}: '{key}' has an empty name between dots")
        node = data
        for depth, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise AffectlensError(f"--set {item}: {'.'.join(parts[: depth + 1])} is {_show(node)}, not a section")
        node[parts[-1]] = value
        origins.append((parts, item))
    return origins


def to_dict(config: BaseModel) -> dict[str, Any]:
    """Plain nested dicts, lists and scalars (what ``save_config`` writes)."""
    return config.model_dump()


def save_config(config: BaseModel, path: Path) -> None:
    """Write the resolved config as YAML (every key, so the run folder says exactly what ran)."""
    path.write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


# ------------------------------------------------------------------------------------ one-line errors
def explain(exc: ValidationError, model: type[BaseModel], data: Any,
            source: Callable[[tuple[str, ...]], str]) -> AffectlensError:
    """Turn pydantic's error list into one line: source, key path, what is allowed, what was given.

    ``source(key_path)`` names where the value at ``key_path`` came from. Unknown keys come first,
    outermost first (a typo explains the rest); further problems are only counted.
    """
    unknown: dict[tuple[str, ...], list[str]] = {}
    sections: dict[tuple[str, ...], type[BaseModel]] = {}
    problems: dict[tuple[str, ...], str] = {}
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        path, field, section = _walk(model, loc)
        if error["type"] == RULE:
            path = (*path, *error["ctx"]["key"].split("."))
            problems.setdefault(path, f"{'.'.join(path)}: {error['ctx']['message']}")
        elif error["type"] in ("extra_forbidden", "invalid_key") and section is not None and len(loc) > len(path):
            unknown.setdefault(path, []).append(str(loc[len(path)]))
            sections[path] = section
        elif path not in problems:
            problems[path] = _problem(error, path, field, model, _lookup(data, path))
    messages = []
    for path, keys in sorted(unknown.items(), key=lambda item: len(item[0])):  # outermost first
        names = ", ".join(".".join((*path, key)) for key in keys)
        within = f" in {'.'.join(path)}" if path else ""
        valid = ", ".join(sorted(sections[path].model_fields))
        messages.append(((*path, keys[0]), f"unknown option(s) {names}; valid{within}: {valid}"))
    messages += [(path, text) for path, text in problems.items()]
    key_path, text = messages[0]
    more = f" (and {len(messages) - 1} more problem{'s' if len(messages) > 2 else ''})" if len(messages) > 1 else ""
    return AffectlensError(f"{source(key_path)}: {text}{more}")


def _walk(model: type[BaseModel], loc: tuple[int | str, ...]
          ) -> tuple[tuple[str, ...], FieldInfo | None, type[BaseModel] | None]:
    """Follow ``loc`` through the config's fields: (key path, last field, section the path ends in)."""
    path: list[str] = []
    field: FieldInfo | None = None
    section: type[BaseModel] | None = model
    for part in loc:
        if section is None or not isinstance(part, str) or part not in section.model_fields:
            break
        field = section.model_fields[part]
        path.append(part)
        section = field.annotation if _is_model(field.annotation) else None
    return tuple(path), field, section


def _problem(error: Any, path: tuple[str, ...], field: FieldInfo | None, model: type[BaseModel], value: Any) -> str:
    dotted = ".".join(path)
    target = field.annotation if field is not None else model
    if error["type"] in ("value_error", "assertion_error") and _is_model(target) and "ctx" in error:
        return f"{dotted}: {error['ctx']['error']}" if dotted else str(error["ctx"]["error"])  # across fields
    if field is None:
        return f"expected a mapping of options, got {_show(value)}"
    if error["type"] == "literal_error" and field.title and typing.get_origin(field.annotation) is Literal:
        names = ", ".join(str(name) for name in typing.get_args(field.annotation))
        return f"{dotted}: unknown {field.title} {_show(value)}; valid names: {names}"
    return f"{dotted}: expected {_allowed(field.annotation, list(field.metadata))}, got {_show(value)}"


def _allowed(annotation: Any, constraints: list[Any], plural: bool = False) -> str:
    """What a field accepts, in words: ``a finite number in [0, 1]``, ``one of sgd, adam``, ..."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return _allowed(args[0], [*constraints, *args[1:]], plural)
    if origin in (typing.Union, types.UnionType):
        words = [_allowed(arg, constraints, plural) for arg in args if arg is not type(None)]
        return " or ".join(words + ["null"] * (type(None) in args))
    if origin is Literal:
        return "one of " + ", ".join(str(arg) for arg in args)
    if origin is list:
        shortest, longest = _constraint(constraints, MinLen), _constraint(constraints, MaxLen)
        count = f"{shortest} " if shortest and shortest == longest else "1 or more " if shortest == 1 else ""
        return f"a list of {count}{_allowed(args[0], [], plural=True)}"
    if annotation is dict or origin is dict:
        return "a mapping (name: value)"
    if _is_model(annotation):
        return "a mapping of options (" + ", ".join(annotation.model_fields) + ")"
    words = {bool: ("true or false", "true or false"), str: ("text", "text"), int: ("an integer", "integers"),
             float: ("a finite number", "finite numbers")}.get(annotation, (str(annotation), str(annotation)))
    return words[plural] + (_range(constraints) if annotation in (int, float) else "")


def _range(constraints: list[Any]) -> str:
    """`` >= 0``, `` in [0, 1)`` ...: the bounds of a number, as a mathematician would write them."""
    ge, gt, le, lt = (_constraint(constraints, kind) for kind in (Ge, Gt, Le, Lt))
    low = ("[", ">=", ge) if ge is not None else ("(", ">", gt) if gt is not None else None
    high = ("]", "<=", le) if le is not None else (")", "<", lt) if lt is not None else None
    if low and high:
        return f" in {low[0]}{_number_text(low[2])}, {_number_text(high[2])}{high[0]}"
    if low or high:
        _, sign, bound = low or high
        return f" {sign} {_number_text(bound)}"
    return ""


_CONSTRAINT_VALUE = {Ge: "ge", Gt: "gt", Le: "le", Lt: "lt", MinLen: "min_length", MaxLen: "max_length"}


def _constraint(constraints: list[Any], kind: type) -> Any:
    """The value of the last constraint of ``kind`` (e.g. ``Ge``), looking inside nested ``Field(...)``."""
    flat = [c for item in constraints for c in (item.metadata if isinstance(item, FieldInfo) else [item])]
    found = [c for c in flat if isinstance(c, kind)]
    return getattr(found[-1], _CONSTRAINT_VALUE[kind]) if found else None


def _number_text(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _lookup(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 4, 4, 40, 40


def _show(value: Any) -> str:
    """A short ``repr`` (bounded, even for huge or self-referencing YAML values)."""
    return _REPR.repr(value)


def _kind(value: Any) -> str:
    return {list: "a list", str: "a single text", int: "a number", float: "a number", bool: "true/false"}.get(
        type(value), f"a {type(value).__name__}")
