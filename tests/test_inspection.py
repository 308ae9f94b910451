"""Dataset doctor: inspection, duplicate search, reports, splits and the inspect/split commands,
on small synthetic datasets with planted problems and on the real FER2013 / CK+ in ../shared."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import imagehash
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from affectlens.cli.data import inspect_command, split_command
from affectlens.data import duplicates as dup
from affectlens.data.dataset import EmotionDataset
from affectlens.data.doctor import inspect_dataset, js_divergence, write_inspection_report
from affectlens.data.manifest import load_manifest
from affectlens.data.registry import load_dataset
from affectlens.data.splits import make_splits, parse_fractions
from affectlens.errors import AffectlensError


def _faces(n: int, seed: int = 0, size: int = 32) -> np.ndarray:
    """Smooth random images (upsampled noise), so perceptual hashes are spread out like photos'."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 6, 6), dtype=np.uint8)
    return np.stack([np.asarray(Image.fromarray(s).resize((size, size), Image.Resampling.BICUBIC)) for s in small])


def planted_dataset() -> EmotionDataset:
    """60 train / 20 val images with one of each problem the doctor must find."""
    images = _faces(80)
    labels = np.array([0, 1] * 28 + [2] * 4 + [0, 1] * 10)
    splits = np.array(["train"] * 60 + ["val"] * 20)
    videos = np.array([f"v{i % 10}" for i in range(56)] + ["r1", "r1", "r1", "r2"] + [f"w{i}" for i in range(20)])
    videos[60] = "v3"  # a train video also in val: leakage
    images[61] = images[0]  # val copy of a train image, same label (0)
    labels[61] = 0
    images[5] = images[4]  # identical pair inside train with different labels (0 and 1)
    noisy = images[2].astype(np.int16) + np.random.default_rng(1).integers(-2, 3, images[2].shape)
    images[62] = np.clip(noisy, 0, 255).astype(np.uint8)  # near copy of train image 2 in val
    labels[62] = labels[2]
    images[70] = 128  # blank
    return EmotionDataset(name="planted", class_names=["calm", "happy", "rare"], labels=labels, images=images,
                          splits=splits, videos=videos, source_ids=np.array([f"img{i}" for i in range(80)]))


@pytest.fixture(scope="module")
def planted() -> tuple[EmotionDataset, dict]:
    ds = planted_dataset()
    return ds, inspect_dataset(ds, progress=False)


def test_planted_problems_are_found(planted) -> None:
    _, result = planted
    exact = result["duplicates"]["exact"]
    assert exact["groups"] == 2 and exact["extra_copies"] == 2
    assert exact["copies_of_reference_in"] == {"val": 1}
    assert exact["label_conflict_groups"] == 1 and exact["extra_copies_within_splits"] == 1
    near = result["duplicates"]["near"]
    assert near["near_copies_of_reference_in"] == {"val": 1}
    pair = [p for p in near["listed"] if {p["a"]["id"], p["b"]["id"]} == {"img2", "img62"}]
    assert pair and pair[0]["distance"] <= dup.NEAR_THRESHOLD
    assert result["images"]["near_blank_count"] == 1 and result["images"]["near_blank"][0]["id"] == "img70"
    videos = result["groups"]["video"]
    rare = videos["per_split"]["train"]["per_class"][2]
    assert rare == {"class": "rare", "samples": 4, "distinct": 2, "largest_id": "r1", "largest_count": 3,
                    "largest_share": 0.75}
    overlap = [o for o in videos["overlaps"] if o["split"] == "val"][0]
    assert overlap["shared_ids"] == 1 and overlap["samples_in_shared"] == 1
    messages = " ".join(w["message"] for w in result["warnings"])
    assert "rare in train: 4 frames from only 2 videos; one video (r1) supplies 75% of them" in messages
    assert "1 val image is pixel-identical to train images" in messages
    assert "1 video appears in both val and train (1 val frame, 5.0% of it)" in messages
    severities = [w["severity"] for w in result["warnings"]]
    assert severities == sorted(severities, key=["high", "medium", "info"].index)
    assert {r["topic"] for r in result["remedies"]} >= {"imbalance", "leakage", "duplicates", "groups"}
    json.dumps(result, allow_nan=False)


