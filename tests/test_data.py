"""Dataset loaders, preprocessing and splits, on real data from ../shared and on files written in
the exact published layouts (fer2013.csv, fer2013new.csv)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from affectlens.config_io import load_config
from affectlens.data.augment import AugmentConfig, build_train_augmentation
from affectlens.data.batches import BatchDataset
from affectlens.data.crops import ten_crop_views
from affectlens.data.dataset import concatenate
from affectlens.data.ferplus import majority_labels, soft_labels
from affectlens.data.manifest import load_manifest
from affectlens.data.preprocessing import Normalization
from affectlens.data.registry import load_dataset
from affectlens.data.splits import holdout_split
from affectlens.errors import AffectlensError
from affectlens.training.config import TrainConfig

FER_HEADER = ["emotion", "pixels", "Usage"]
FERPLUS_HEADER = ["Usage", "Image name", "neutral", "happiness", "surprise", "sadness", "anger", "disgust",
                  "fear", "contempt", "unknown", "NF"]


@pytest.fixture(scope="module")
def fer(data_dir: Path):
    return load_dataset("fer2013", data_dir / "fer2013")


def write_fer2013_csv(path: Path, images: np.ndarray, labels: np.ndarray, usage: list[str]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FER_HEADER)
        for image, label, use in zip(images, labels, usage, strict=True):
            writer.writerow([int(label), " ".join(str(v) for v in image.reshape(-1)), use])


def test_fer2013_npz_official_counts(fer) -> None:
    assert len(fer) == 35887
    assert fer.split_names() == ["Training", "PublicTest", "PrivateTest"]
    train = fer.select_splits("Training")
    assert train.class_counts().tolist() == [3995, 436, 4097, 7215, 4830, 3171, 4965]
    assert fer.select_splits("PrivateTest").class_counts().tolist() == [491, 55, 528, 879, 594, 416, 626]
    assert fer.images.shape[1:] == (48, 48, 1) and fer.images.dtype == np.uint8


def test_fer2013_csv_roundtrip(tmp_path: Path, fer) -> None:
    idx = np.r_[0:5, 30000:30003]
    sub = fer.subset(idx)
    path = tmp_path / "fer2013.csv"
    write_fer2013_csv(path, sub.images[..., 0], sub.labels, list(sub.splits))
    loaded = load_dataset("auto", path)
    assert loaded.name == "fer2013"
    np.testing.assert_array_equal(loaded.images, sub.images)
    np.testing.assert_array_equal(loaded.labels, sub.labels)
    assert list(loaded.splits) == list(sub.splits)


def test_fer2013_csv_errors(tmp_path: Path) -> None:
    bad = tmp_path / "fer2013.csv"
    bad.write_text("emotion,Usage\n0,Training\n")
    with pytest.raises(AffectlensError, match="missing column.*pixels"):
        load_dataset("fer2013", bad)
    short = tmp_path / "short.csv"
    short.write_text("emotion,pixels,Usage\n3,1 2 3,Training\n")
    with pytest.raises(AffectlensError, match="row 2.*2304"):
        load_dataset("fer2013", short)
    with pytest.raises(AffectlensError, match="does not exist"):
        load_dataset("fer2013", tmp_path / "nope.csv")


def test_ferplus_majority_and_soft_labels() -> None:
    votes = np.array([
        [6, 2, 0, 0, 0, 0, 0, 0, 2, 0],  # neutral
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # not a face -> dropped
        [3, 0, 0, 0, 0, 0, 0, 0, 4, 3],  # unknown wins -> dropped
        [0, 5, 5, 0, 0, 0, 0, 0, 0, 0],  # tie -> first (happiness)
    ])
    assert majority_labels(votes).tolist() == [0, -1, -1, 1]
    soft = soft_labels(votes)
    np.testing.assert_allclose(soft[0, :2], [0.75, 0.25])
    np.testing.assert_allclose(soft[1], 0.0)


def test_ferplus_npz_counts(data_dir: Path) -> None:
    ferplus = load_dataset("ferplus", data_dir / "ferplus")
    assert ferplus.select_splits("PrivateTest").class_counts().tolist() == [1254, 925, 438, 439, 325, 22, 92, 26]
    assert ferplus.soft_labels.shape == (len(ferplus), 8)
    np.testing.assert_allclose(ferplus.soft_labels.sum(1), 1.0, atol=1e-5)


def test_ferplus_original_csv_pair(tmp_path: Path, data_dir: Path) -> None:
    """fer2013new.csv (votes) joined row by row with fer2013.csv (pixels), as FER+ publishes them."""
    raw = np.load(data_dir / "ferplus" / "ferplus.npz")
    rows = np.arange(40)
    votes, usage, names = raw["votes"][rows], raw["usage"][rows], raw["image_name"][rows]
    images, labels = raw["images"][rows], np.maximum(raw["fer2013_label"][rows], 0)
    fer_csv = tmp_path / "fer2013.csv"
    write_fer2013_csv(fer_csv, images, labels, list(usage))
    new_csv = tmp_path / "fer2013new.csv"
    with open(new_csv, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FERPLUS_HEADER)
        for v, u, n in zip(votes, usage, names, strict=True):
            writer.writerow([u, n, *v.tolist()])
    loaded = load_dataset("ferplus", new_csv, fer2013_csv=fer_csv)
    expected = majority_labels(votes)
    keep = (expected >= 0) & raw["has_image"][rows]
    np.testing.assert_array_equal(loaded.labels, expected[keep])
    np.testing.assert_array_equal(loaded.images[..., 0], images[keep])
    with pytest.raises(AffectlensError, match="fer2013_csv"):
        load_dataset("ferplus", new_csv)


def _write_folder(root: Path) -> None:
    rng = np.random.default_rng(0)
    for cls, mode, ext in [("negative", "L", ".png"), ("positive", "RGB", ".jpg"), ("positive", "RGBA", ".png")]:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(3):
            shape = (30 + i, 40) if mode == "L" else (30 + i, 40, len(mode))
            array = rng.integers(0, 255, shape, dtype=np.uint8)
            Image.fromarray(array, mode=mode).save(root / cls / f"{mode}_{i}{ext}")


def test_folder_dataset_mixed_formats(tmp_path: Path) -> None:
    _write_folder(tmp_path / "imgs")
    ds = load_dataset("folder", tmp_path / "imgs", image_size=32, channels=3)
    assert ds.class_names == ["negative", "positive"]
    assert ds.class_counts().tolist() == [3, 6]
    assert ds.images.shape == (9, 32, 32, 3)
    grey = load_dataset("folder", tmp_path / "imgs", image_size=24, channels=1)
    assert grey.images.shape == (9, 24, 24, 1)


def test_folder_dataset_with_split_folders(tmp_path: Path) -> None:
    _write_folder(tmp_path / "root" / "train")
    _write_folder(tmp_path / "root" / "test")
    ds = load_dataset("folder", tmp_path / "root")
    assert sorted(ds.split_names()) == ["test", "train"]
    assert len(ds.select_splits("train")) == 9


def test_folder_unreadable_image_is_named(tmp_path: Path) -> None:
    _write_folder(tmp_path / "imgs")
    whole = len(load_dataset("folder", tmp_path / "imgs"))
    bad = tmp_path / "imgs" / "positive" / "broken.jpg"
    bad.write_text("this is not an image")
    ds = load_dataset("folder", tmp_path / "imgs")  # left out and listed, the rest loads (issue 14)
    assert len(ds) == whole and [s["file"] for s in ds.meta["skipped"]] == [str(bad)]


def _manifest(tmp_path: Path, rows: list[list], header: list[str]) -> Path:
    img_dir = tmp_path / "frames"
    img_dir.mkdir(exist_ok=True)
    for i in range(4):
        Image.fromarray(np.full((20, 20, 3), i * 50, np.uint8)).save(img_dir / f"{i:05d}.jpg")
    path = tmp_path / "manifest.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_manifest_full_columns(tmp_path: Path) -> None:
    header = ["path", "label", "valence", "arousal", "subject", "video", "split"]
    rows = [["frames/00000.jpg", "Happy", 0.5, 0.2, "s1", "v1", "train"],
            ["frames/00001.jpg", "Sad", -0.4, "", "s1", "v1", "train"],
            ["frames/00002.jpg", "", 0.1, 0.3, "s2", "v2", "val"],
            [str(tmp_path / "frames/00003.jpg"), "Happy", 0.0, 0.0, "s2", "v2", "val"]]
    ds = load_manifest(_manifest(tmp_path, rows, header), image_size=16, channels=1)
    assert ds.class_names == ["Happy", "Sad"]
    assert ds.labels.tolist() == [0, 1, -1, 0]
    assert np.isnan(ds.arousal[1]) and ds.valence[0] == pytest.approx(0.5)
    assert ds.subjects.tolist() == ["s1", "s1", "s2", "s2"]
    assert ds.split_names() == ["train", "val"]
    assert ds.images.shape == (4, 16, 16, 1)
    batch = BatchDataset(ds).__getitems__([0, 2])
    assert batch["va"].shape == (2, 2) and batch["image"].shape == (2, 1, 16, 16)


def test_manifest_errors_name_the_row(tmp_path: Path) -> None:
    header = ["path", "label"]
    path = _manifest(tmp_path, [["frames/00000.jpg", "Happy"], ["frames/missing.jpg", "Sad"]], header)
    with pytest.raises(AffectlensError, match="row 3.*does not exist"):
        load_manifest(path)
    path = _manifest(tmp_path, [["frames/00000.jpg", "Happy"], ["frames/00001.jpg", "Bored"]], header)
    with pytest.raises(AffectlensError, match="row 3.*'Bored'"):
        load_manifest(path, class_names=["Happy", "Sad"])
    path = _manifest(tmp_path, [["frames/00000.jpg"]], ["path"])
    with pytest.raises(AffectlensError, match="label"):
        load_manifest(path)


def test_research_sets(data_dir: Path) -> None:
    ck = load_dataset("auto", data_dir / "ckplus48")
    assert len(ck) == 981 and len(np.unique(ck.subjects)) == 118
    senti = load_dataset("auto", data_dir / "twitter_sentibank")
    assert senti.class_counts().tolist() == [133, 470] and len(senti.split_names()) == 5
    va = load_dataset("auto", data_dir / "afewva_sample")
    assert va.has_regression_targets and len(va) == 42


def test_unknown_kind_and_option(data_dir: Path) -> None:
    with pytest.raises(AffectlensError, match="valid names"):
        load_dataset("imagenet", data_dir / "fer2013")
    with pytest.raises(AffectlensError, match="does not take option"):
        load_dataset("fer2013", data_dir / "fer2013", colour=True)


def test_normalization_modes(fer) -> None:
    images = fer.images[:500]
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    assert Normalization.fit("unit", images)(batch).min() >= 0
    sym = Normalization.fit("symmetric", images)(batch)
    assert sym.min() >= -1 and sym.max() <= 1 and sym.min() < -0.5
    mean_only = Normalization.fit("mean", images)(batch)
    assert abs(float(mean_only.mean())) < 0.01
    std = Normalization.fit("standardize", images)(batch)
    assert abs(float(std.std()) - 1) < 0.02
    with pytest.raises(AffectlensError):
        Normalization("zscore")


def test_augmentation_and_ten_crop() -> None:
    batch = torch.rand(4, 1, 48, 48)
    out = build_train_augmentation(AugmentConfig(crop_size=40), 48)(batch)
    assert out.shape == (4, 1, 40, 40)
    crops = torch.stack(ten_crop_views(batch, 40))
    assert crops.shape == (10, 4, 1, 40, 40)
    torch.testing.assert_close(crops[5], torch.flip(crops[0], dims=[-1]))


CAMERA_STEPS = ("illumination", "gamma", "blur", "motion_blur", "noise", "jpeg", "pose")


def _geometry_off(**camera: float) -> AugmentConfig:
    """Only the camera-shift steps: no crop, flip, affine or erasing to blur what each step does."""
    return AugmentConfig(crop_size=0, hflip=False, rotation=0, shift=0, scale_min=1, scale_max=1, erasing=0,
                         camera=camera)


@pytest.mark.parametrize("step", CAMERA_STEPS)
def test_each_camera_shift_step_changes_real_faces_and_keeps_grey_values_valid(data_dir: Path, step: str) -> None:
    faces = np.load(data_dir / "fer2013" / "fer2013_images.npz")["images"][:32]
    batch = torch.from_numpy(faces).float().div(255).unsqueeze(1)
    torch.manual_seed(0)
    out = build_train_augmentation(_geometry_off(**{step: 1.0}), 48)(batch)
    assert out.shape == batch.shape  # grey in, grey out (JPEG is coded as RGB inside)
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    changed = (out - batch).abs().flatten(1).mean(1)
    assert float((changed > 0.002).float().mean()) > 0.9, f"{step} left most faces as they were"
    assert float(changed.mean()) < 0.2, f"{step} destroyed the faces"  # a camera change, not noise


def test_camera_shift_is_off_unless_a_config_sets_it(tmp_path: Path) -> None:
    batch = torch.rand(8, 1, 48, 48)
    assert not AugmentConfig().camera.any
    assert torch.equal(build_train_augmentation(_geometry_off(), 48)(batch), batch)
    config = tmp_path / "camera.yaml"
    config.write_text("data: {kind: fer2013, path: x}\naugment:\n  camera: {jpeg: 0.2, blur: 0.1}\n")
    cfg = load_config(TrainConfig, config)
    assert cfg.augment.camera.jpeg == 0.2 and cfg.augment.camera.any
    config.write_text("data: {kind: fer2013, path: x}\naugment:\n  camera: {jpeg: 1.5}\n")
    with pytest.raises(AffectlensError, match="augment.camera.jpeg"):
        load_config(TrainConfig, config)


def test_grouped_holdout_keeps_subjects_apart(data_dir: Path) -> None:
    ck = load_dataset("ckplus", data_dir / "ckplus48")
    train_idx, val_idx = holdout_split(ck.labels, 0.2, seed=1, groups=ck.subjects)
    assert not set(ck.subjects[train_idx]) & set(ck.subjects[val_idx])
    assert 0.1 < len(val_idx) / len(ck) < 0.3


def test_concatenate_train_val(fer) -> None:
    joined = concatenate([fer.select_splits("PublicTest"), fer.select_splits("PrivateTest")])
    assert len(joined) == 3589 * 2


def test_config_yaml_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  name: baseline_cnn\noptim:\n  lr: 0.1\n")
    cfg = load_config(TrainConfig, path, ["optim.lr=0.001", "epochs=3", "data.train_splits=[Training,PublicTest]"])
    assert cfg.model.name == "baseline_cnn" and cfg.optim.lr == 0.001 and cfg.epochs == 3
    assert cfg.data.train_splits == ["Training", "PublicTest"]
    with pytest.raises(AffectlensError, match="unknown option.*optimiser.*valid"):
        load_config(TrainConfig, None, ["optimiser.lr=1"])
    with pytest.raises(AffectlensError, match="epochs: expected an integer"):
        load_config(TrainConfig, None, ["epochs=many"])
