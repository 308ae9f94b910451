"""The real page in headless Chromium: a photo, a video that plays, and the live camera.

Uses Debian's ``chromium`` (``/usr/bin/chromium``, installed by ``.ci/run``) driven by Playwright
for Python; no browser is downloaded. The server runs on a free loopback port in a thread of this
process. The camera is Chromium's fake capture device fed from a y4m file made from
single_face.mp4, so the whole live path (getUserMedia, WebSocket, drawing) runs for real.
Screenshots go to ``test-artifacts/browser/`` (git-ignored; ``AFFECTLENS_TEST_ARTIFACTS`` moves it).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
import uvicorn

from affectlens.serve.app import create_app

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("AFFECTLENS_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "browser"
CHROMIUM = os.environ.get("AFFECTLENS_CHROMIUM", "/usr/bin/chromium")
# What Chromium needs on a machine without a display or outside network: no sandbox as root, no GPU,
# and none of its background connections (they are refused here, many at a time).
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update", "--disable-dev-shm-usage"]
WAIT_MS = 60_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_y4m(video: Path, target: Path, max_frames: int = 72) -> Path:
    """Raw I420 frames in a YUV4MPEG2 file: the format Chromium's fake camera reads."""
    capture = cv2.VideoCapture(str(video))
    fps = round(capture.get(cv2.CAP_PROP_FPS) or 30)
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    with target.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(max_frames):
            ok, bgr = capture.read()
            if not ok:
                break
            out.write(b"FRAME\n" + cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).tobytes())
    capture.release()
    return target


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = create_app("fast", extra_models=["default"], temp_root=tmp_path_factory.mktemp("browser_serve"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="affectlens-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, media_dir: Path) -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium chromium-driver)")
    from playwright.sync_api import sync_playwright

    camera_file = write_y4m(media_dir / "single_face.mp4", tmp_path_factory.mktemp("camera") / "single_face.y4m")
    flags = CHROMIUM_FLAGS + ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                              f"--use-file-for-fake-video-capture={camera_file}",
                              "--autoplay-policy=no-user-gesture-required"]
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser, server_url: str, request: pytest.FixtureRequest) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["camera"], origin=server_url)
    page = context.new_page()
    messages: list[str] = []
    page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: messages.append(f"page error: {error}"))
    page.goto(server_url + "/")
    page.wait_for_function("document.querySelectorAll('#model option').length >= 2", timeout=WAIT_MS)
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not [m for m in messages if m.startswith(("error", "page error"))], messages


def save_screenshot(page, tmp_path: Path, name: str) -> None:
    shot = tmp_path / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / shot.name)


def test_photo_shows_five_faces(page, media_dir: Path, tmp_path: Path) -> None:
    page.set_input_files("#photo-input", str(media_dir / "multi_face.jpg"))
    page.wait_for_function("document.querySelectorAll('#photo-faces .face-result').length === 5", timeout=WAIT_MS)
    assert page.locator("#photo-faces .face-result").count() == 5
    assert page.locator("#photo-faces .face-result").first.locator(".bar-row").count() == 7  # one bar per class
    assert page.eval_on_selector("#photo-canvas", "c => [c.width, c.height]") == [1000, 667]
    assert page.inner_text("#photo-status").startswith("5 faces in multi_face.jpg")
    save_screenshot(page, tmp_path, "photo_multi_face")


def test_annotated_video_plays(page, media_dir: Path, tmp_path: Path) -> None:
    page.click("#tab-video")
    page.set_input_files("#video-input", str(media_dir / "single_face.mp4"))
    page.wait_for_selector("#video-result:not([hidden])", timeout=WAIT_MS)
    page.eval_on_selector("#video-player", "v => { v.muted = true; return v.play(); }")
    page.wait_for_function("(() => { const v = document.getElementById('video-player');"
                           " return v.readyState >= 4 && v.currentTime > 0; })()", timeout=WAIT_MS)
    state = page.eval_on_selector("#video-player", "v => ({ready: v.readyState, width: v.videoWidth, "
                                                    "height: v.videoHeight, duration: v.duration, error: v.error})")
    assert state["ready"] == 4 and state["error"] is None  # HAVE_ENOUGH_DATA
    assert (state["width"], state["height"]) == (640, 360) and state["duration"] == pytest.approx(2.4, abs=0.15)
    assert page.get_attribute("#download-csv", "href").startswith("blob:")
    assert page.get_attribute("#download-jsonl", "href").startswith("blob:")
    assert page.eval_on_selector("#video-timeline", "img => img.complete && img.naturalWidth > 0")
    assert "72 frames analysed, 1 face track" in page.inner_text("#video-status")
    save_screenshot(page, tmp_path, "video_single_face")


def test_live_camera_draws_boxes(page, tmp_path: Path) -> None:
    page.click("#tab-camera")
    page.click("#camera-start")
    page.wait_for_function("Number(document.getElementById('camera-canvas').dataset.boxesDrawn || 0) >= 10",
                           timeout=WAIT_MS)
    page.wait_for_selector("#camera-faces .face-result", timeout=WAIT_MS)
    assert page.locator("#camera-faces .face-result").count() == 1
    assert "analysed" in page.inner_text("#camera-status")
    size = page.eval_on_selector("#camera-canvas", "c => [c.width, c.height]")
    assert size == [640, 360]
    save_screenshot(page, tmp_path, "camera_fake_device")
    page.click("#camera-stop")
