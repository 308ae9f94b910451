"""Predictor, backends, export, tracking, outputs and the predict command on the real photos.

A tiny random-weight model is built on the fly: these tests check behaviour (counts, shapes,
records, errors, backend agreement), never accuracy, so they do not depend on a shipped model.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from affectlens.cli.export import export_command
from affectlens.cli.predict import predict_command
from affectlens.data.preprocessing import Normalization
from affectlens.data.registry import load_dataset
from affectlens.errors import AffectlensError
from affectlens.faces import Face, FaceDetector
from affectlens.inference.export import export_onnx
from affectlens.inference.keyframes import KeyframeDetector
from affectlens.inference.outputs import CsvWriter, JsonlWriter, csv_header
from affectlens.inference.recognizer import Recognizer
from affectlens.inference.tracking import FaceTracker, iou_matrix
from affectlens.inference.types import FaceResult, FrameResult, ImageResult
from affectlens.models import create_model
from affectlens.models.prediction.head import predict_probabilities
from affectlens.models.prediction.torch_backend import TorchClassifier
from affectlens.models.weights import ModelCard, load_weights, save_weights
from affectlens.runtime.card import VA_TASK
from affectlens.runtime.classifiers import OnnxClassifier
from affectlens.runtime.factory import create_classifier
from affectlens.runtime.pretrained import WEIGHTS_DIR, pretrained_entry
from affectlens.runtime.steps import preprocess

CLASSES = ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"]


def make_model(folder: Path, name: str = "tiny", va: bool = False, in_channels: int = 1) -> Path:
    """A random fast_cnn (width 8) saved with its card; deterministic weights.

    ``va``: K class logits + valence + arousal in one head (``task = classification+va``).
    """
    torch.manual_seed(0)
    model = create_model("fast_cnn", len(CLASSES) + (2 if va else 0), in_channels=in_channels, width=8, fc_dim=32)
    card = ModelCard(
        architecture="fast_cnn",
        class_names=CLASSES,
        in_channels=in_channels,
        image_size=48,
        input_size=40,
        normalization={"mode": "standardize", "mean": [0.5] * in_channels, "std": [0.25] * in_channels},
        model_options={"width": 8, "fc_dim": 32},
        task=VA_TASK if va else "classification",
    )
    return save_weights(model.eval(), card, folder / f"{name}.safetensors")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    make_model(folder)
    return folder


@pytest.fixture(scope="module")
def weights(model_dir: Path) -> Path:
    return model_dir / "tiny.safetensors"


@pytest.fixture(scope="module")
def recognizer(weights: Path) -> Recognizer:
    return Recognizer(weights, num_threads=1)


def random_faces(n: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48, channels), dtype=np.uint8)


# ------------------------------------------------------------------------------------ backends
def test_onnx_and_torch_agree(weights: Path) -> None:
    onnx = create_classifier(weights, "onnx", num_threads=1)
    torch_cls = create_classifier(weights, "torch")
    assert isinstance(onnx, OnnxClassifier) and isinstance(torch_cls, TorchClassifier)
    faces = random_faces(33)
    p_onnx, p_torch = onnx.predict(faces), torch_cls.predict(faces)
    assert p_onnx.shape == (33, len(CLASSES)) and p_onnx.dtype == np.float32
    np.testing.assert_allclose(p_onnx.sum(1), 1.0, atol=1e-5)
    assert np.abs(p_onnx - p_torch).max() < 1e-4
    onnx.ten_crop = torch_cls.ten_crop = True
    assert np.abs(onnx.predict(faces) - torch_cls.predict(faces)).max() < 1e-4
    # small batches, the empty batch and chunking all give the same answers
    onnx.ten_crop, onnx.batch_size = False, 8
    np.testing.assert_allclose(onnx.predict(faces), p_onnx, atol=1e-6)
    assert onnx.predict(faces[:0]).shape == (0, len(CLASSES))


def test_preprocess_matches_what_training_feeds_the_network() -> None:
    """The prediction input equals the training input without augmentation (centre crop, /255, normalise)."""
    from affectlens.data.augment import AugmentConfig, build_train_augmentation
    from affectlens.data.batches import to_float

    faces = random_faces(4, 3)
    norm = Normalization("standardize", [0.4, 0.5, 0.6], [0.2, 0.25, 0.3])
    crop = build_train_augmentation(AugmentConfig(crop_size=40, enabled=False), 48)
    expected = norm(crop(to_float(torch.from_numpy(faces).permute(0, 3, 1, 2)))).numpy()
    np.testing.assert_allclose(preprocess(faces, 40, norm), expected, atol=1e-6)
    views = preprocess(faces, 40, norm, ten_crop=True)
    assert views.shape == (40, 3, 40, 40)
    # view-major rows: view 4 is the centre crop, view 5 the mirrored top-left corner
    np.testing.assert_array_equal(views[16:20], preprocess(faces, 40, norm))
    np.testing.assert_array_equal(views[20:24], views[0:4][..., ::-1])
    # nothing to crop: one view even when ten-crop is asked for
    assert preprocess(faces, 48, norm, ten_crop=True).shape == (4, 3, 48, 48)
    # mirror: the centre crop, then the same crop mirrored left-right; ten-crop holds the mirrors already
    mirrored = preprocess(faces, 40, norm, mirror=True)
    np.testing.assert_array_equal(mirrored[:4], preprocess(faces, 40, norm))
    np.testing.assert_array_equal(mirrored[4:], preprocess(faces, 40, norm)[..., ::-1])
    np.testing.assert_array_equal(preprocess(faces, 40, norm, ten_crop=True, mirror=True), views)


@pytest.mark.parametrize("ten_crop", [False, True])
def test_torch_and_onnx_runtime_agree_on_real_faces(data_dir: Path, ten_crop: bool) -> None:
    """The shipped default model on 96 FER2013 PrivateTest faces: the ONNX Runtime predictor, the torch
    predictor and the torch path of evaluation/training validation give the same probabilities."""
    entry = pretrained_entry("default")
    weights = WEIGHTS_DIR / entry["files"]["weights"]
    rows = load_dataset("fer2013", data_dir / "fer2013").select_splits("PrivateTest").subset(np.arange(96))
    onnx = OnnxClassifier.from_path(WEIGHTS_DIR / entry["files"]["onnx"], ten_crop=ten_crop, num_threads=1)
    p_onnx = onnx.predict(rows.images)
    p_torch = TorchClassifier(weights, ten_crop=ten_crop).predict(rows.images)
    model, card = load_weights(weights)
    p_eval = predict_probabilities(model, rows, Normalization.from_dict(card.normalization), card.input_size,
                                   batch_size=40, ten_crop=ten_crop, num_classes=card.num_classes)
    assert p_onnx.shape == (96, card.num_classes)
    np.testing.assert_allclose(p_onnx.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(p_torch, p_onnx, rtol=0, atol=1e-5)
    np.testing.assert_allclose(p_eval, p_onnx, rtol=0, atol=1e-5)
    # real faces, a real model: it is right far more often than chance (1/7)
    assert float(np.mean(p_onnx.argmax(1) == rows.labels)) > 0.5


def test_onnx_prediction_path_never_imports_torch() -> None:
    """Loading a shipped model by its .safetensors name and predicting runs with torch unimportable."""
    weights = WEIGHTS_DIR / pretrained_entry("default")["files"]["weights"]
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"  # any `import torch` now raises ImportError
        "import numpy as np\n"
        "from affectlens.runtime.factory import create_classifier\n"
        f"classifier = create_classifier({str(weights)!r}, 'onnx', ten_crop=True, num_threads=1)\n"
        "faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48, 1), dtype=np.uint8)\n"
        "probs = classifier.predict(faces)\n"
        "inner = getattr(classifier, 'inner', classifier)\n"  # the card's calibration wraps the network
        "print(type(classifier).__name__, type(inner).__name__, probs.shape, round(float(probs.sum()), 3))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["CalibratedClassifier", "OnnxClassifier", "(3,", "7)", "3.0"]


def test_classifier_rejects_wrong_faces(weights: Path) -> None:
    onnx = create_classifier(weights, "onnx", num_threads=1)
    with pytest.raises(AffectlensError, match=r"\(N, 48, 48, 1\)"):
        onnx.predict(random_faces(2, channels=3))
    with pytest.raises(AffectlensError, match="uint8"):
        onnx.predict(np.zeros((2, 48, 48, 1), np.float32))
    with pytest.raises(AffectlensError, match="unknown inference backend"):
        create_classifier(weights, "tensorrt")


def test_export_writes_onnx_and_sidecar(weights: Path, tmp_path: Path) -> None:
    summary = export_onnx(weights, tmp_path / "tiny.onnx")
    assert summary["max_abs_diff"] < 1e-4
    card = json.loads((tmp_path / "tiny.json").read_text())
    assert card["class_names"] == CLASSES and card["extra"]["onnx"]["opset"] == 17
    faces = random_faces(5)
    from_file = OnnxClassifier.from_path(tmp_path / "tiny.onnx", num_threads=1).predict(faces)
    in_memory = OnnxClassifier.from_path(weights, num_threads=1).predict(faces)
    np.testing.assert_allclose(from_file, in_memory, atol=1e-6)
    # the torch backend cannot run an ONNX file: a clear error
    with pytest.raises(AffectlensError, match="torch backend needs a .safetensors"):
        create_classifier(tmp_path / "tiny.onnx", "torch")
    # and the CLI command
    result = CliRunner().invoke(export_command, ["-m", str(weights), "-o", str(tmp_path / "cli.onnx")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli.onnx").stat().st_size > 0 and (tmp_path / "cli.json").exists()
    assert "max |onnx - torch|" in result.output


def test_valence_arousal_model(tmp_path: Path, media_dir: Path) -> None:
    path = make_model(tmp_path, "va", va=True)
    onnx = create_classifier(path, "onnx", num_threads=1)
    torch_cls = create_classifier(path, "torch")
    faces = random_faces(6)
    p1, va1 = onnx.run(faces)
    p2, va2 = torch_cls.run(faces)
    assert va1 is not None and va1.shape == (6, 2) and p1.shape == (6, len(CLASSES))
    np.testing.assert_allclose(p1.sum(1), 1.0, atol=1e-5)
    assert np.abs(p1 - p2).max() < 1e-4 and np.abs(va1 - va2).max() < 1e-4
    face = Recognizer(path, num_threads=1).predict(media_dir / "single_face.jpg").faces[0]
    assert face.valence is not None and set(face.to_dict()) >= {"valence", "arousal"}


# ------------------------------------------------------------------------------------ tracking
def test_iou_matrix() -> None:
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 101, 101]], float)
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 3)
    assert iou[0, 0] == pytest.approx(1.0) and iou[0, 1] == pytest.approx(50 / 150) and iou[1].max() == 0


def test_tracker_ids_and_smoothing() -> None:
    tracker = FaceTracker(iou_threshold=0.3, max_age=1, smoothing=0.5)
    p_a, p_b = np.array([[1.0, 0.0]], np.float32), np.array([[0.0, 1.0]], np.float32)
    ids, probs, _ = tracker.update(np.array([[0, 0, 10, 10]]), p_a)
    assert ids.tolist() == [0] and probs.tolist() == [[1.0, 0.0]]
    # the face moves a little: same id, probabilities averaged with the past
    ids, probs, _ = tracker.update(np.array([[1, 0, 11, 10]]), p_b)
    assert ids.tolist() == [0] and probs[0] == pytest.approx([0.5, 0.5])
    # a second face appears left of it: a new id, unsmoothed; the first keeps its id
    ids, probs, _ = tracker.update(np.array([[-50, 0, -40, 10], [2, 0, 12, 10]]), np.concatenate([p_b, p_b]))
    assert ids.tolist() == [1, 0] and probs[0] == pytest.approx([0.0, 1.0]) and probs[1] == pytest.approx([0.25, 0.75])
    # missing for more than max_age frames retires the id; ids are never reused
    tracker.update(np.zeros((0, 4)), np.zeros((0, 2), np.float32))
    tracker.update(np.zeros((0, 4)), np.zeros((0, 2), np.float32))
    ids, _, _ = tracker.update(np.array([[2, 0, 12, 10]]), p_a)
    assert ids.tolist() == [2]
    off = FaceTracker(smoothing=0.0)
    off.update(np.array([[0, 0, 10, 10]]), p_a)
    assert off.update(np.array([[0, 0, 10, 10]]), p_b)[1].tolist() == p_b.tolist()
    with pytest.raises(AffectlensError):
        FaceTracker(smoothing=1.0)


# ------------------------------------------------------------------------------------ results
def test_result_records_are_json_ready(tmp_path: Path) -> None:
    face = FaceResult((1.0, 2.0, 30.5, 40.25), np.ones((5, 2), np.float32), 0.91, "Happy",
                      np.array([0.1, 0.9], np.float32), ("Sad", "Happy"), face_id=3)
    frame = FrameResult("clip.mp4", 64, 48, [face], frame=7, time=0.2333333)
    record = json.loads(json.dumps(frame.to_dict()))
    assert record["frame"] == 7 and record["time"] == 0.233 and record["faces"][0]["face_id"] == 3
    assert record["faces"][0]["probabilities"] == {"Sad": pytest.approx(0.1), "Happy": pytest.approx(0.9)}
    assert "valence" not in record["faces"][0]
    empty = ImageResult("a.jpg", 10, 10)
    assert empty.to_dict()["faces"] == [] and empty.to_dict()["frame"] is None
    with JsonlWriter(tmp_path / "r.jsonl") as jl, CsvWriter(tmp_path / "r.csv", ["Sad", "Happy"]) as cw:
        for result in (frame, empty):
            jl.write(result)
            cw.write(result)
        # flushed per record: readable before close
        assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 2
    rows = (tmp_path / "r.csv").read_text().splitlines()
    assert rows[0].split(",") == csv_header(["Sad", "Happy"])
    assert len(rows) == 3 and rows[2].startswith("a.jpg,,,,")


# ------------------------------------------------------------------------------------ predictor
@pytest.mark.parametrize(
    ("name", "expected"),
    [("multi_face.jpg", 5), ("single_face.jpg", 1), ("Image_with_alpha.png", 1), ("free-mountain-vector-01.jpg", 0)],
)
def test_face_counts_on_media(recognizer: Recognizer, media_dir: Path, name: str, expected: int) -> None:
    result = recognizer.predict(media_dir / name)
    assert len(result.faces) == expected
    assert result.source.endswith(name)
    for i, face in enumerate(result.faces):
        assert face.face_id == i and face.label in CLASSES and face.landmarks.shape == (5, 2)
        assert face.probabilities.shape == (len(CLASSES),)
        assert face.label == CLASSES[int(face.probabilities.argmax())]
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= result.width and 0 <= y1 < y2 <= result.height


def test_greyscale_and_rgba_arrays(recognizer: Recognizer, media_dir: Path) -> None:
    from PIL import Image

    grey = recognizer.predict(media_dir / "BWPictureHuman.jpg")
    assert len(grey.faces) >= 1 and (grey.width, grey.height) == (2560, 1912)
    with Image.open(media_dir / "Image_with_alpha.png") as img:
        rgba = np.asarray(img.convert("RGBA"))
    assert len(recognizer.predict(rgba).faces) == 1


def test_one_classifier_batch_per_image(recognizer: Recognizer, media_dir: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = recognizer.classifier.run

    def counting(faces: np.ndarray):
        calls.append(len(faces))
        return original(faces)

    monkeypatch.setattr(recognizer.classifier, "run", counting)
    recognizer.predict(media_dir / "multi_face.jpg")
    assert calls == [5]


def test_bad_inputs_name_the_file(recognizer: Recognizer, media_dir: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes((media_dir / "single_face.jpg").read_bytes()[:3000])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image\n")
    for path in (corrupt, empty, text, tmp_path / "missing.jpg"):
        with pytest.raises(AffectlensError) as info:
            recognizer.predict(path)
        message = str(info.value)
        assert str(path) in message and "\n" not in message


def test_no_default_model_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from affectlens.runtime import pretrained

    monkeypatch.setattr(pretrained, "TABLE_FILE", tmp_path / "pretrained.json")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AffectlensError, match="no default model installed"):
        Recognizer()


def test_import_affectlens_stays_light() -> None:
    code = "import sys, affectlens; print(sorted(m for m in ('torch', 'cv2', 'onnxruntime') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    code = "import affectlens; print(affectlens.Recognizer.__name__)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "Recognizer"


# ------------------------------------------------------------------------------------ predict CLI
def test_predict_folder_keeps_going_and_lists_failures(weights: Path, media_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "inputs"
    (folder / "sub").mkdir(parents=True)
    # links, not copies: the media are read in place
    (folder / "multi_face.jpg").symlink_to(media_dir / "multi_face.jpg")
    (folder / "sub" / "single_face.jpg").symlink_to(media_dir / "single_face.jpg")
    (folder / "free-mountain-vector-01.jpg").symlink_to(media_dir / "free-mountain-vector-01.jpg")
    (folder / "broken.jpg").write_bytes((media_dir / "single_face.jpg").read_bytes()[:2000])
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.jpg").write_text("not an image")
    (folder / "README.txt").write_text("ignored: not an image or video")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        predict_command, [str(folder), str(tmp_path / "nope.jpg"), "-m", str(weights), "--out", str(out),
                          "--threads", "1", "--no-progress"],
    )
    assert result.exit_code == 1, result.output
    assert "3 of 7 inputs processed" in result.output
    assert "4 failed:" in result.output
    for name in ("broken.jpg", "empty.png", "text.jpg", "nope.jpg"):
        assert sum(name in line and "affectlens: error:" in line for line in result.output.splitlines()) == 1
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    counts = {Path(r["file"]).name: len(r["faces"]) for r in records}
    assert counts == {"multi_face.jpg": 5, "single_face.jpg": 1, "free-mountain-vector-01.jpg": 0}
    csv_rows = (out / "predictions.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 5 + 1 + 1  # header, one row per face, one empty row for the no-face image
    assert (out / "inputs" / "sub" / "single_face.annotated.jpg").exists()
    assert (out / "inputs" / "multi_face.annotated.jpg").exists()


def test_predict_single_bad_file_is_one_line_error(weights: Path, tmp_path: Path) -> None:
    text = tmp_path / "fake.jpg"
    text.write_text("hello")
    result = CliRunner().invoke(predict_command, [str(text), "-m", str(weights), "--out", str(tmp_path / "o")])
    assert isinstance(result.exception, AffectlensError) and str(text) in str(result.exception)
    result = CliRunner().invoke(predict_command, [str(tmp_path / "missing.png"), "-m", str(weights)])
    assert isinstance(result.exception, AffectlensError) and "missing.png: file does not exist" in str(result.exception)
    result = CliRunner().invoke(predict_command, [str(text), "-m", str(weights), "--format", "xml"])
    assert isinstance(result.exception, AffectlensError) and "xml" in str(result.exception)


def test_predict_no_annotate_and_formats(weights: Path, media_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    result = CliRunner().invoke(
        predict_command, [str(media_dir / "single_face.jpg"), "-m", str(weights), "--out", str(out), "--no-annotate",
                          "--format", "csv", "--backend", "torch", "--threshold", "0.5", "--min-face-size", "20"],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["predictions.csv"]


class _ScriptedDetector(FaceDetector):
    """A detector whose full detections and re-fits follow a script, to check the key-frame schedule."""

    def __init__(self, refits: list[float | None]) -> None:
        super().__init__(threshold=0.4)
        self.refits = refits
        self.calls: list[str] = []

    def _detect_rgb(self, rgb: np.ndarray, min_size: float) -> tuple[np.ndarray, np.ndarray, None]:
        self.calls.append("detect")
        return np.array([[10.0, 10.0, 40.0, 40.0]]), np.array([0.9]), None

    def refit(self, image: np.ndarray, boxes: np.ndarray, size: int = 128) -> list[Face | None]:
        self.calls.append("refit")
        score = self.refits.pop(0)
        return [None if score is None else Face((10.0, 10.0, 40.0, 40.0), None, score)]


def test_key_frame_schedule() -> None:
    # frames: key, refit, refit (lost -> full detection at once), refit (uncertain), key (checked), refit
    detector = _ScriptedDetector([0.9, None, 0.45, 0.9])
    keyframes = KeyframeDetector(detector, detect_every=4)
    frame = np.zeros((64, 64, 3), np.uint8)
    flags = [keyframes.faces(frame)[1] for _ in range(6)]
    assert flags == [True, False, True, False, True, False]
    assert detector.calls == ["detect", "refit", "refit", "detect", "refit", "detect", "refit"]
    with pytest.raises(AffectlensError, match="detect_every"):
        KeyframeDetector(detector, detect_every=0)
