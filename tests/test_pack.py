"""Packed stores on real faces: packing killed half-way resumes to the same store, and a store is a dataset."""

from __future__ import annotations

import json
import pickle
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from affectlens.cli import main
from affectlens.data.folder import load_folder
from affectlens.data.packed import IMAGES_FILE, INDEX_FILE, PROGRESS_FILE, STORE_FILE, load_packed
from affectlens.data.registry import guess_kind, load_dataset
from affectlens.errors import AffectlensError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def face_tree(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 FER2013 Training faces as JPEG files in a class-per-folder tree."""
    raw = np.load(data_dir / "fer2013" / "fer2013_images.npz")
    rows = np.flatnonzero(raw["usage"] == "Training")[:60]
    root = tmp_path_factory.mktemp("faces") / "tree"
    for i in rows.tolist():
        folder = root / str(raw["class_names"][raw["labels"][i]])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(raw["images"][i]).save(folder / f"{i:05d}.jpg", quality=90)
    return root


def pack(*args: str | Path) -> None:
    main(["pack", *map(str, args)])


KILL_AT_THIRD_CHUNK = textwrap.dedent("""
    import os, signal, sys
    from affectlens.data import packing
    write = packing._write_json

    def write_or_die(path, value):
        if path.name == "packing.json" and value["packed"] == 48:
            os.kill(os.getpid(), signal.SIGKILL)  # chunk 3's pixels are on disk, its record is not
        write(path, value)

    packing._write_json = write_or_die
    from affectlens.cli import main
    main(sys.argv[1:])
""")


def test_packing_killed_half_way_resumes_to_the_same_images(face_tree: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    whole = tmp_path / "whole"
    pack(face_tree, "-o", whole, "--chunk-size", "16")

    store = tmp_path / "store"
    killed = subprocess.run([sys.executable, "-c", KILL_AT_THIRD_CHUNK, "pack", str(face_tree), "-o", str(store),
                             "--chunk-size", "16"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert json.loads((store / PROGRESS_FILE).read_text())["packed"] == 32
    assert not (store / STORE_FILE).exists()
    with pytest.raises(AffectlensError, match="packing stopped at 32 of 60 images"):
        load_packed(store)

    capsys.readouterr()
    pack(face_tree, "-o", store, "--chunk-size", "16")  # the same command again: no --exist-ok needed
    assert "resumed after 32" in capsys.readouterr().out
    assert not (store / PROGRESS_FILE).exists()
    assert (store / IMAGES_FILE).read_bytes() == (whole / IMAGES_FILE).read_bytes()

    packed, decoded = load_packed(store), load_folder(face_tree, in_memory=True)
    assert decoded.images is not None and len(packed) == len(decoded) == 60
    np.testing.assert_array_equal(packed.batch(np.arange(60)), decoded.images)
    np.testing.assert_array_equal(packed.labels, decoded.labels)
    assert packed.class_names == decoded.class_names
    assert list(packed.source_ids) == list(decoded.source_ids)  # type: ignore[arg-type]


def test_a_store_is_not_overwritten_and_unreadable_files_are_left_out(face_tree: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    for file in sorted(face_tree.rglob("*.jpg"))[:20]:
        (tree / file.parent.name).mkdir(parents=True, exist_ok=True)
        (tree / file.parent.name / file.name).write_bytes(file.read_bytes())
    broken = next(iter(sorted(tree.rglob("*.jpg"))))
    broken.write_bytes(b"not a jpeg")
    store = tmp_path / "store"
    pack(tree, "-o", store)
    index = np.load(store / INDEX_FILE)
    assert index["readable"].sum() == 19 and len(index["readable"]) == 20
    dataset = load_packed(store)
    assert len(dataset) == 19 and str(broken) in {s["file"] for s in dataset.meta["skipped"]}

    with pytest.raises(SystemExit) as refused:
        pack(face_tree, "-o", store)
    assert refused.value.code == 2 and len(load_packed(store)) == 19  # the store is unchanged
    pack(face_tree, "-o", store, "--exist-ok", "--image-size", "32", "--channels", "3")
    replaced = load_packed(store)
    assert len(replaced) == 60 and replaced.image_size == (32, 32) and replaced.channels == 3

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit):
        pack(face_tree, "-o", other)  # a folder holding something else is refused too
    assert (other / "notes.txt").read_text() == "mine"


def test_a_store_serves_every_loader_workers_and_training(face_tree: Path, tmp_path: Path) -> None:
    import torch
    from torch.utils.data import DataLoader

    from affectlens.config_io import load_config
    from affectlens.data.batches import BatchDataset, keep_batch
    from affectlens.training import runs
    from affectlens.training.config import TrainConfig

    store = tmp_path / "store"
    pack(face_tree, "-o", store)
    assert guess_kind(store) == "packed"
    dataset = load_dataset("auto", store)
    half = dataset.subset(np.arange(0, 60, 2))
    assert half.store is not None and half.store.rows.tolist() == list(range(0, 60, 2))  # a view, no pixels copied
    assert len(pickle.dumps(half.store)) < 2000  # workers get the file name and rows, never the map
    grey_to_rgb = load_dataset("packed", store, image_size=40, channels=3)
    assert grey_to_rgb.batch(np.arange(4)).shape == (4, 40, 40, 3)

    order = np.random.default_rng(0).permutation(60)
    loader = DataLoader(BatchDataset(dataset), batch_size=8, sampler=order.tolist(), collate_fn=keep_batch,
                        num_workers=2)
    read = torch.cat([batch["image"] for batch in loader]).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(read, dataset.batch(order))

    cfg = load_config(TrainConfig, None, [
        f"data.path={store}", "data.kind=packed", "data.val_fraction=0.2", "data.test_split=null",
        "model.name=baseline_cnn", "epochs=1", "batch_size=16", "threads=1", "augment.crop_size=40",
        f"output_dir={tmp_path / 'runs'}", "run_name=packed"])
    assert runs.train(cfg)["epochs"] == 1
    card = json.loads((tmp_path / "runs" / "packed" / "best.json").read_text())
    assert card["class_names"] == dataset.class_names and "48 images" in card["training_data"]
