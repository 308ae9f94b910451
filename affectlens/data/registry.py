"""One entry point, :func:`load_dataset`, for every dataset format affectlens reads."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from affectlens.data.affwild2 import load_affwild2_expr, load_affwild2_va
from affectlens.data.dataset import EmotionDataset
from affectlens.data.fer2013 import load_fer2013
from affectlens.data.ferplus import load_fer2013_ferplus, load_ferplus
from affectlens.data.folder import load_folder
from affectlens.data.manifest import load_manifest
from affectlens.data.packed import is_store, load_packed
from affectlens.data.research_sets import load_afewva, load_ckplus, load_sentibank
from affectlens.errors import AffectlensError, unknown_name_error

LOADERS: dict[str, Callable[..., EmotionDataset]] = {
    "fer2013": load_fer2013,
    "ferplus": load_ferplus,
    "fer2013_ferplus": load_fer2013_ferplus,
    "folder": load_folder,
    "manifest": load_manifest,
    "ckplus": load_ckplus,
    "sentibank": load_sentibank,
    "afewva": load_afewva,
    "affwild2_expr": load_affwild2_expr,
    "affwild2_va": load_affwild2_va,
    "packed": load_packed,
}


def list_dataset_kinds() -> list[str]:
    return sorted(LOADERS)


def loader_options(kind: str) -> tuple[str, ...]:
    """The options the loader of ``kind`` takes (its keyword parameters after ``path``).

    Read from the loader's signature, so a loader added to :data:`LOADERS` needs no separate
    list; configs, ``load_dataset`` and the command line all ask here.
    """
    if kind not in LOADERS:
        raise unknown_name_error("dataset kind", kind, LOADERS)
    return tuple(p for p in inspect.signature(LOADERS[kind]).parameters if p != "path")


def loader_accepts(kind: str, option: str) -> bool:
    """Whether the loader of ``kind`` takes ``option`` (e.g. ``image_size``: it resizes itself).

    False for a kind not known yet (``auto`` before guessing), whose loader cannot be asked.
    """
    return kind in LOADERS and option in loader_options(kind)


def guess_kind(path: Path) -> str:
    """Guess the format from the path so `affectlens inspect some/folder` needs no --kind."""
    name = path.name.lower()
    if is_store(path):
        return "packed"
    if path.is_dir():
        for kind in ("ferplus", "fer2013", "ckplus", "sentibank", "afewva"):
            if kind in name or (kind == "ckplus" and "ck" in name) or (kind == "sentibank" and "senti" in name):
                return kind
        return "folder"
    if path.suffix.lower() == ".csv":
        with open(path, encoding="utf-8-sig", errors="replace") as handle:
            header = handle.readline(65536).lower()
            first_row = handle.readline(65536)
        columns = {c.strip() for c in header.split(",")}
        if "image name" in header and "neutral" in header:
            return "ferplus"
        # a FER2013 CSV with a misspelt header is still FER2013 (its loader then names the missing column)
        if "pixels" in columns or ("emotion" in columns and "path" not in columns) or _holds_pixels(first_row):
            return "fer2013"
        return "manifest"
    if path.suffix.lower() == ".npz":
        for kind in ("ferplus", "fer2013", "ckplus", "sentibank", "afewva"):
            if kind in name or (kind == "ckplus" and "ck" in name) or (kind == "sentibank" and "senti" in name):
                return kind
    raise AffectlensError(f"{path}: cannot tell the dataset format; pass its kind ({', '.join(list_dataset_kinds())})")


def _holds_pixels(row: str) -> bool:
    """True when a CSV row has a cell of hundreds of space-separated integers (FER2013's ``pixels``)."""
    return any(len(cell.split()) >= 100 and "".join(cell.split()).isdigit() for cell in row.split(","))


def load_dataset(kind: str, path: str | Path, **options) -> EmotionDataset:
    """Load a dataset of a given ``kind`` ("auto" guesses it) with loader-specific ``options``.

    Options a loader does not take are rejected with the list it does take, so a typo in a config
    is reported instead of silently ignored.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise AffectlensError(f"{path}: dataset path does not exist")
    if kind == "auto":
        kind = guess_kind(path)
    accepted = loader_options(kind)  # an unknown kind fails here, with the known ones
    options = {k: v for k, v in options.items() if v is not None}
    bad = [k for k in options if k not in accepted]
    if bad:
        raise AffectlensError(
            f"dataset kind '{kind}' does not take option(s) {', '.join(bad)}; it takes: {', '.join(accepted)}"
        )
    return LOADERS[kind](path, **options)
