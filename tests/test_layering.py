"""Which part of the package may import which: an explicit map, and no import cycles at all.

Checked on the source (every ``import``, including the lazy ones inside functions, since those run
too), so a part that reaches where it may not fails here before it becomes a cycle or drags torch
onto the prediction path. The map is not a line: ``inference`` may not import ``training``,
``serve`` may not import the torch world (``models``), and the prediction ``runtime`` imports
neither torch nor ``models``; the torch backend is found by name (affectlens/runtime/torch_bridge.py).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "affectlens"

BASE = {"errors", "utils"}
#: each part of the package -> the parts it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "utils": {"errors"},
    "config_io": BASE,
    "data": BASE | {"config_io"},
    "faces": BASE | {"data"},
    "runtime": BASE | {"data"},
    "models": BASE | {"config_io", "data", "runtime"},
    "evaluation": BASE | {"config_io", "data", "faces", "runtime", "models"},
    "training": BASE | {"config_io", "data", "runtime", "models", "evaluation"},
    "inference": BASE | {"config_io", "data", "faces", "runtime", "models", "evaluation"},
    "serve": BASE | {"config_io", "data", "faces", "runtime", "inference"},
    # whole collections on worker processes or Ray: the prediction path, run elsewhere; never torch's world
    "engines": BASE | {"data", "faces", "runtime", "inference"},
    "cli": BASE | {"config_io", "data", "faces", "runtime", "models", "evaluation", "training", "inference", "serve",
                   "engines"},
}


def _part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "affectlens" and len(parts) > 1 else None


def _module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, package: Path = PACKAGE) -> list[str]:
    """Every ``affectlens`` module ``path`` imports, lazy imports and relative ones included; ``from
    package import name`` counts as importing ``package.name`` when that is a module."""
    here = _module_name(path, package)
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                relative = Path(*candidate.split("."))
                as_module = (package.parent / relative).with_suffix(".py").exists() or \
                    (package.parent / relative / "__init__.py").exists()
                found.append(candidate if as_module else base)
    return [m for m in dict.fromkeys(found) if m.split(".")[0] == "affectlens"]


def forbidden_imports(part: str, package: Path = PACKAGE) -> list[str]:
    """``file -> module`` for every import in ``part`` (a subpackage or module) that the map does not allow."""
    single = package / f"{part}.py"
    files = [single] if single.exists() else sorted((package / part).rglob("*.py"))
    return [f"{path.relative_to(package.parent)} -> {module}" for path in files
            for module in imported_modules(path, package)
            if (target := _part(module)) is not None and target != part and target not in ALLOWED[part]]


def import_cycles(package: Path = PACKAGE) -> list[list[str]]:
    """Strongly connected groups of more than one module in the import graph (Tarjan)."""
    graph = {_module_name(p, package): set(imported_modules(p, package)) for p in package.rglob("*.py")}
    graph = {m: {t for t in targets if t in graph and t != m} for m, targets in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_every_part_of_the_package_is_in_the_map() -> None:
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").exists()) and not p.name.startswith("__")}
    assert parts == set(ALLOWED)


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_no_part_imports_one_the_map_forbids(part: str) -> None:
    assert forbidden_imports(part) == []


def test_the_package_has_no_import_cycle() -> None:
    assert import_cycles() == []


def test_the_scan_finds_upward_imports_also_inside_functions(tmp_path: Path) -> None:
    models = tmp_path / "affectlens" / "models"
    models.mkdir(parents=True)
    (models / "fine.py").write_text("from affectlens.data.crops import center_crop\nfrom . import card\n")
    (models / "bad.py").write_text(
        "import affectlens.serve\n\ndef late():\n    from affectlens.inference.recognizer import Recognizer\n"
    )
    assert forbidden_imports("models", tmp_path / "affectlens") == [
        "affectlens/models/bad.py -> affectlens.serve",
        "affectlens/models/bad.py -> affectlens.inference.recognizer",
    ]


def test_evaluation_runs_without_loading_training_or_inference() -> None:
    code = (
        "import sys\n"
        "import affectlens.evaluation.runner\n"
        "import json\n"
        "print(json.dumps(sorted({m.split('.')[1] for m in sys.modules if m.startswith('affectlens.')})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    loaded = set(json.loads(out.stdout))
    assert {"data", "evaluation", "models"} <= loaded
    assert not {"training", "inference", "serve", "cli"} & loaded, loaded


def test_the_cycle_finder_finds_a_cycle_through_a_lazy_import(tmp_path: Path) -> None:
    package = tmp_path / "affectlens"
    (package / "runtime").mkdir(parents=True)
    (package / "runtime" / "__init__.py").write_text("")
    (package / "runtime" / "a.py").write_text("from affectlens.runtime import b\n")
    (package / "runtime" / "b.py").write_text("def late():\n    from . import a\n")
    (package / "runtime" / "c.py").write_text("from affectlens.runtime.a import x\n")
    assert import_cycles(package) == [["affectlens.runtime.a", "affectlens.runtime.b"]]
