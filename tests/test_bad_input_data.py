"""Bad input in datasets, checkpoints and training options, one table row each, through the real command line.

The same table and checks as :mod:`test_bad_input` (``Case`` rows run in-process through
:func:`affectlens.cli.main`): error rows print exactly one ``affectlens: error:`` line and never a
traceback, and nothing is dropped or ignored without a word. A row may also ``setup`` the run,
e.g. to make a class folder unreadable: the tests run as root, whom ``chmod 000`` does not stop,
so the refusal a user meets is simulated where the folder is listed.
"""

from __future__ import annotations

import argparse
import errno
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import yaml
from PIL import Image
from test_bad_input import Case, World, run_case

if TYPE_CHECKING:
    from conftest import RunMain

CLASSES = ["angry", "happy", "sad"]


# ------------------------------------------------------------------------------------------ inputs
def class_folders(root: Path, classes: list[str], per_class: int = 8, seed: int = 0) -> Path:
    """``root/<class>/<i>.png``: random 48x48 grey images, ``per_class`` in each class folder."""
    rng = np.random.default_rng(seed)
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)).save(root / cls / f"{i}.png")
    return root


def run_folder(folder: Path, data: Path, runs: Path, checkpoint: bytes | None) -> Path:
    """A run folder as ``train`` leaves it: its config, and ``checkpoint.pt`` holding ``checkpoint``."""
    from affectlens.config_io import load_config, save_config
    from affectlens.training.config import TrainConfig

    folder.mkdir(parents=True)
    cfg = load_config(TrainConfig, None, [f"data.path={data}", "data.kind=folder", "model.name=fast_cnn", "epochs=1",
                                          "threads=1", f"output_dir={runs}", f"run_name={folder.name}"])
    save_config(cfg, folder / "config.yaml")
    if checkpoint is not None:
        (folder / "checkpoint.pt").write_bytes(checkpoint)
    return folder


def torch_bytes(value: object) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    import torch

    root = tmp_path_factory.mktemp("bad_input_data")
    class_folders(root / "three", CLASSES)  # one of them made unreadable by a row's setup
    class_folders(root / "with_empty", ["happy", "sad"], seed=1)
    (root / "with_empty" / "disgust").mkdir()  # a class folder with nothing in it
    class_folders(root / "inside", ["happy", "sad"], seed=2)  # reports are refused inside it
    (root / "empty.npz").write_bytes(b"")
    (root / "a_file.txt").write_text("I am a file, not a folder\n")
    runs = root / "runs"
    runs.mkdir()
    weights = torch_bytes({"model": {"w": torch.zeros(4096)}, "epoch": 1})
    run_folder(root / "run_zero", root / "three", runs, b"")
    run_folder(root / "run_cut", root / "three", runs, weights[: len(weights) // 2])
    run_folder(root / "run_pickled", root / "three", runs, torch_bytes({"model": argparse.Namespace(lr=0.1)}))
    run_folder(root / "run_resume", root / "three", runs, None)
    (root / "other.yaml").write_text(yaml.safe_dump({"data": {"kind": "folder", "path": str(root / "three")},
                                                     "optim": {"lr": 0.1}}))
    (root / "dup.yaml").write_text(f"data: {{kind: folder, path: {root / 'three'}}}\nmodel: {{name: fast_cnn}}\n"
                                   f"optim:\n  lr: 0.01\n  lr: 0.1\nepochs: 1\nthreads: 1\noutput_dir: {runs}\n")
    return World(root, root)


def unreadable(relative: str) -> Callable[[World, pytest.MonkeyPatch], None]:
    """Setup: listing ``relative`` fails as ``chmod 000`` makes it fail for anyone but root."""
    def setup(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
        locked = os.path.abspath(world.p(relative))
        real_scandir, real_listdir = os.scandir, os.listdir

        def refuse(path: object) -> None:
            if isinstance(path, str | os.PathLike) and os.path.abspath(os.fspath(path)) == locked:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))

        def scandir(path: object = ".") -> object:
            refuse(path)
            return real_scandir(path)  # type: ignore[arg-type]

        def listdir(path: object = ".") -> list:
            refuse(path)
            return real_listdir(path)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "scandir", scandir)
        monkeypatch.setattr(os, "listdir", listdir)

    return setup


