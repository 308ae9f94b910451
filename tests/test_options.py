"""Prediction options are declared once (affectlens/inference/options.py): every entry point agrees."""

from __future__ import annotations

import inspect
from dataclasses import fields

from affectlens.cli import COMMANDS
from affectlens.inference.options import DEFAULTS, ENGINE_DEFAULTS, ENGINES, EngineOptions, PredictOptions
from affectlens.inference.recognizer import Recognizer
from affectlens.serve.app import create_app
from affectlens.serve.command import serve_command
from affectlens.serve.engine import Engine


def keyword_defaults(function: object) -> dict[str, object]:
    return {name: p.default for name, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}


def test_the_recognizer_defaults_are_the_declared_ones() -> None:
    declared = DEFAULTS.recognizer_arguments()
    defaults = keyword_defaults(Recognizer.__init__)
    assert {name: defaults[name] for name in declared} == declared
    # and an options value builds the same recognizer arguments it holds
    assert PredictOptions(detector="haar", threads=2).recognizer_arguments()["num_threads"] == 2


def test_every_command_line_default_is_the_declared_one() -> None:
    by_name = {command.name: command for command in COMMANDS}
    names = {field.name for field in fields(PredictOptions)}
    for command_name in ("predict", "camera"):
        options = {p.name: p.default for p in by_name[command_name].params}
        shared = names & set(options)
        assert {"model", "detector", "max_side", "detect_every", "smoothing"} <= shared
        assert {name: options[name] for name in shared} == {name: getattr(DEFAULTS, name) for name in shared}
    serve_options = {p.name: p.default for p in serve_command.params}
    assert serve_options["detector"] == DEFAULTS.detector and serve_options["model_spec"] == DEFAULTS.model
    assert serve_options["prior_correction"] == DEFAULTS.prior_correction


def test_the_server_defaults_are_the_declared_ones() -> None:
    for function in (create_app, Engine.__init__):
        defaults = keyword_defaults(function)
        assert defaults["detector"] == DEFAULTS.detector and defaults["model"] == DEFAULTS.model


def test_the_engine_options_are_declared_once() -> None:
    """``predict --engine/--workers/--address`` take their defaults (and choices) from EngineOptions."""
    (predict,) = [command for command in COMMANDS if command.name == "predict"]
    options = {p.name: p for p in predict.params}
    for field in fields(EngineOptions):
        assert options[field.name].default == getattr(ENGINE_DEFAULTS, field.name)
    assert tuple(options["engine"].type.choices) == ENGINES and ENGINE_DEFAULTS.engine == "sequential"
    assert not {field.name for field in fields(EngineOptions)} & {field.name for field in fields(PredictOptions)}
