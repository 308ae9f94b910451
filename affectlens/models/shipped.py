"""The models that ship inside the package (affectlens/weights/) and how a model is named.

A model can be given as a shipped name (``default``, ``fast`` or a file stem), a run folder
(its ``best.safetensors``), or a path to a ``.safetensors`` / ``.onnx`` file with its sidecar.
"""

from __future__ import annotations

import json
from pathlib import Path

from affectlens.errors import AffectlensError

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
#: alias -> file stem in WEIGHTS_DIR; the aliases are what users type
ALIASES_FILE = WEIGHTS_DIR / "aliases.json"
#: aliases every install is expected to have
STANDARD_ALIASES = ("default", "fast")


def aliases() -> dict[str, str]:
    if ALIASES_FILE.exists():
        return json.loads(ALIASES_FILE.read_text())
    return {}


def shipped_models() -> dict[str, Path]:
    """Shipped weight files by stem."""
    return {p.stem: p for p in sorted(WEIGHTS_DIR.glob("*.safetensors"))}


def resolve_model(spec: str | Path) -> Path:
    """Turn a model name, run folder or file path into the path of a weights file."""
    text = str(spec)
    names = aliases()
    shipped = shipped_models()
    if text in names:
        text = names[text]
    if text in shipped:
        return shipped[text]
    path = Path(text).expanduser()
    if path.is_dir():
        for candidate in ("best.safetensors", "last.safetensors", "model.onnx"):
            if (path / candidate).exists():
                return path / candidate
        raise AffectlensError(f"{path}: folder holds no best.safetensors, last.safetensors or model.onnx")
    if path.exists():
        if path.suffix not in (".safetensors", ".onnx", ".json"):
            raise AffectlensError(f"{path}: not a model file (expected .safetensors or .onnx with a .json sidecar)")
        return path
    if text in STANDARD_ALIASES and text not in names:
        raise AffectlensError(
            f"no {text} model installed ({WEIGHTS_DIR} has none); pass a model explicitly: "
            "a run folder, a .safetensors or an .onnx file with its .json sidecar"
        )
    valid = sorted({*names, *shipped})
    raise AffectlensError(
        f"model '{text}' is neither a shipped model ({', '.join(valid) or 'none installed'}) nor an existing path"
    )
