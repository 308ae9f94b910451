"""Video: streaming reader, stride, truncated files, tracks, outputs, and the camera loop headless.

The sample videos are read in place from ../shared/media; only synthetic or truncated files
are written, into tmp_path. A tiny random-weight model stands in for a trained one.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from affectlens.cli.predict import camera_command, predict_command
from affectlens.errors import AffectlensError
from affectlens.inference.camera import check_display, run_loop
from affectlens.inference.recognizer import Recognizer
from affectlens.inference.video import VideoReader, VideoWriter
from affectlens.models import create_model
from affectlens.models.weights import ModelCard, save_weights

CLASSES = ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = create_model("fast_cnn", len(CLASSES), width=8, fc_dim=32).eval()
    card = ModelCard("fast_cnn", CLASSES, in_channels=1, image_size=48, input_size=40,
                     normalization={"mode": "unit", "mean": [0.0], "std": [1.0]},
                     model_options={"width": 8, "fc_dim": 32})
    return save_weights(model, card, tmp_path_factory.mktemp("video_model") / "tiny.safetensors")


@pytest.fixture(scope="module")
def recognizer(weights: Path) -> Recognizer:
    return Recognizer(weights, num_threads=1)


def synthetic_avi(path: Path, frames: int = 40) -> Path:
    """A small MJPG AVI: its header states the frame count, so a cut file is detectably short."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), (i * 6) % 256, np.uint8))
    writer.release()
    return path


