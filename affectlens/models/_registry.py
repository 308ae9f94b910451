"""The core of the model registry: the name -> builder table and building with checked options.

Why a separate core: architecture modules register themselves here with :func:`register_model`,
and this module imports none of them, so the import graph has no cycle (architectures -> core;
:mod:`affectlens.models.architectures` lists the built-in ones; the public
:mod:`affectlens.models.registry` imports both). Everything describing an architecture
(``default_input_size``, ``weights_format``) is declared once, on the model class the builder
returns (see :class:`affectlens.models.blocks.FeatureClassifier`).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from affectlens.errors import AffectlensError, unknown_name_error

Builder = Callable[..., Any]

_BUILDERS: dict[str, Builder] = {}

# Options every builder gets positionally; everything else is a model-specific keyword option.
_FIXED_PARAMS = ("num_classes", "in_channels")


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Register ``builder(num_classes, in_channels=1, *, option=default, ...) -> nn.Module`` as ``name``.

    Annotate the builder's return type with the model class: the registry reads the class's
    ``default_input_size`` and ``weights_format`` from it without building the model (building
    vgg16 allocates 0.5 GB).
    """

    def decorator(builder: Builder) -> Builder:
        old = _BUILDERS.get(name)
        # Re-registering the same function (a module reload) is fine; a different one is a name clash.
        if old is not None and (old.__module__, old.__qualname__) != (builder.__module__, builder.__qualname__):
            raise ValueError(f"model name '{name}' is already registered by {old.__module__}")
        _BUILDERS[name] = builder
        return builder

    return decorator


def registered_names() -> list[str]:
    """Names registered so far, sorted (the built-in ones once their modules are imported)."""
    return sorted(_BUILDERS)


def get_builder(name: str) -> Builder:
    try:
        return _BUILDERS[name]
    except KeyError:
        raise unknown_name_error("model", name, registered_names()) from None


def model_class(name: str) -> type | None:
    """The class the builder of ``name`` declares it returns, or None when it declares none."""
    builder = get_builder(name)
    try:
        cls = typing.get_type_hints(builder).get("return")
    except (NameError, TypeError):  # an annotation that does not resolve: treat as undeclared
        return None
    return cls if isinstance(cls, type) else None


def builder_options(builder: Builder) -> tuple[dict[str, Any], bool]:
    """Keyword options of a builder with their defaults, and whether it also takes ``**kwargs``."""
    options: dict[str, Any] = {}
    var_kw = False
    for pname, param in inspect.signature(builder).parameters.items():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            var_kw = True
        elif pname not in _FIXED_PARAMS and param.kind is not inspect.Parameter.VAR_POSITIONAL:
            options[pname] = None if param.default is inspect.Parameter.empty else param.default
    return options, var_kw


def build(name: str, num_classes: int, in_channels: int = 1, **options: Any) -> Any:
    """Build model ``name`` after checking its arguments, so a typo in a config is a one-line error."""
    builder = get_builder(name)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise AffectlensError(f"num_classes must be a positive integer, got {num_classes!r}")
    if not isinstance(in_channels, int) or in_channels < 1:
        raise AffectlensError(f"in_channels must be a positive integer, got {in_channels!r}")
    accepted, var_kw = builder_options(builder)
    if not var_kw:
        for key in options:
            if key not in accepted:
                names = ", ".join(sorted(accepted)) or "none"
                raise AffectlensError(f"unknown option '{key}' for model '{name}'; accepted options: {names}")
    return builder(num_classes=num_classes, in_channels=in_channels, **options)