def test_class_distribution_and_divergence(planted) -> None:
    _, result = planted
    dist = result["class_distribution"]
    assert dist["counts"] == {"train": [28, 28, 4], "val": [11, 9, 0]}
    assert dist["imbalance"]["val"]["missing_classes"] == ["rare"]
    js, _ = js_divergence(np.array([28, 28, 4]), np.array([11, 9, 0]))
    assert result["split_divergence"]["comparisons"][0]["js_divergence"] == pytest.approx(js)
    assert result["split_divergence"]["comparisons"][0]["most_different"][0]["class"] == "rare"
    assert js_divergence(np.array([1, 0]), np.array([0, 1]))[0] == pytest.approx(1.0)
    assert js_divergence(np.array([3, 5]), np.array([6, 10]))[0] == pytest.approx(0.0)


def test_report_files_read_findings_first(planted, tmp_path: Path) -> None:
    ds, result = planted
    written = write_inspection_report(result, tmp_path / "rep", ds)
    md = written["markdown"].read_text()
    assert md.index("## Findings") < md.index("## What you can do") < md.index("## Class distribution")
    assert "**High**" in md and "| rare |" in md and "img61" in md
    for key in ("class_distribution", "class_shares", "groups", "duplicate_examples"):
        assert written[key].stat().st_size > 1000 and written[key].read_bytes()[:4] == b"\x89PNG"
    assert json.loads(written["json"].read_text())["dataset"]["samples"] == 80
    rows = list(csv.DictReader(open(written["duplicates_csv"])))
    assert {(r["kind"], r["id_a"], r["id_b"]) for r in rows} >= {("exact", "img0", "img61"), ("near", "img2", "img62")}


def test_phash_matches_imagehash_and_pair_search_is_exact() -> None:
    image = _faces(1, seed=3)[0]
    assert dup.hash_hex(dup.phash64(image)) == str(imagehash.phash(Image.fromarray(image)))
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, 3000, dtype=np.uint64)
    hashes[10] = hashes[5]
    hashes[11] = hashes[5] ^ np.uint64(0b1000)
    hashes[12] = hashes[7] ^ np.uint64(0b10110)
    i, j = np.triu_indices(len(hashes), 1)
    d = dup.hamming(hashes[i], hashes[j])
    expected = {(a, b, c) for a, b, c in zip(i[d <= 3], j[d <= 3], d[d <= 3], strict=True)}
    found = set(zip(*(x.tolist() for x in dup.near_pairs(hashes, 3)), strict=True))
    assert found == expected == {(5, 10, 0), (5, 11, 1), (10, 11, 1), (7, 12, 3)}
    old = dup.BRUTE_FORCE_LIMIT
    try:
        dup.BRUTE_FORCE_LIMIT = 10  # force the multi-index search
        assert set(zip(*(x.tolist() for x in dup.near_pairs(hashes, 3)), strict=True)) == expected
    finally:
        dup.BRUTE_FORCE_LIMIT = old
    cluster = np.zeros(500, np.uint64)  # 124,750 identical pairs, capped
    assert len(dup.near_pairs(cluster, 4, max_pairs=1000)[0]) == 1000


def test_fer2013_exact_duplicates_and_blank_images(data_dir: Path) -> None:
    fer = load_dataset("fer2013", data_dir / "fer2013")
    result = inspect_dataset(fer, near_duplicates=False, progress=False)
    exact = result["duplicates"]["exact"]
    assert exact["extra_copies_within_splits"] == 1279  # the known FER2013 number (README)
    assert exact["copies_of_reference_in"]["PublicTest"] > 0 and exact["copies_of_reference_in"]["PrivateTest"] > 0
    assert result["images"]["near_blank_count"] == 13
    assert result["class_distribution"]["counts"]["Training"] == [3995, 436, 4097, 7215, 4830, 3171, 4965]
    assert result["warnings"][0]["severity"] == "high"


