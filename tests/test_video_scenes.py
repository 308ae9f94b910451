"""The whole video path at DEFAULT settings on generated scenes: every video finishes, and the
faces found with key-frame re-fits (``detect_every=5``) match a full detection on every frame.

The shared clips hold one large face, so they never reach the re-fit's edge cases (a search
window over a frame edge or smaller than the detector's window, faces shrinking, entering and
leaving). Here Hypothesis composes videos from real faces cut out of the shared photos: 1-8 faces
of 12-400 px, anywhere (corners and edges included, partly outside the frame), moving, zooming,
entering and leaving, at several frame sizes and aspect ratios, and writes them as real files.

Tolerance, stated. Both runs make the same full detection on the default run's key frames, so
a face that the exhaustive run has seen on every frame since the last key frame was found there by
both, and the default run must still report it (box IoU >= 0.5): at least 90% of such faces per
video, or all but one. A face that the exhaustive run first sees between two key frames (it
entered, grew past the detectable size or came out from behind another) is found at the next key
frame, by design; it is not counted. And every face the default run reports must be a face of
the exhaustive run or one of the faces put into the video (its box centre on that face's patch):
re-fits may follow a face that has become too small or too cut for a full detection, and may
carry a false positive of a key frame's full detection (the same in both runs) to the next key
frame, but they must not invent one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from affectlens.faces import create_detector
from affectlens.inference.recognizer import Recognizer
from affectlens.inference.tracking import iou_matrix

FRAME_SIZES = [(320, 240), (640, 360), (360, 640), (1000, 666), (1280, 720), (200, 200), (720, 200)]
FRAMES = 12
MATCH_IOU = 0.5
#: share of the followed faces the default run must report
RECALL = 0.9


@dataclass(frozen=True)
class Actor:
    """One face's path through the video: size and centre (as frame fractions) at the start,
    per-frame motion and zoom, and the frames during which it is in the picture."""

    source: int
    size: float
    cx: float
    cy: float
    dx: float
    dy: float
    zoom: float
    enter: int
    leave: int


@dataclass(frozen=True)
class Scene:
    width: int
    height: int
    actors: tuple[Actor, ...]


@pytest.fixture(scope="module")
def face_crops(media_dir: Path) -> list[np.ndarray]:
    """Real faces with their surroundings (a square of 1.8 box sides), cut from the shared photos."""
    detector = create_detector("centerface", max_side=None)
    crops = []
    for name in ("multi_face.jpg", "single_face.jpg"):
        rgb = cv2.cvtColor(cv2.imread(str(media_dir / name)), cv2.COLOR_BGR2RGB)
        for face in detector.detect(rgb):
            cx, cy = face.center
            half = 0.9 * max(face.width, face.height)
            x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
            crops.append(rgb[y0 : int(cy + half), x0 : int(cx + half)].copy())
    assert len(crops) >= 5
    return crops


@pytest.fixture(scope="module")
def background(media_dir: Path) -> np.ndarray:
    """A real photo without faces, so the detector sees texture, not a flat field."""
    return cv2.cvtColor(cv2.imread(str(media_dir / "free-mountain-vector-01.jpg")), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def recognizers() -> tuple[Recognizer, Recognizer]:
    """The shipped default at default settings, and the same with a full detection on every frame."""
    return Recognizer(num_threads=1), Recognizer(num_threads=1, detect_every=1)


def _position(actor: Actor, frame: int, width: int, height: int) -> tuple[int, float, float]:
    side = actor.size * actor.zoom**frame
    return max(4, round(side)), (actor.cx + actor.dx * frame) * width, (actor.cy + actor.dy * frame) * height


def patches(scene: Scene, frame: int) -> list[tuple[float, float, float, float]]:
    """Where the faces of ``frame`` were pasted: (x1, y1, x2, y2) of each actor's patch."""
    rects = []
    for actor in scene.actors:
        if actor.enter <= frame < actor.leave:
            side, cx, cy = _position(actor, frame, scene.width, scene.height)
            half = max(2, round(side * 1.8)) / 2
            rects.append((cx - half, cy - half, cx + half, cy + half))
    return rects


