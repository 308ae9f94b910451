"""The import graph flows one way: utils/errors -> data -> faces -> models -> evaluation -> training
-> inference -> serve -> cli.

Checked on the source (every ``import``, including the lazy ones inside functions, since those
run too), so a layer that reaches upward fails here before it becomes a cycle or drags torch onto
the prediction path. Training may use evaluation (it evaluates its best weights); evaluation never
uses training.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "affectlens"

#: lowest first; a module may import its own layer and the ones before it
LAYERS = ("utils errors config_io", "data", "faces", "models", "evaluation", "training", "inference", "serve", "cli")
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names.split()}


def _rank(module: str) -> int | None:
    parts = module.split(".")
    return RANK.get(parts[1]) if parts[0] == "affectlens" and len(parts) > 1 else None


def upward_imports(layer: str, package: Path = PACKAGE) -> list[str]:
    """``file -> module`` for every import in ``layer`` (a subpackage or module) of a higher layer."""
    single = package / f"{layer}.py"
    files = [single] if single.exists() else sorted((package / layer).rglob("*.py"))
    found = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            found += [f"{path.relative_to(package.parent)} -> {m}" for m in modules
                      if (rank := _rank(m)) is not None and rank > RANK[layer]]
    return found


#: known upward imports still to remove; strict, so the test fails once one is gone (then drop it here)
KNOWN: dict[str, str] = {}


@pytest.mark.parametrize(
    "layer",
    [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=KNOWN[name])) if name in KNOWN else name
     for names in LAYERS for name in names.split()],
)
def test_no_layer_imports_a_higher_one(layer: str) -> None:
    assert upward_imports(layer) == []


def test_the_scan_finds_upward_imports_also_inside_functions(tmp_path: Path) -> None:
    models = tmp_path / "affectlens" / "models"
    models.mkdir(parents=True)
    (models / "fine.py").write_text("from affectlens.data.crops import center_crop\nfrom . import card\n")
    (models / "bad.py").write_text(
        "import affectlens.serve\n\ndef late():\n    from affectlens.inference.recognizer import Recognizer\n"
    )
    assert upward_imports("models", tmp_path / "affectlens") == [
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