def test_ckplus_subjects_per_class(data_dir: Path) -> None:
    ck = load_dataset("auto", data_dir / "ckplus48")
    result = inspect_dataset(ck, near_duplicates=False, progress=False)
    subjects = result["groups"]["subject"]
    assert subjects["distinct"] == 118
    contempt = [r for r in subjects["per_split"]["all"]["per_class"] if r["class"] == "Contempt"][0]
    assert contempt["samples"] == 54 and contempt["distinct"] == 18
    assert any("random image-level split" in w["message"] for w in result["warnings"])


def _folder_tree(root: Path) -> None:
    images = _faces(12, seed=5, size=40)
    for split in ("train", "val"):
        for c, cls in enumerate(("angry", "happy")):
            (root / split / cls).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(images[6 * (split == "val") + 3 * c + i]).save(root / split / cls / f"{i}.png")
    Image.fromarray(images[0]).save(root / "val" / "angry" / "copy_of_train.png")  # leaks into val
    Image.fromarray(images[1]).resize((20, 20)).save(root / "train" / "angry" / "tiny.png")


def test_inspect_command_on_class_folders(tmp_path: Path) -> None:
    _folder_tree(tmp_path / "faces")
    out = tmp_path / "report"
    run = CliRunner().invoke(inspect_command, [str(tmp_path / "faces"), "-o", str(out), "--image-size", "32"])
    assert run.exit_code == 0, run.output
    assert "val image is pixel-identical to train images" in run.output
    result = json.loads((out / "report.json").read_text())
    files = result["images"]["files"]
    assert files["distinct_sizes"] == 2 and files["small_count"] == 1
    assert result["class_distribution"]["counts"] == {"train": [4, 3], "val": [4, 3]}
    assert (out / "report.md").read_text().startswith("# Dataset report: faces")


def _video_manifest(root: Path, rows_extra: list[list[str]] | None = None) -> Path:
    images = _faces(24, seed=9)
    (root / "frames").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, image in enumerate(images):
        Image.fromarray(image).save(root / "frames" / f"{i:05d}.png")
        rows.append([f"frames/{i:05d}.png", ["Neutral", "Fear"][i % 2], f"s{i // 4}", f"vid{i // 2}"])
    path = root / "manifest.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "subject", "video"])
        writer.writerows(rows + (rows_extra or []))
    return path


def test_split_command_grouped_manifest_roundtrip(tmp_path: Path) -> None:
    manifest = _video_manifest(tmp_path / "data")
    out = tmp_path / "splits" / "split.csv"
    args = [str(manifest), "-o", str(out), "--fractions", "train=0.5,val=0.25,test=0.25", "--group-by", "video"]
    run = CliRunner().invoke(split_command, args)
    assert run.exit_code == 0, run.output
    assert "method stratified_grouped" in run.output and "videos: none shared" in run.output
    first = out.read_text()
    split = load_manifest(out)
    assert sorted(split.split_names()) == ["test", "train", "val"] and len(split) == 24
    for a in ("train", "val", "test"):
        for b in ("train", "val", "test"):
            if a < b:
                assert not set(split.videos[split.splits == a]) & set(split.videos[split.splits == b])
    assert CliRunner().invoke(split_command, [*args, "--exist-ok"]).exit_code == 0
    assert out.read_text() == first  # same seed, same split
    run = CliRunner().invoke(inspect_command, [str(out), "-o", str(tmp_path / "rep"), "--no-near"])
    assert run.exit_code == 0, run.output
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["groups"]["video"]["overlaps"] == [] and report["duplicates"]["near"] is None