def frame_count(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    n = 0
    while capture.grab():
        n += 1
    capture.release()
    return n


# ------------------------------------------------------------------------------------ reader
def test_reader_streams_with_stride_and_timestamps(media_dir: Path) -> None:
    with VideoReader(media_dir / "single_face.mp4", every=5) as reader:
        assert (reader.info.width, reader.info.height, reader.info.frame_count) == (640, 360, 72)
        assert reader.expected_frames == 15
        frames = list(reader)
    assert [f.index for f in frames] == list(range(0, 72, 5))
    assert frames[1].time == pytest.approx(5 / 30.0)
    assert frames[0].bgr.shape == (360, 640, 3) and frames[0].bgr.dtype == np.uint8
    with VideoReader(media_dir / "single_face.mp4", max_frames=4, prefetch=0) as reader:
        assert [f.index for f in reader] == [0, 1, 2, 3]


def test_reader_errors_name_the_file(tmp_path: Path, media_dir: Path) -> None:
    whole = synthetic_avi(tmp_path / "whole.avi")
    assert len(list(VideoReader(whole))) == 40
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    seen = []
    with pytest.raises(AffectlensError, match=r"cut\.avi: video is truncated or corrupt: decoded \d+ of 40"):
        for frame in VideoReader(cut):
            seen.append(frame.index)
    assert seen  # the frames before the cut were still delivered
    # an mp4 cut short loses its index (moov atom) and cannot be opened at all
    cut_mp4 = tmp_path / "cut.mp4"
    cut_mp4.write_bytes((media_dir / "single_face.mp4").read_bytes()[:50_000])
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "text.mov"
    text.write_text("not a video")
    for path in (cut_mp4, empty, text, tmp_path / "missing.mp4"):
        with pytest.raises(AffectlensError) as info:
            list(VideoReader(path))
        assert str(path) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(AffectlensError, match="every"):
        VideoReader(whole, every=0)


def test_writer_round_trip(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "w.mp4", fps=12) as writer:
        for i in range(6):
            writer.write(np.full((40, 56, 3), i * 40, np.uint8))
    assert frame_count(tmp_path / "w.mp4") == 6


# ------------------------------------------------------------------------------------ predictor
def test_predict_video_records(recognizer: Recognizer, media_dir: Path) -> None:
    results = list(recognizer.predict_video(media_dir / "single_face.mp4", every=2))
    assert [r.frame for r in results] == list(range(0, 72, 2))
    assert all(len(r.faces) == 1 for r in results)
    assert {f.face_id for r in results for f in r.faces} == {0}  # one stable track
    assert all(r.time == pytest.approx(r.frame / 30.0) for r in results)
    none = list(recognizer.predict_video(media_dir / "no_face.mp4", every=4))
    assert len(none) == len(range(0, frame_count(media_dir / "no_face.mp4"), 4))
    assert all(len(r.faces) == 0 for r in none)


def test_face_then_no_face(recognizer: Recognizer, media_dir: Path) -> None:
    results = list(recognizer.predict_video(media_dir / "face_noface.mov", every=3))
    assert len(results) == len(range(0, 169, 3))
    with_faces = [r.frame for r in results if r.faces]
    without = [r.frame for r in results if not r.faces]
    assert with_faces and without
    assert max(with_faces) < min(without)  # faces only in the first part
    assert with_faces[0] == 0 and results[-1].faces == []


def test_smoothing_changes_probabilities_not_ids(recognizer: Recognizer, media_dir: Path) -> None:
    raw = list(recognizer.predict_video(media_dir / "single_face.mp4", smoothing=0.0, max_frames=12))
    smooth = list(recognizer.predict_video(media_dir / "single_face.mp4", smoothing=0.8, max_frames=12))
    p_raw = np.stack([r.faces[0].probabilities for r in raw])
    p_smooth = np.stack([r.faces[0].probabilities for r in smooth])
    np.testing.assert_allclose(p_raw[0], p_smooth[0], atol=1e-6)  # the first frame has no past
    assert np.abs(np.diff(p_smooth, axis=0)).sum() < np.abs(np.diff(p_raw, axis=0)).sum()
    ema = p_raw[0]
    for p in p_raw[1:]:
        ema = 0.8 * ema + 0.2 * p
    np.testing.assert_allclose(p_smooth[-1], ema, atol=1e-5)


# ------------------------------------------------------------------------------------ commands
def test_predict_command_on_video(weights: Path, media_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        predict_command, [str(media_dir / "single_face.mp4"), "-m", str(weights), "--out", str(out), "--every", "3",
                          "--smoothing", "0.3", "--threads", "1", "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(0, 72, 3))
    assert all(len(r["faces"]) == 1 and r["faces"][0]["face_id"] == 0 for r in records)
    assert len((out / "predictions.csv").read_text().splitlines()) == 1 + len(records)
    assert frame_count(out / "single_face.annotated.mp4") == len(records)
    assert (out / "single_face.timeline.png").stat().st_size > 0


def test_predict_command_truncated_video_in_batch(weights: Path, media_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    whole = synthetic_avi(tmp_path / "whole.avi", frames=30)
    (folder / "cut.avi").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    (folder / "no_face.mp4").symlink_to(media_dir / "no_face.mp4")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        predict_command, [str(folder), "-m", str(weights), "--out", str(out), "--every", "8", "--no-annotate",
                          "--threads", "1", "--no-progress"],
    )
    assert result.exit_code == 1
    assert "1 of 2 inputs processed" in result.output and "cut.avi: video is truncated" in result.output
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    by_file = {Path(r["file"]).name for r in records}
    assert by_file == {"cut.avi", "no_face.mp4"}  # frames before the cut are kept
    assert all(r["faces"] == [] for r in records)
    assert not (out / "in" / "no_face.timeline.png").exists()  # no faces, no timeline


def test_camera_loop_headless_with_a_video_file(weights: Path, media_dir: Path, tmp_path: Path) -> None:
    video = tmp_path / "cam.mp4"
    jsonl = tmp_path / "cam.jsonl"
    result = CliRunner().invoke(
        camera_command, ["--source", str(media_dir / "single_face.mp4"), "-m", str(weights), "--no-window",
                         "-o", str(video), "--max-frames", "8", "--jsonl", str(jsonl), "--threads", "1"],
    )
    assert result.exit_code == 0, result.output
    assert "8 frames, 8 faces" in result.output and "fps" in result.output
    assert frame_count(video) == 8
    assert len(jsonl.read_text().splitlines()) == 8


def test_camera_window_needs_a_display(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if not __import__("sys").platform.startswith("linux"):
        pytest.skip("display detection is only checked on Linux")
    with pytest.raises(AffectlensError, match="--no-window"):
        check_display()
    result = CliRunner().invoke(camera_command, ["--source", "0", "-m", str(weights)])
    assert isinstance(result.exception, AffectlensError) and "\n" not in str(result.exception)


def test_missing_camera_is_a_clear_error(recognizer: Recognizer) -> None:
    with pytest.raises(AffectlensError, match="camera 97 cannot be opened"):
        run_loop(recognizer, 97, max_frames=1)


# ---------------------------------------------------------------------- key frames (issue 10)
@pytest.fixture(scope="module")
def shipped() -> Recognizer:
    return Recognizer("default", num_threads=1)


def test_key_frames_keep_the_labels_of_detecting_every_frame(shipped: Recognizer, media_dir: Path) -> None:
    """The default (full detection every 5th frame at max_side 384) against detection on every frame at 640."""
    old = Recognizer("default", num_threads=1, detect_every=1, max_side=640)
    path = media_dir / "single_face.mp4"
    fast = list(shipped.predict_video(path, smoothing=0.0))
    full = list(old.predict_video(path, smoothing=0.0))
    assert [len(r.faces) for r in fast] == [len(r.faces) for r in full] == [1] * 72
    same = sum(a.faces[0].label == b.faces[0].label for a, b in zip(fast, full, strict=True))
    assert same >= 70
    detected = [r.frame for r in fast if r.detected]
    assert detected[0] == 0 and len(detected) <= 72 // 5 + 3
    assert all(r.to_dict()["detected"] == r.detected for r in fast)


def test_key_frames_find_no_face_and_notice_a_face_leaving(shipped: Recognizer, media_dir: Path) -> None:
    none = list(shipped.predict_video(media_dir / "no_face.mp4"))
    assert not any(r.faces for r in none)
    assert sum(r.detected for r in none) == -(-len(none) // 5)  # nothing to follow: key frames only
    results = list(shipped.predict_video(media_dir / "face_noface.mov"))
    with_faces = [r.frame for r in results if r.faces]
    assert with_faces == list(range(len(with_faces))) and 70 <= len(with_faces) <= 74
    # The frame where the face cannot be re-fitted any more gets a full detection at once.
    assert results[len(with_faces)].detected


def test_annotated_video_written_in_the_background(recognizer: Recognizer, media_dir: Path, tmp_path: Path) -> None:
    stats = run_loop(recognizer, media_dir / "single_face.mp4", max_frames=20, video_out=tmp_path / "a.mp4")
    assert stats.annotated == tmp_path / "a.mp4" and frame_count(tmp_path / "a.mp4") == 20


# ------------------------------------------------------------------------------ burned-in labels
def _face(box: tuple[float, float, float, float], face_id: int) -> object:
    from affectlens.inference.types import FaceResult

    names = ("angry", "happy", "neutral")
    probabilities = np.array([0.05, 0.9, 0.05], np.float32)
    return FaceResult(box=box, landmarks=None, score=0.99, label="happy", probabilities=probabilities,
                      class_names=names, face_id=face_id)


@pytest.mark.parametrize("height", [360, 1080])
def test_video_labels_scale_with_the_frame_and_avoid_the_controls(height: int) -> None:
    """Labels are about 5% of the frame height (readable when the player shrinks the video), and
    nothing is drawn in the bottom band where players put their controls, bars included."""
    from affectlens.inference.annotate import CONTROLS_BAND, VIDEO_LABEL_HEIGHT, draw_faces

    k = height / 360
    width = round(640 * k)
    blank = np.full((height, width, 3), 128, np.uint8)
    face = _face((200 * k, 200 * k, 300 * k, 300 * k), 0)  # its box ends inside the controls band
    drawn = draw_faces(blank.copy(), [face], bars=True, keep_clear_bottom=CONTROLS_BAND,
                       label_height=VIDEO_LABEL_HEIGHT)
    changed = np.any(drawn != blank, axis=2)
    band = round(height * (1 - CONTROLS_BAND))
    box_lines = np.zeros_like(changed)
    pad = max(2, round(2 * k))
    x1, y1, x2, y2 = (round(v) for v in face.box)
    box_lines[:, x1 - pad:x1 + pad + 1] = box_lines[:, x2 - pad:x2 + pad + 1] = True
    box_lines[y2 - pad:y2 + pad + 1, :] = True
    assert not np.any(changed[band:] & ~box_lines[band:])  # only the face's own box reaches the band
    rows = np.flatnonzero(changed[:y1 - pad, x1 + pad + 1:x2 - pad].any(axis=1))  # the label above the box
    assert rows.size and rows.max() - rows.min() + 1 >= VIDEO_LABEL_HEIGHT * height


def test_labels_of_neighbouring_faces_do_not_overlap() -> None:
    from affectlens.inference.annotate import place_label

    placed: list[tuple[int, int, int, int]] = []
    for x in (100, 160, 220):  # three faces in a row, closer than a label is wide
        placed.append(place_label((x, 100, x + 50, 150), (120, 20), placed, (640, 360), 300))
    for i, a in enumerate(placed):
        assert 0 <= a[1] and a[3] <= 300
        for b in placed[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