def render(scene: Scene, crops: list[np.ndarray], background: np.ndarray, path: Path) -> Path:
    """Write the scene as an MJPG AVI: each actor pasted (clipped at the frame edges) where it is."""
    base = cv2.resize(background, (scene.width, scene.height), interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (scene.width, scene.height))
    assert writer.isOpened()
    for frame in range(FRAMES):
        canvas = base.copy()
        for actor in scene.actors:
            if not actor.enter <= frame < actor.leave:
                continue
            # the crop is 1.8 face sides: scale it so the face inside is `side` pixels
            side, cx, cy = _position(actor, frame, scene.width, scene.height)
            crop = crops[actor.source % len(crops)]
            out = max(2, round(side * 1.8))
            shrink = out < crop.shape[0]
            patch = cv2.resize(crop, (out, out), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
            x0, y0 = round(cx - out / 2), round(cy - out / 2)
            sx0, sy0 = max(0, -x0), max(0, -y0)
            dx0, dy0 = max(0, x0), max(0, y0)
            dx1, dy1 = min(scene.width, x0 + out), min(scene.height, y0 + out)
            if dx1 > dx0 and dy1 > dy0:
                canvas[dy0:dy1, dx0:dx1] = patch[sy0 : sy0 + dy1 - dy0, sx0 : sx0 + dx1 - dx0]
        writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _runs(
    recognizers: tuple[Recognizer, Recognizer], path: Path
) -> tuple[list[np.ndarray], list[bool], list[np.ndarray]]:
    """Boxes per frame of the default run, which of its frames were key frames, and the exhaustive run's boxes."""
    keyframed, exhaustive = (list(r.predict_video(path)) for r in recognizers)
    boxes = [[np.array([f.box for f in result.faces], np.float64).reshape(-1, 4) for result in run]
             for run in (keyframed, exhaustive)]
    return boxes[0], [result.detected for result in keyframed], boxes[1]


def _followed(exhaustive: list[np.ndarray], key_frames: list[bool]) -> list[np.ndarray]:
    """Per frame, the exhaustive run's faces seen on every frame back to the last key frame."""
    out = []
    for t, boxes in enumerate(exhaustive):
        keep = []
        for box in boxes:
            s, current = t, box[None]
            while not key_frames[s]:
                previous = exhaustive[s - 1]
                if not len(previous) or iou_matrix(current, previous).max() < MATCH_IOU:
                    break
                s, current = s - 1, previous[int(iou_matrix(current, previous).argmax())][None]
            if key_frames[s]:
                keep.append(box)
        out.append(np.array(keep, np.float64).reshape(-1, 4))
    return out


def _matched(a: np.ndarray, b: np.ndarray) -> int:
    """Faces of ``a`` with a face of ``b`` at IoU >= MATCH_IOU (greedy, one-to-one)."""
    if not len(a) or not len(b):
        return 0
    iou = iou_matrix(a, b)
    hits = 0
    while iou.size and iou.max() >= MATCH_IOU:
        i, j = np.unravel_index(int(iou.argmax()), iou.shape)
        iou[i, :] = -1
        iou[:, j] = -1
        hits += 1
    return hits


actors = st.builds(
    Actor,
    source=st.integers(0, 5),
    size=st.floats(12, 400),
    # centres from a little outside the frame to a little beyond it: faces cut by every edge
    cx=st.floats(-0.05, 1.05),
    cy=st.floats(-0.05, 1.05),
    dx=st.floats(-0.03, 0.03),
    dy=st.floats(-0.03, 0.03),
    zoom=st.floats(0.93, 1.07),
    enter=st.integers(0, FRAMES - 1),
    leave=st.integers(1, FRAMES),
)
scenes = st.builds(
    lambda size, cast: Scene(size[0], size[1], tuple(cast)),
    st.sampled_from(FRAME_SIZES),
    st.lists(actors, min_size=1, max_size=8),
)

# The defect of issue 24: five faces under 128 px, standing still (a video of a group photo).
GROUP = Scene(1000, 666, tuple(Actor(i, 70 + 8 * i, 0.12 + 0.19 * i, 0.4, 0, 0, 1.0, 0, FRAMES) for i in range(5)))
# Faces cut by all four corners, shrinking out of the picture: re-fit windows over two edges.
CORNERS = Scene(640, 360, tuple(
    Actor(i, 60, cx, cy, 0.004 * np.sign(cx - 0.5), 0.004 * np.sign(cy - 0.5), 0.97, 0, FRAMES)
    for i, (cx, cy) in enumerate([(0.04, 0.06), (0.96, 0.06), (0.04, 0.94), (0.96, 0.94)])
))
# Tiny faces at the smallest frame, one entering late and one leaving early.
TINY = Scene(200, 200, (Actor(0, 12, 0.02, 0.5, 0.01, 0, 1.0, 0, FRAMES),
                        Actor(1, 20, 0.7, 0.98, 0, -0.01, 1.05, 5, 9)))


# No shrinking: one example is a few seconds of video work, and the assertion message names the scene.
@settings(max_examples=20, deadline=None, derandomize=True, database=None, phases=(Phase.explicit, Phase.generate),
          suppress_health_check=list(HealthCheck))
@given(scene=scenes)
@example(scene=GROUP)
@example(scene=CORNERS)
@example(scene=TINY)
def test_generated_videos_finish_and_match_full_detection(
    scene: Scene, face_crops: list[np.ndarray], background: np.ndarray,
    recognizers: tuple[Recognizer, Recognizer], tmp_path_factory: pytest.TempPathFactory,
) -> None:
    path = render(scene, face_crops, background, tmp_path_factory.mktemp("scene") / "scene.avi")
    keyframed, key_frames, exhaustive = _runs(recognizers, path)
    assert len(keyframed) == len(exhaustive) == FRAMES  # every frame of every video is processed
    assert key_frames[0]

    followed = _followed(exhaustive, key_frames)
    required = sum(len(b) for b in followed)
    kept = sum(_matched(f, k) for f, k in zip(followed, keyframed, strict=True))
    assert kept >= RECALL * required or required - kept <= 1, f"{scene!r}: kept {kept} of {required}"

    invented, carried = 0, 0
    for frame, (boxes, seen) in enumerate(zip(keyframed, exhaustive, strict=True)):
        off_patch = sum(1 for box in boxes if not _on_a_face(box, seen, patches(scene, frame)))
        if key_frames[frame]:
            carried += off_patch * (recognizers[0].detect_every - 1)
        else:
            invented += off_patch
    assert invented <= carried, f"{scene!r}: {invented} faces where none was put, {carried} allowed"


def _on_a_face(box: np.ndarray, seen: np.ndarray, rects: list[tuple[float, float, float, float]]) -> bool:
    """``box`` is a face of the exhaustive run, or its centre lies on a face put into the video."""
    if len(seen) and iou_matrix(box[None], seen).max() >= MATCH_IOU:
        return True
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return any(r[0] <= cx <= r[2] and r[1] <= cy <= r[3] for r in rects)

@pytest.mark.parametrize("scene", [GROUP, CORNERS, TINY], ids=["group", "corners", "tiny"])
def test_server_video_endpoint_gives_the_same_faces(
    scene: Scene, face_crops: list[np.ndarray], background: np.ndarray,
    recognizers: tuple[Recognizer, Recognizer], tmp_path: Path,
) -> None:
    """``POST /v1/predict/video`` at its default settings finishes the same videos with the same faces."""
    from fastapi.testclient import TestClient

    from affectlens.serve.app import create_app

    path = render(scene, face_crops, background, tmp_path / "scene.avi")
    expected = [[list(f.box) for f in result.faces] for result in recognizers[0].predict_video(path)]
    with TestClient(create_app("default", extra_models=[], temp_root=tmp_path)) as client:
        response = client.post("/v1/predict/video", files={"file": ("scene.avi", path.read_bytes(), "video/x-msvideo")})
    assert response.status_code == 200, response.text
    frames = response.json()["frames"]
    assert len(frames) == FRAMES
    for frame, boxes in zip(frames, expected, strict=True):
        assert np.allclose([face["box"] for face in frame["faces"]], boxes, atol=0.01), frame["frame"]
    assert sum(len(f) for f in expected) > 0