# ------------------------------------------------------------------------------------------- table
@dataclass
class DataCase(Case):
    """A :class:`Case` that may prepare its run (``setup(world, monkeypatch)``) before the command starts."""

    setup: Callable[[World, pytest.MonkeyPatch], None] | None = None


def check_nothing_inside(relative: str) -> Callable[[World, str, str], None]:
    def check(world: World, out: str, err: str) -> None:
        assert not world.p(relative).exists(), "an output was written inside the dataset folder"
    return check


def check_never_unsafe(world: World, out: str, err: str) -> None:
    assert "weights_only" not in err, "the message suggests loading pickles unsafely"


#: train quickly on the tiny class folders: one epoch, one thread, a run folder of the row's own
TRAIN = ["--arch", "fast_cnn", "--epochs", "1", "--set", "threads=1", "--out", "{root}/runs"]


def train_on(data: str, run: str) -> list[str]:
    return ["train", "--data", f"{{root}}/{data}", "--kind", "folder", *TRAIN, "--run-name", run]


CASES = [
    # --- 1. data silently dropped
    DataCase("unreadable class folder: train refuses, naming it", train_on("three", "unreadable"), 2,
             stderr=["three/sad", "cannot be read", "Permission denied"], setup=unreadable("three/sad")),
    DataCase("unreadable class folder: pack refuses, naming it", ["pack", "{root}/three", "-o", "{root}/store_sad"],
             2, stderr=["three/sad", "cannot be read"], setup=unreadable("three/sad")),
    DataCase("unreadable class folder: inspect refuses, naming it", ["inspect", "{root}/three", "-o",
                                                                     "{root}/rep_sad", "--no-near"], 2,
             stderr=["three/sad", "cannot be read"], setup=unreadable("three/sad")),
    DataCase("empty class folder: train warns, naming it", train_on("with_empty", "with_empty"), 0,
             stderr=["affectlens: warning:", "disgust", "no images", "left out"]),
    DataCase("empty class folder: pack warns, naming it", ["pack", "{root}/with_empty", "-o", "{root}/store_empty"],
             0, stderr=["affectlens: warning:", "disgust", "no images", "left out"]),
    DataCase("empty class folder: an inspect finding", ["inspect", "{root}/with_empty", "-o", "{root}/rep_empty",
                                                        "--no-near"], 0,
             stdout=["HIGH", "1 class folder holds no images (disgust)", "class disgust is left out"]),
    DataCase("split --group-by subject without subject ids", ["split", "{root}/three", "-o", "{root}/by_subject.csv",
                                                             "--group-by", "subject"], 2,
             stderr=["--group-by subject", "no subject ids", "'subject' column"],
             check=check_nothing_inside("by_subject.csv")),
    DataCase("inspect report inside the dataset folder", ["inspect", "{root}/inside", "-o", "{root}/inside/report",
                                                          "--no-near"], 2,
             stderr=["inside/report", "inside the dataset folder"], check=check_nothing_inside("inside/report")),
    DataCase("evaluate report inside the dataset folder", ["evaluate", "--data", "{root}/inside", "-o",
                                                           "{root}/inside/happy/eval"], 2,
             stderr=["inside/happy/eval", "inside the dataset folder"],
             check=check_nothing_inside("inside/happy/eval")),
    # --- 2. empty, truncated or unsafe checkpoints and archives
    DataCase("zero-byte checkpoint for --resume", ["train", "--resume", "{root}/run_zero"], 2,
             stderr=["run_zero/checkpoint.pt", "empty or truncated checkpoint", "0 bytes"]),
    DataCase("truncated checkpoint for --resume", ["train", "--resume", "{root}/run_cut"], 2,
             stderr=["run_cut/checkpoint.pt", "empty or truncated checkpoint"], check=check_never_unsafe),
    DataCase("checkpoint of pickled objects: refused, never loaded unsafely", ["train", "--resume",
                                                                               "{root}/run_pickled"], 2,
             stderr=["run_pickled/checkpoint.pt", "weights only"], check=check_never_unsafe),
    DataCase("zero-byte .npz to inspect", ["inspect", "--data", "{root}/empty.npz", "--kind", "fer2013", "-o",
                                           "{root}/rep_npz"], 2,
             stderr=["empty.npz", "empty or truncated .npz archive", "0 bytes"]),
    DataCase("zero-byte .npz to evaluate", ["evaluate", "--data", "{root}/empty.npz", "--kind", "fer2013", "-o",
                                            "{root}/eval_npz"], 2,
             stderr=["empty.npz", "empty or truncated .npz archive"]),
    # --- 3. out-of-range values: one line naming the option and its range
    DataCase("inspect --channels 2", ["inspect", "{root}/three", "--channels", "2", "-o", "{root}/rep_ch"], 2,
             stderr=["--channels", "'1', '3'"]),
    DataCase("pack --channels 2", ["pack", "{root}/three", "--channels", "2", "-o", "{root}/store_ch"], 2,
             stderr=["--channels", "'1', '3'"]),
    DataCase("--set data.image_size above the limit", [*train_on("three", "huge"), "--set",
                                                       "data.image_size=100000"], 2,
             stderr=["data.image_size", "[1, 1024]", "100000"]),
    DataCase("pack --image-size above the limit", ["pack", "{root}/three", "--image-size", "100000", "-o",
                                                   "{root}/store_huge"], 2,
             stderr=["--image-size", "1<=x<=1024"]),
    DataCase("inspect --set image_size above the limit", ["inspect", "{root}/three", "--set", "image_size=100000",
                                                          "-o", "{root}/rep_huge"], 2,
             stderr=["image_size=100000", "1 to 1024"]),
    DataCase("train --out is an existing file", ["train", "--data", "{root}/three", "--kind", "folder", "--arch",
                                                 "fast_cnn", "--epochs", "1", "--out", "{root}/a_file.txt"], 2,
             stderr=["a_file.txt", "existing file"], intact=["a_file.txt"]),
    DataCase("train -c /dev/zero", ["train", "-c", "/dev/zero"], 2,
             stderr=["/dev/zero", "too large for a config file"]),
    # --- 4. options silently ignored or misread
    DataCase("duplicate key in a YAML config", ["train", "-c", "{root}/dup.yaml"], 2,
             stderr=["dup.yaml:5", "'lr' is given twice", "lines 4 and 5"]),
    DataCase("optim.lr=0", [*train_on("three", "lr0"), "--set", "optim.lr=0"], 2,
             stderr=["--set optim.lr=0", "optim.lr", "> 0"]),
    DataCase("select_metric=val_ccc on a classification run", [*train_on("three", "ccc"), "--set",
                                                               "select_metric=val_ccc"], 2,
             stderr=["select_metric", "val_ccc", "classification run"]),
    DataCase("--trainable-layers without --pretrained", [*train_on("three", "frozen"), "--trainable-layers", "2"], 2,
             stderr=["--trainable-layers", "--pretrained", "model.trainable_layers"]),
    DataCase("--resume with a -c that differs from the run's config", ["train", "--resume", "{root}/run_resume", "-c",
                                                                       "{root}/other.yaml"], 2,
             stderr=["--resume", "run_resume/config.yaml", "-c", "other.yaml", "optim.lr: 0.1, the run's 0.01"]),
    DataCase("--resume with options that differ from the run's config", ["train", "--resume", "{root}/run_resume",
                                                                         "--lr", "0.5"], 2,
             stderr=["--resume", "optim.lr: 0.5, the run's 0.01"]),
    DataCase("--resume with the run's own config: allowed (then the empty checkpoint is named)",
             ["train", "--resume", "{root}/run_zero", "-c", "{root}/run_zero/config.yaml", "--epochs", "2"], 2,
             stderr=["run_zero/checkpoint.pt", "empty or truncated checkpoint"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_data(case: DataCase, world: World, run_main: RunMain, monkeypatch: pytest.MonkeyPatch) -> None:
    run_case(case, world, run_main, monkeypatch, setup=case.setup)
