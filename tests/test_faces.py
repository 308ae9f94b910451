"""Face detection and alignment on the real test media (read in place from ../shared/media)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from affectlens.data.image_io import read_image
from affectlens.errors import AffectlensError
from affectlens.faces import (
    Face,
    FaceDetector,
    align_face,
    align_faces,
    create_detector,
    crop_face,
    estimate_transform,
    list_detectors,
)
from affectlens.faces.alignment import similarity_transform, template_points
from affectlens.faces.centerface import model_path, nms


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return create_detector()


@pytest.fixture(scope="module")
def single(media_dir: Path) -> np.ndarray:
    return read_image(media_dir / "single_face.jpg")


@pytest.fixture(scope="module")
def multi(media_dir: Path) -> np.ndarray:
    return read_image(media_dir / "multi_face.jpg")


def _frames(path: Path, count: int) -> list[np.ndarray]:
    """``count`` frames spread over the video, as RGB."""
    cap = cv2.VideoCapture(str(path))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    frames = []
    for index in np.linspace(0, max(total - 5, 0), count).astype(int):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        ok, frame = cap.read()
        assert ok, f"cannot read frame {index} of {path}"
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


# --- detection -------------------------------------------------------------------------------


def test_registry() -> None:
    assert list_detectors() == ["centerface", "haar"]
    with pytest.raises(AffectlensError, match="centerface, haar") as info:
        create_detector("yunet")
    assert "yunet" in str(info.value)
    with pytest.raises(AffectlensError, match="no_such_option"):
        create_detector("centerface", no_such_option=1)


@pytest.mark.parametrize(
    "name, expected",
    [("single_face.jpg", 1), ("multi_face.jpg", 5), ("free-mountain-vector-01.jpg", 0)],
)
def test_photo_face_counts(detector: FaceDetector, media_dir: Path, name: str, expected: int) -> None:
    assert len(detector.detect(read_image(media_dir / name))) == expected


def _group_photo(multi: np.ndarray, face_px: float, tiles: int) -> np.ndarray:
    """A large group photo made here: multi_face.jpg (faces about 90 px) shrunk and tiled."""
    small = cv2.resize(multi, None, fx=face_px / 90.0, fy=face_px / 90.0, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(np.tile(small, (tiles, tiles, 1)))


def test_small_faces_in_a_large_group_photo(detector: FaceDetector, multi: np.ndarray) -> None:
    crowd = _group_photo(multi, 24, 6)  # 1068x1602, 180 faces of 21-31 px
    faces = detector.detect(crowd)
    assert len(faces) >= 175
    assert all(18 <= f.width <= 40 for f in faces)
    # The coarse pass alone (what max_side gives without the small-face pass) misses most of them.
    assert len(create_detector(small_faces=0).detect(crowd)) < 100


def test_a_few_small_faces_in_a_large_photo(detector: FaceDetector, multi: np.ndarray, media_dir: Path) -> None:
    landscape = read_image(media_dir / "free-mountain-vector-01.jpg").copy()  # 1920x1080, no face
    group = _group_photo(multi, 30, 1)  # five faces of 26-35 px
    landscape[700 : 700 + group.shape[0], 1200 : 1200 + group.shape[1]] = group
    faces = detector.detect(landscape)
    assert len(faces) == 5
    assert all(1200 <= f.box[0] and f.box[2] <= 1200 + group.shape[1] for f in faces)


def test_refit_follows_a_face_and_reports_a_lost_one(detector: FaceDetector, media_dir: Path) -> None:
    first, later = _frames(media_dir / "single_face.mp4", 2)[0], _frames(media_dir / "single_face.mp4", 30)[1]
    (face,) = detector.detect(first)
    (refit,) = detector.refit(later, np.array([face.box]))
    (fresh,) = detector.detect(later)
    assert refit is not None and refit.landmarks is not None
    np.testing.assert_allclose(refit.landmarks, fresh.landmarks, atol=0.05 * fresh.width)
    empty = _frames(media_dir / "no_face.mp4", 1)[0]
    assert detector.refit(empty, np.array([[100.0, 100.0, 220.0, 240.0]])) == [None]


def test_rgba_photo(detector: FaceDetector, media_dir: Path) -> None:
    with Image.open(media_dir / "Image_with_alpha.png") as img:
        rgba = np.asarray(img.convert("RGBA"))
    assert rgba.shape[2] == 4
    faces = detector.detect(rgba)
    assert len(faces) == 1
    assert faces[0].landmarks is not None


def test_greyscale_photo(detector: FaceDetector, media_dir: Path) -> None:
    grey = read_image(media_dir / "BWPictureHuman.jpg")
    assert grey.shape == (1912, 2560, 1)
    faces = detector.detect(grey)
    assert len(faces) >= 1
    assert len(detector.detect(grey[..., 0])) == len(faces)  # (H, W) works too
    assert all(0 <= f.box[0] < f.box[2] <= 2560 and 0 <= f.box[1] < f.box[3] <= 1912 for f in faces)


def test_video_frames(detector: FaceDetector, media_dir: Path) -> None:
    assert [len(detector.detect(f)) for f in _frames(media_dir / "single_face.mp4", 4)] == [1] * 4
    assert [len(detector.detect(f)) for f in _frames(media_dir / "no_face.mp4", 4)] == [0] * 4


def test_faces_sorted_with_landmarks_inside_box(detector: FaceDetector, multi: np.ndarray) -> None:
    faces = detector.detect(multi)
    assert [f.box[0] for f in faces] == sorted(f.box[0] for f in faces)
    for face in faces:
        assert face.landmarks is not None and face.landmarks.shape == (5, 2)
        assert face.landmarks.dtype == np.float32
        x1, y1, x2, y2 = face.box
        assert np.all((face.landmarks[:, 0] >= x1) & (face.landmarks[:, 0] <= x2))
        assert np.all((face.landmarks[:, 1] >= y1) & (face.landmarks[:, 1] <= y2))
        left_eye, right_eye, nose = face.landmarks[:3]
        assert left_eye[0] < nose[0] < right_eye[0]  # "left" = smaller x in the image
        assert 0.5 <= face.score <= 1.0
        assert face.width > 0 and face.height > 0


def test_boxes_in_original_coordinates(detector: FaceDetector, single: np.ndarray) -> None:
    big = cv2.resize(single, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    (small_face,) = detector.detect(single)
    (big_face,) = detector.detect(big)  # downscaled internally (max_side), mapped back
    size = small_face.width
    np.testing.assert_allclose(np.array(big_face.box) / 2, small_face.box, atol=0.04 * size)
    np.testing.assert_allclose(big_face.landmarks / 2, small_face.landmarks, atol=0.04 * size)


def test_min_face_size_and_threshold(detector: FaceDetector, multi: np.ndarray) -> None:
    faces = detector.detect(multi)
    widths = sorted(min(f.width, f.height) for f in faces)
    cut = (widths[0] + widths[-1]) / 2
    kept = create_detector(min_face_size=cut).detect(multi)
    assert 0 < len(kept) < len(faces)
    assert all(min(f.width, f.height) >= cut for f in kept)
    strict = create_detector(threshold=0.995).detect(multi)
    assert len(strict) < len(faces)
    assert all(f.score >= 0.995 for f in strict)


def test_bad_inputs(detector: FaceDetector) -> None:
    with pytest.raises(AffectlensError, match="uint8"):
        detector.detect(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(AffectlensError, match="shape|got"):
        detector.detect(np.zeros((32, 32, 2), np.uint8))
    with pytest.raises(AffectlensError, match="threshold"):
        create_detector(threshold=1.5)
    assert detector.detect(np.zeros((20, 30, 3), np.uint8)) == []


def test_face_to_dict_is_json(detector: FaceDetector, single: np.ndarray) -> None:
    (face,) = detector.detect(single)
    data = json.loads(json.dumps(face.to_dict()))
    assert len(data["box"]) == 4 and len(data["landmarks"]) == 5 and 0 < data["score"] <= 1
    assert Face((0, 0, 10, 20), None, 1.0).to_dict()["landmarks"] is None


def test_shipped_centerface_matches_its_notice() -> None:
    """The detector loads from the package itself; its NOTICE (origin, licence) names this exact file."""
    path = model_path()
    assert path.parent.name == "weights" and path.parent.parent.name == "faces"
    notice = (path.parent / "NOTICE.txt").read_text()
    assert "MIT License" in notice and "Star-Clouds/CenterFace" in notice
    shipped = re.search(r"sha256 of the shipped file: ([0-9a-f]{64})", notice)
    assert shipped and hashlib.sha256(path.read_bytes()).hexdigest() == shipped.group(1)


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.5]], np.float32)
    scores = np.array([0.6, 0.9, 0.5, 0.7], np.float32)
    # Box 1 (best) overlaps box 0 with IoU 0.68 and box 3 with IoU 0.72; box 2 overlaps nothing.
    assert nms(boxes, scores, 0.3).tolist() == [1, 2]
    assert nms(boxes, scores, 0.7).tolist() == [1, 0, 2]  # best first; only box 3 is above 0.7
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.3).tolist() == []


def test_haar_backend(single: np.ndarray) -> None:
    haar = create_detector("haar")
    faces = haar.detect(single)
    assert len(faces) >= 1
    assert all(f.landmarks is None and f.score == 1.0 for f in faces)
    crops = align_faces(single, faces, 48, grey=True)  # box-crop fallback
    assert crops.shape == (len(faces), 48, 48, 1) and crops.dtype == np.uint8


# --- alignment -------------------------------------------------------------------------------


def test_similarity_transform_recovers_known_transform() -> None:
    src = template_points("arcface", 112)
    angle, scale, shift = np.radians(25), 1.7, np.array([13.0, -4.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = similarity_transform(src, src @ rot.T + shift)
    # OpenCV fits on float32 point coordinates: exact to about 1e-5 px, far below what a warp shows.
    np.testing.assert_allclose(matrix[:, :2], rot, atol=1e-6)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-4)


def test_similarity_transform_is_the_least_squares_fit_over_all_points() -> None:
    """Noisy landmarks: the result is the least-squares similarity over all 5 points (Umeyama's
    optimum), not a fit to a random subset of them."""
    rng = np.random.default_rng(0)
    dst = template_points("fer", 48).astype(np.float64)
    for _ in range(20):
        src = rng.uniform(50, 400, (5, 2))
        matrix = similarity_transform(src, dst)
        # The similarity [[a, -b, tx], [b, a, ty]] is linear in (a, b, tx, ty): solve it directly.
        rows = np.zeros((10, 4))
        rows[0::2] = np.c_[src[:, 0], -src[:, 1], np.ones(5), np.zeros(5)]
        rows[1::2] = np.c_[src[:, 1], src[:, 0], np.zeros(5), np.ones(5)]
        a, b, tx, ty = np.linalg.lstsq(rows, dst.reshape(-1), rcond=None)[0]
        np.testing.assert_allclose(matrix[:, :2], [[a, -b], [b, a]], atol=1e-6)
        np.testing.assert_allclose(matrix[:, 2], [tx, ty], atol=1e-4)
    with pytest.raises(AffectlensError, match="degenerate"):
        similarity_transform(np.full((5, 2), 7.0), dst)


def test_alignment_levels_rotated_head(detector: FaceDetector, single: np.ndarray) -> None:
    h, w = single.shape[:2]
    rotation = cv2.getRotationMatrix2D((w / 2, h / 2), 20, 1.0)
    rotated = cv2.warpAffine(single, rotation, (w, h), borderMode=cv2.BORDER_REPLICATE)
    (face,) = detector.detect(rotated)
    (upright,) = detector.detect(single)
    eyes = face.landmarks[:2]
    assert abs(np.degrees(np.arctan2(eyes[1, 1] - eyes[0, 1], eyes[1, 0] - eyes[0, 0]))) > 10

    matrix = estimate_transform(face.landmarks, 48, "fer")
    aligned = np.c_[face.landmarks, np.ones(5)] @ matrix.T
    assert abs(aligned[1, 1] - aligned[0, 1]) < 2.0  # eyes level within 2 px
    assert aligned[0, 0] < aligned[1, 0]

    # Alignment undoes the rotation: the rotated and upright photos give the same crop geometry.
    for template, size in (("fer", 48), ("arcface", 112)):
        a = np.c_[face.landmarks, np.ones(5)] @ estimate_transform(face.landmarks, size, template).T
        b = np.c_[upright.landmarks, np.ones(5)] @ estimate_transform(upright.landmarks, size, template).T
        np.testing.assert_allclose(a, b, atol=0.03 * size)

    crop = align_face(rotated, face.landmarks, 48, grey=True)
    assert crop.shape == (48, 48, 1) and crop.dtype == np.uint8
    assert crop.std() > 20  # a face, not a flat border


def test_alignment_shapes(detector: FaceDetector, multi: np.ndarray) -> None:
    faces = detector.detect(multi)
    grey = align_faces(multi, faces, 48, grey=True, template="fer")
    colour = align_faces(multi, faces, 112, grey=False, template="arcface")
    assert grey.shape == (5, 48, 48, 1) and grey.dtype == np.uint8
    assert colour.shape == (5, 112, 112, 3) and colour.dtype == np.uint8
    assert align_faces(multi, [], 48, grey=True).shape == (0, 48, 48, 1)
    # grey input asked for colour output, and RGBA input
    grey_in = cv2.cvtColor(multi, cv2.COLOR_RGB2GRAY)
    assert align_face(grey_in, faces[0].landmarks, 64, grey=False).shape == (64, 64, 3)
    rgba = np.dstack([multi, np.full(multi.shape[:2], 255, np.uint8)])
    assert align_face(rgba, faces[0].landmarks, 48, grey=True).shape == (48, 48, 1)
    with pytest.raises(AffectlensError, match="arcface, fer"):
        align_faces(multi, faces, 48, grey=True, template="vggface")


def test_crop_face_box_fallback(single: np.ndarray) -> None:
    h, w = single.shape[:2]
    crop = crop_face(single, (w - 60, h - 60, w + 40, h + 40), 48, grey=False)  # partly outside
    assert crop.shape == (48, 48, 3) and crop.dtype == np.uint8
    exact = crop_face(single, (100, 100, 200, 200), 100, grey=False, margin=0.0, shift=0.0)
    np.testing.assert_array_equal(exact, single[100:200, 100:200])
