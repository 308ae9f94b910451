"""The models shipped inside the package, and how a model is named.

One table, ``affectlens/weights/pretrained.json``, lists every shipped model under an ``arch.tag``
name (``vgg_fer_small.fer2013``: the architecture, then the data it was trained on), in the spirit
of timm's pretrained configs. Each entry holds the architecture, its files with their sha256, the
input facts (channels, face size, crop size, normalisation), class names, task, aliases
(``default``, ``fast``) and the metrics measured on those weights. ``tools/ship_model.py``
writes the table from the cards it writes, so nothing in it is typed by hand.

An ensemble entry (architecture ``ensemble``, written by ``tools/ship_model.py --ensemble``)
ships no weights of its own: its one file is an ensemble card (:mod:`affectlens.runtime.ensemble_card`)
and its ``members`` are other entries of the table, named ``arch.tag``.

A model is given as a shipped name (an alias, an ``arch.tag`` name or a file stem), a run folder
(its ``best.safetensors``), or a path to a ``.safetensors`` / ``.onnx`` file with its sidecar.
Torch-free, like the card: the ONNX Runtime prediction path resolves models through it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from affectlens.errors import AffectlensError

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
#: the table of shipped models; its files are named relative to the folder it lies in
TABLE_FILE = WEIGHTS_DIR / "pretrained.json"
TABLE_FORMAT = "affectlens-pretrained/1"
#: aliases every install is expected to have
STANDARD_ALIASES = ("default", "fast")


def read_table() -> dict[str, dict]:
    """Entries by ``arch.tag`` name, in table order; empty when no model is installed."""
    if not TABLE_FILE.exists():
        return {}
    try:
        data = json.loads(TABLE_FILE.read_text())
    except json.JSONDecodeError as exc:
        raise AffectlensError(f"{TABLE_FILE}: not valid JSON ({exc})") from None
    if data.get("format") != TABLE_FORMAT:
        raise AffectlensError(f"{TABLE_FILE}: format '{data.get('format')}' is not {TABLE_FORMAT}")
    return dict(data["models"])


def aliases() -> dict[str, str]:
    """Alias (what users type) -> ``arch.tag`` name."""
    return {alias: name for name, entry in read_table().items() for alias in entry.get("aliases", [])}


def find_shipped(text: str) -> str | None:
    """The table name that ``text`` names (alias, ``arch.tag`` or file stem), or None."""
    table = read_table()
    if text in table:
        return text
    by_alias = aliases()
    if text in by_alias:
        return by_alias[text]
    for name, entry in table.items():
        if text in {Path(f).stem for f in entry["files"].values()}:
            return name
    return None


def pretrained_entry(name: str) -> dict:
    """The table entry of a shipped model (by alias, ``arch.tag`` or file stem), with its ``name``."""
    found = find_shipped(name)
    if found is None:
        valid = ", ".join(_valid_names()) or "none installed"
        raise AffectlensError(f"model '{name}' is not a shipped model ({valid})")
    entry = read_table()[found]
    return {"name": found, **entry}


def main_file_kind(entry: dict) -> str:
    """The file that stands for a model: its ``weights``, or the ``card`` of an ensemble (which has no weights)."""
    return "weights" if "weights" in entry["files"] else "card"


def pretrained_file(name: str, kind: str | None = None) -> Path:
    """Path of one file of a shipped model (``weights``, ``onnx`` or ``card``; default its main file)."""
    entry = pretrained_entry(name)
    kind = kind or main_file_kind(entry)
    if kind not in entry["files"]:
        raise AffectlensError(f"shipped model '{entry['name']}' has no {kind} file")
    return TABLE_FILE.parent / entry["files"][kind]


def list_pretrained() -> list[dict]:
    """One row per shipped model, in table order: the entry plus ``name`` and the weights ``path``.

    Rows are plain JSON data (for ``affectlens models --json``); ``metrics`` holds the card's
    measured numbers, ``aliases`` the short names; an ensemble's ``members`` name other rows and its
    ``path`` is its card.
    """
    return [{"name": name, **entry, "path": str(TABLE_FILE.parent / entry["files"][main_file_kind(entry)])}
            for name, entry in read_table().items()]


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks (weights run to tens of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _valid_names() -> list[str]:
    return sorted({*aliases(), *read_table()})


def resolve_model(spec: str | Path) -> Path:
    """Turn a model name, run folder or file path into the path of a weights file (or an ensemble card)."""
    text = str(spec)
    name = find_shipped(text)
    if name is not None:
        path = pretrained_file(name)
        if not path.exists():
            what = "ensemble card" if path.suffix == ".json" else "weights"
            raise AffectlensError(f"{path}: {what} of shipped model '{name}' missing; reinstall affectlens")
        return path
    path = Path(text).expanduser()
    if path.is_dir():
        for candidate in ("best.safetensors", "last.safetensors", "model.onnx"):
            if (path / candidate).exists():
                return path / candidate
        raise AffectlensError(f"{path}: folder holds no best.safetensors, last.safetensors or model.onnx")
    if path.exists():
        if path.suffix not in (".safetensors", ".onnx", ".json"):
            raise AffectlensError(f"{path}: not a model file (expected .safetensors or .onnx with a .json sidecar, "
                                  "or an ensemble card .json)")
        return path
    if text in STANDARD_ALIASES:
        raise AffectlensError(
            f"no {text} model installed ({TABLE_FILE.parent} has none); pass a model explicitly: "
            "a run folder, a .safetensors or an .onnx file with its .json sidecar"
        )
    valid = _valid_names()
    raise AffectlensError(
        f"model '{text}' is neither a shipped model ({', '.join(valid) or 'none installed'}) nor an existing path"
    )