def test_split_command_exports_npz_images(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "ck.csv"
    run = CliRunner().invoke(split_command, [str(data_dir / "ckplus48"), "-o", str(out), "--fractions", "0.8,0.2",
                                             "--group-by", "subject"])
    assert run.exit_code == 0, run.output
    ck = load_manifest(out, class_names=load_dataset("ckplus", data_dir / "ckplus48").class_names)
    assert len(ck) == 981 and (tmp_path / "ck_images" / "000980.png").exists()
    assert not set(ck.subjects[ck.splits == "train"]) & set(ck.subjects[ck.splits == "val"])


@pytest.mark.parametrize("rows, expected", [
    ([["frames/missing.png", "Fear", "s9", "v9"]], "row 26: image .*missing.png does not exist"),
    ([["frames/00000.png", "Joy", "s9", "v9"]], "row 26: label 'Joy' is not in the class list"),
])
def test_inspect_names_the_bad_row(tmp_path: Path, rows, expected) -> None:
    manifest = _video_manifest(tmp_path, rows)
    class_option = ["--set", "class_names=[Neutral,Fear]"]
    run = CliRunner().invoke(inspect_command, [str(manifest), "-o", str(tmp_path / "r"), *class_option])
    assert isinstance(run.exception, AffectlensError)
    assert len(str(run.exception).splitlines()) == 1
    assert re.search(expected, str(run.exception))


def test_inspect_missing_column_and_bad_options(tmp_path: Path, data_dir: Path) -> None:
    bad = tmp_path / "m.csv"
    bad.write_text("file,label\na.png,Fear\n")
    run = CliRunner().invoke(inspect_command, [str(bad)])
    assert isinstance(run.exception, AffectlensError) and "missing column(s) path" in str(run.exception)
    run = CliRunner().invoke(inspect_command, [str(data_dir / "fer2013"), "--image-size", "64"])
    assert isinstance(run.exception, AffectlensError) and "--image-size does not apply" in str(run.exception)


def test_make_splits_methods_and_errors(data_dir: Path) -> None:
    ck = load_dataset("ckplus", data_dir / "ckplus48")
    strat = make_splits(ck, "stratified", "train=0.8,test=0.2", seed=3)
    share = np.bincount(ck.labels[strat["test"]], minlength=7) / np.bincount(ck.labels, minlength=7)
    assert np.allclose(share, 0.2, atol=0.02)
    for method in ("grouped", "stratified_grouped"):
        parts = make_splits(ck, method, (0.7, 0.15, 0.15), group_by="subject", seed=1)
        assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(len(ck)))
        subjects = [set(ck.subjects[idx]) for idx in parts.values()]
        assert not (subjects[0] & subjects[1]) and not (subjects[0] & subjects[2]) and not (subjects[1] & subjects[2])
        assert abs(len(parts["train"]) / len(ck) - 0.7) < 0.05
        again = make_splits(ck, method, (0.7, 0.15, 0.15), group_by="subject", seed=1)
        assert all(np.array_equal(parts[k], again[k]) for k in parts)
    sg = make_splits(ck, "stratified_grouped", "train=0.8,test=0.2", group_by="subject", seed=0)
    test_share = np.bincount(ck.labels[sg["test"]], minlength=7) / len(sg["test"])
    assert np.abs(test_share - np.bincount(ck.labels, minlength=7) / len(ck)).max() < 0.03
    assert parse_fractions("0.8,0.2") == {"train": 0.8, "val": 0.2}
    with pytest.raises(AffectlensError, match="sum to 1"):
        parse_fractions("train=0.8,val=0.3")
    fer_like = EmotionDataset(name="x", class_names=["a", "b"], labels=np.array([0, 1] * 5),
                              images=np.zeros((10, 8, 8), np.uint8))
    with pytest.raises(AffectlensError, match="no subject or video ids"):
        make_splits(fer_like, "grouped", (0.5, 0.5))
    with pytest.raises(AffectlensError, match="valid names"):
        make_splits(fer_like, "random", (0.5, 0.5))
