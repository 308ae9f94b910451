"""Aff-Wild2 readers on small trees built in exactly the published layout:
annotations/{EXPR_Classification_Challenge,VA_Estimation_Challenge}/<Set>/<video>.txt and
cropped_aligned/<video>/<frame:05d>.jpg."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from affectlens.data.affwild2 import EXPR_CLASSES, video_id
from affectlens.data.doctor import inspect_dataset
from affectlens.data.registry import load_dataset
from affectlens.data.splits import make_splits
from affectlens.errors import AffectlensError

EXPR_HEADER = "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other"

# video -> (set, per-frame expression labels, frames with no cropped face)
EXPR = {
    "video1": ("Train_Set", [0, 1, -1, 3, 7, 3], {4}),
    "10-60-1280x720_left": ("Train_Set", [4, 4, 5], set()),
    "10-60-1280x720_right": ("Train_Set", [6, -1, 2], set()),
    "video9": ("Validation_Set", [0, 0], set()),
}
VA = {
    "video1": ("Train_Set", [(0.5, -0.25), (-5, -5), (1.0, 0.0), (0.1, 0.2), (-1, 1), (0.3, -5)], {4}),
    "10-60-1280x720_left": ("Train_Set", [(0.2, 0.4), (0.25, 0.45)], set()),
}


def _frame(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((24, 24, 3), value, np.uint8)).save(path)


def build_tree(root: Path) -> Path:
    """Annotation files and cropped-aligned frames for the videos above; returns the root."""
    for video, (subset, labels, absent) in EXPR.items():
        folder = root / "annotations" / "EXPR_Classification_Challenge" / subset
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{video}.txt").write_text(EXPR_HEADER + "\n" + "\n".join(str(v) for v in labels) + "\n")
        for k in range(1, len(labels) + 1):
            if k not in absent:
                _frame(root / "cropped_aligned" / video / f"{k:05d}.jpg", 10 * k)
    for video, (subset, pairs, _) in VA.items():
        folder = root / "annotations" / "VA_Estimation_Challenge" / subset
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{video}.txt").write_text("valence,arousal\n" + "\n".join(f"{v},{a}" for v, a in pairs) + "\n")
    return root


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    return build_tree(tmp_path / "Aff-Wild2")


def test_expression_reader_joins_frames(tree: Path) -> None:
    ds = load_dataset("affwild2_expr", tree / "annotations" / "EXPR_Classification_Challenge")
    assert ds.class_names == EXPR_CLASSES
    assert ds.split_names() == ["Train_Set", "Validation_Set"]
    got = sorted(zip(ds.source_ids.tolist(), ds.labels.tolist(), strict=True))
    expected = sorted([("video1/00001.jpg", 0), ("video1/00002.jpg", 1), ("video1/00005.jpg", 7),
                       ("video1/00006.jpg", 3), ("10-60-1280x720_left/00001.jpg", 4),
                       ("10-60-1280x720_left/00002.jpg", 4), ("10-60-1280x720_left/00003.jpg", 5),
                       ("10-60-1280x720_right/00001.jpg", 6), ("10-60-1280x720_right/00003.jpg", 2),
                       ("video9/00001.jpg", 0), ("video9/00002.jpg", 0)])
    assert got == expected  # -1 frames dropped, frame 4 of video1 has no face crop
    assert ds.meta["missing_frames"] == 1 and ds.meta["unlabelled_frames"] == 2
    left = ds.subjects == "10-60-1280x720_left"
    assert set(ds.videos[left]) == {"10-60-1280x720"} and set(ds.videos[ds.subjects == "10-60-1280x720_right"]) \
        == {"10-60-1280x720"}
    assert ds.frames[left].tolist() == [1, 2, 3]
    assert ds.images is None and ds.image(0).shape == (112, 112, 3)
    first = ds.source_ids.tolist().index("video1/00002.jpg")
    assert abs(int(ds.image(first).mean()) - 20) <= 2  # frame 2 was written with grey level 20


def test_expression_reader_options(tree: Path) -> None:
    train = tree / "annotations" / "EXPR_Classification_Challenge" / "Train_Set"
    ds = load_dataset("affwild2_expr", train, keep_unlabelled=True, image_size=48, channels=1, in_memory=True)
    assert ds.splits is None and (ds.labels == -1).sum() == 2
    assert ds.images.shape == (len(ds), 48, 48, 1)
    one = load_dataset("affwild2_expr", train / "video1.txt", frames_dir=tree / "cropped_aligned")
    assert one.labels.tolist() == [0, 1, 7, 3]
    assert video_id("abc_right") == "abc" and video_id("abc") == "abc"


def test_valence_arousal_reader(tree: Path) -> None:
    ds = load_dataset("affwild2_va", tree / "annotations" / "VA_Estimation_Challenge")
    assert ds.class_names == [] and (ds.labels == -1).all() and ds.has_regression_targets
    got = {sid: (round(float(v), 3), round(float(a), 3))
           for sid, v, a in zip(ds.source_ids, ds.valence, ds.arousal, strict=True)}
    assert got == {"video1/00001.jpg": (0.5, -0.25), "video1/00003.jpg": (1.0, 0.0),
                   "video1/00005.jpg": (-1.0, 1.0), "10-60-1280x720_left/00001.jpg": (0.2, 0.4),
                   "10-60-1280x720_left/00002.jpg": (0.25, 0.45)}
    kept = load_dataset("affwild2_va", tree / "annotations" / "VA_Estimation_Challenge", keep_unlabelled=True)
    row = kept.source_ids.tolist().index("video1/00006.jpg")
    assert kept.valence[row] == pytest.approx(0.3) and np.isnan(kept.arousal[row])
    assert np.isnan(kept.valence[kept.source_ids.tolist().index("video1/00002.jpg")])


@pytest.mark.parametrize("content, message", [
    ("Neutral,Anger,Fear\n0\n", "line 1: expected the header"),
    (EXPR_HEADER + "\n0\n1\n9\n", "line 4: label 9 is outside -1..7"),
    (EXPR_HEADER + "\n0\nhappy\n", "line 3: 'happy' is not an integer"),
])
def test_expression_format_errors_name_file_and_line(tree: Path, content: str, message: str) -> None:
    file = tree / "annotations" / "EXPR_Classification_Challenge" / "Train_Set" / "video1.txt"
    file.write_text(content)
    with pytest.raises(AffectlensError, match=message) as info:
        load_dataset("affwild2_expr", file)
    assert "video1.txt" in str(info.value)


def test_va_and_layout_errors(tree: Path, tmp_path: Path) -> None:
    file = tree / "annotations" / "VA_Estimation_Challenge" / "Train_Set" / "video1.txt"
    file.write_text("valence,arousal\n0.1,0.2\n1.5,0.0\n")
    with pytest.raises(AffectlensError, match="line 3: valence 1.5 is outside"):
        load_dataset("affwild2_va", file)
    file.write_text("arousal,valence\n0.1,0.2\n")
    with pytest.raises(AffectlensError, match="line 1: expected the header valence,arousal"):
        load_dataset("affwild2_va", file)
    lonely = tmp_path / "elsewhere" / "Train_Set"
    lonely.mkdir(parents=True)
    (lonely / "video1.txt").write_text(EXPR_HEADER + "\n0\n")
    with pytest.raises(AffectlensError, match="no 'cropped_aligned' frame folder"):
        load_dataset("affwild2_expr", lonely)
    (lonely / "ghost.txt").write_text(EXPR_HEADER + "\n0\n")
    with pytest.raises(AffectlensError, match="ghost.txt: no frame folder"):
        load_dataset("affwild2_expr", lonely, frames_dir=tree / "cropped_aligned")


def test_affwild2_inspection_and_grouped_split(tree: Path) -> None:
    ds = load_dataset("affwild2_expr", tree / "annotations" / "EXPR_Classification_Challenge")
    result = inspect_dataset(ds, progress=False)
    videos = result["groups"]["video"]
    assert videos["per_split"]["Train_Set"]["distinct"] == 2 and result["groups"]["subject"]["distinct"] == 4
    train = ds.select_splits("Train_Set")
    parts = make_splits(train, "grouped", "train=0.5,val=0.5", group_by="video", seed=0)
    # both people of 10-60-1280x720 stay on one side
    sides = {name: set(train.videos[idx]) for name, idx in parts.items()}
    assert not sides["train"] & sides["val"]
    # the synthetic frames are flat grey levels 10 * frame number: identical across videos, and blank
    assert result["duplicates"]["exact"]["groups"] == 3 and result["images"]["near_blank_count"] == len(ds)
