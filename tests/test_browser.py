"""The real page in headless Chromium: a photo, a video that plays, and the live camera.

Uses Debian's ``chromium`` (``/usr/bin/chromium``, installed by ``.ci/run``) driven by Playwright
for Python; no browser is downloaded. The server runs on a free loopback port in a thread of this
process. The camera is Chromium's fake capture device fed from a y4m file made from
single_face.mp4, so the whole live path (getUserMedia, WebSocket, drawing) runs for real.
Every test runs at a desktop size (1366x900) and a phone size (390x844).
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


VIEWPORTS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(params=sorted(VIEWPORTS))
def viewport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture()
def page(browser, server_url: str, viewport: str, request: pytest.FixtureRequest) -> Iterator[object]:
    context = browser.new_context(viewport=VIEWPORTS[viewport], is_mobile=viewport == "phone",
                                  has_touch=viewport == "phone")
    context.grant_permissions(["camera"], origin=server_url)
    page = context.new_page()
    messages: list[str] = []
    page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: messages.append(f"page error: {error}"))
    page.goto(server_url + "/")
    page.wait_for_function("document.querySelectorAll('#model option').length >= 2", timeout=WAIT_MS)
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name.replace('/', '_')}.png"), full_page=True)
    context.close()
    # the browser logs every 4xx answer (the page shows it as a plain error); nothing else may fail
    expected = "the server responded with a status of 4"
    assert not [m for m in messages if m.startswith(("error", "page error")) and expected not in m], messages


def save_screenshot(page, tmp_path: Path, name: str) -> None:
    shot = tmp_path / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / shot.name)


def test_photo_shows_five_faces(page, media_dir: Path, tmp_path: Path, viewport: str) -> None:
    page.set_input_files("#photo-input", str(media_dir / "multi_face.jpg"))
    page.wait_for_function("document.querySelectorAll('#photo-faces .face-result').length === 5", timeout=WAIT_MS)
    assert page.locator("#photo-faces .face-result").first.locator(".bar-row").count() == 7  # one bar per class
    assert page.inner_text("#photo-status").startswith("5 faces in multi_face.jpg")
    assert page.get_attribute("#photo-figure", "data-model") == "fast"
    assert "model fast" in page.inner_text("#photo-caption")
    check_overlay(page, faces=5)
    save_screenshot(page, tmp_path, f"photo_multi_face_{viewport}")


def rgb(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text[text.index("(") + 1:text.index(")")].split(",")[:3])


def contrast(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    def luminance(colour: tuple[int, ...]) -> float:
        linear = [c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in colour]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def overlap(a: dict, b: dict) -> float:
    width = min(a["right"], b["right"]) - max(a["left"], b["left"])
    height = min(a["bottom"], b["bottom"]) - max(a["top"], b["top"])
    return max(0.0, width) * max(0.0, height)


def check_overlay(page, faces: int) -> None:
    """Boxes scale with the shown image, labels are readable (>= 12 CSS px, AA contrast), inside the
    photo, and no label covers another."""
    shown = page.evaluate("""() => {
        const rect = (e) => { const r = e.getBoundingClientRect();
                              return {left: r.left, top: r.top, right: r.right, bottom: r.bottom}; };
        const image = document.getElementById('photo-image');
        return {
          image: rect(image), natural: [image.naturalWidth, image.naturalHeight],
          boxes: [...document.querySelectorAll('#photo-overlay .face-box')].map(rect),
          labels: [...document.querySelectorAll('#photo-overlay .face-label')].map((e) => {
            const style = getComputedStyle(e);
            return {...rect(e), font: parseFloat(style.fontSize), colour: style.color,
                    background: style.backgroundColor, text: e.textContent};
          }),
        };
    }""")
    image, labels = shown["image"], shown["labels"]
    assert shown["natural"][0] > 0 and len(shown["boxes"]) == len(labels) == faces
    for box in shown["boxes"]:  # inside the image as drawn on the screen
        assert image["left"] - 1 <= box["left"] < box["right"] <= image["right"] + 1
        assert image["top"] - 1 <= box["top"] < box["bottom"] <= image["bottom"] + 1
    for label in labels:
        assert label["font"] >= 12, label
        assert contrast(rgb(label["colour"]), rgb(label["background"])) >= 4.5, label
        assert image["left"] - 1 <= label["left"] and label["right"] <= image["right"] + 1, label
        assert image["top"] - 1 <= label["top"] and label["bottom"] <= image["bottom"] + 1, label
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            assert overlap(a, b) < 1, (a, b)


def test_annotated_video_plays(page, media_dir: Path, tmp_path: Path, viewport: str) -> None:
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
    assert page.get_attribute("#download-csv", "href").endswith("/predictions.csv")
    assert page.get_attribute("#download-jsonl", "href").endswith("/predictions.jsonl")
    page.wait_for_function("(() => { const i = document.getElementById('video-timeline');"
                           " return i.complete && i.naturalWidth > 0; })()", timeout=WAIT_MS)
    # the plot's text at a readable size: never shrunk below 90% of its own pixels (it scrolls on a phone)
    scale = page.eval_on_selector("#video-timeline", "i => i.getBoundingClientRect().width / i.naturalWidth")
    assert scale >= 0.9
    assert "72 frames analysed, 1 face track" in page.inner_text("#video-status")
    assert "model fast" in page.inner_text("#video-status") and "(model fast)" in page.inner_text("#video-summary")
    assert page.locator("#video-progress").is_hidden()
    save_screenshot(page, tmp_path, f"video_single_face_{viewport}")


def test_live_camera_draws_boxes(page, tmp_path: Path, viewport: str) -> None:
    page.click("#tab-camera")
    page.click("#camera-start")
    page.wait_for_function("Number(document.getElementById('camera-canvas').dataset.boxesDrawn || 0) >= 10",
                           timeout=WAIT_MS)
    page.wait_for_selector("#camera-faces .face-result", timeout=WAIT_MS)
    assert page.locator("#camera-faces .face-result").count() == 1
    page.wait_for_function("document.getElementById('camera-status').textContent.includes('analysed')",
                           timeout=5000)  # the status follows the answers within about a second
    size = page.eval_on_selector("#camera-canvas", "c => [c.width, c.height]")
    assert size == [640, 360]
    # the live region is read aloud on every change: at most about once a second, however fast the answers
    page.evaluate("""() => { window.statusChanges = 0;
        new MutationObserver(() => { window.statusChanges += 1; })
          .observe(document.getElementById('camera-status'), {childList: true, characterData: true, subtree: true});
        window.answersBefore = Number(document.getElementById('camera-canvas').dataset.answers); }""")
    page.wait_for_timeout(3000)
    changes, answers = page.evaluate("() => [window.statusChanges, Number(document.getElementById("
                                     "'camera-canvas').dataset.answers) - window.answersBefore]")
    assert answers >= 6 and 1 <= changes <= 4, (answers, changes)
    save_screenshot(page, tmp_path, f"camera_fake_device_{viewport}")
    page.click("#camera-stop")


# ------------------------------------------------------------------------ one result per request
DELAY_FIRST_PREDICT = """() => {
    // The first photo answer arrives late whatever the server does: the page must drop it, not show it.
    const realFetch = window.fetch.bind(window);
    window.predictCalls = 0;
    window.lateDelivered = false;
    window.fetch = async (url, options = {}) => {
        if (!String(url).startsWith('/v1/predict') || String(url).startsWith('/v1/predict/video')) {
            return realFetch(url, options);
        }
        window.predictCalls += 1;
        if (window.predictCalls !== 1) return realFetch(url, options);
        const {signal, ...rest} = options;  // answered even when the page aborts it: a stale answer
        const response = await realFetch(url, rest);
        await new Promise((resolve) => setTimeout(resolve, 2500));
        window.lateDelivered = true;
        return response;
    };
}"""


def test_newer_photo_wins_over_a_slower_older_answer(page, media_dir: Path, tmp_path: Path, viewport: str) -> None:
    page.evaluate(DELAY_FIRST_PREDICT)
    page.set_input_files("#photo-input", str(media_dir / "BWPictureHuman.jpg"))
    page.wait_for_function("window.predictCalls === 1", timeout=WAIT_MS)  # the first request is on its way
    page.set_input_files("#photo-input", str(media_dir / "single_face.jpg"))
    page.wait_for_function("document.getElementById('photo-status').textContent.startsWith('1 face in single_face')",
                           timeout=WAIT_MS)
    page.wait_for_function("window.lateDelivered === true", timeout=WAIT_MS)
    page.wait_for_timeout(300)
    assert page.evaluate("window.predictCalls") == 2
    assert page.get_attribute("#photo-figure", "data-file") == "single_face.jpg"
    assert page.inner_text("#photo-status").startswith("1 face in single_face.jpg")
    assert page.locator("#photo-faces .face-result").count() == 1
    assert page.locator("#photo-overlay .face-label").count() == 1
    save_screenshot(page, tmp_path, f"photo_newest_wins_{viewport}")


def test_changing_the_model_reanalyses_the_photo(page, media_dir: Path, tmp_path: Path, viewport: str) -> None:
    page.set_input_files("#photo-input", str(media_dir / "single_face.jpg"))
    page.wait_for_function("document.getElementById('photo-figure').dataset.model === 'fast'", timeout=WAIT_MS)
    page.select_option("#model", "default")
    page.wait_for_function("document.getElementById('photo-figure').dataset.model === 'default' && "
                           "!document.getElementById('photo-figure').hidden", timeout=WAIT_MS)
    assert "model default" in page.inner_text("#photo-caption")
    assert "model default" in page.inner_text("#photo-status")
    assert page.locator("#photo-faces .face-result").count() == 1
    save_screenshot(page, tmp_path, f"photo_model_changed_{viewport}")


def test_a_failed_upload_clears_the_previous_photo(page, media_dir: Path, tmp_path: Path, viewport: str) -> None:
    page.set_input_files("#photo-input", str(media_dir / "multi_face.jpg"))
    page.wait_for_function("document.querySelectorAll('#photo-faces .face-result').length === 5", timeout=WAIT_MS)
    bad = tmp_path / "holiday.jpg"
    bad.write_bytes(b"this is not a photo at all")
    page.set_input_files("#photo-input", str(bad))
    page.wait_for_selector("#photo-status.error", timeout=WAIT_MS)
    assert page.locator("#photo-figure").is_hidden()
    assert page.locator("#photo-faces .face-result").count() == 0
    assert_plain(page.inner_text("#photo-status"), "holiday.jpg")
    page.set_input_files("#photo-input", str(media_dir / "single_face.mp4"))  # a video on the photo tab
    page.wait_for_function("document.getElementById('photo-status').textContent.includes('Video tab')",
                           timeout=WAIT_MS)
    assert_plain(page.inner_text("#photo-status"), "single_face.mp4")
    save_screenshot(page, tmp_path, f"photo_failed_upload_{viewport}")


def assert_plain(text: str, *words: str) -> None:
    """A user-facing error: no API paths, parameters or HTTP status codes."""
    import re

    assert "/v1" not in text and "HTTP" not in text and "every=" not in text, text
    assert not re.search(r"\b[45]\d\d\b", text), text
    for word in words:
        assert word in text, text


@pytest.mark.parametrize("extension", [".tif", ".pgm"])
def test_tiff_and_pgm_photos_are_shown(page, media_dir: Path, tmp_path: Path, viewport: str, extension: str) -> None:
    bgr = cv2.imread(str(media_dir / "multi_face.jpg"))
    path = tmp_path / f"group{extension}"
    assert cv2.imwrite(str(path), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if extension == ".pgm" else bgr)
    page.set_input_files("#photo-input", str(path))
    page.wait_for_function("document.querySelectorAll('#photo-faces .face-result').length === 5", timeout=WAIT_MS)
    assert not page.locator("#photo-status.error").count()
    assert page.get_attribute("#photo-image", "src").startswith("data:image/jpeg")
    check_overlay(page, faces=5)
    save_screenshot(page, tmp_path, f"photo{extension.replace('.', '_')}_{viewport}")


def test_a_video_without_faces_replaces_the_previous_result(page, media_dir: Path, tmp_path: Path,
                                                             viewport: str) -> None:
    page.click("#tab-video")
    page.set_input_files("#video-input", str(media_dir / "no_face.mp4"))  # a fresh page: no broken image
    page.wait_for_selector("#video-result:not([hidden])", timeout=WAIT_MS)
    assert page.inner_text("#video-summary").startswith("No faces found.")
    assert page.locator("#video-timeline").is_hidden()
    page.set_input_files("#video-input", str(media_dir / "single_face.mp4"))
    page.wait_for_function("document.getElementById('video-summary').textContent.startsWith('face #0')",
                           timeout=WAIT_MS)
    assert page.locator("#video-timeline").is_visible()
    page.set_input_files("#video-input", str(media_dir / "no_face.mp4"))
    page.wait_for_function("document.getElementById('video-summary').textContent.startsWith('No faces found.')",
                           timeout=WAIT_MS)
    assert page.locator("#video-timeline").is_hidden()
    assert page.get_attribute("#video-timeline", "src") is None
    assert page.get_attribute("#video-result", "data-file") == "no_face.mp4"
    save_screenshot(page, tmp_path, f"video_no_face_after_face_{viewport}")


@pytest.fixture(scope="module")
def long_clip(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """single_face.mp4 ten times over (720 frames): long enough to watch its progress and cancel it."""
    capture = cv2.VideoCapture(str(media_dir / "single_face.mp4"))
    frames = []
    while (frame := capture.read())[0]:
        frames.append(frame[1])
    capture.release()
    target = tmp_path_factory.mktemp("long_clip") / "long_clip.mp4"
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (width, height))
    for _ in range(10):
        for bgr in frames:
            writer.write(bgr)
    writer.release()
    return target


def test_a_long_video_shows_progress_and_can_be_cancelled(page, server_url: str, long_clip: Path, tmp_path: Path,
                                                          viewport: str) -> None:
    jobs: list[str] = []
    page.on("response", lambda r: jobs.append(r.url) if r.request.method == "POST" and "/v1/video-jobs" in r.url
            else None)
    page.click("#tab-video")
    page.set_input_files("#video-input", str(long_clip))
    page.wait_for_function("/ of 720 frames \\(\\d+%\\), about \\d+ s left/.test("
                           "document.getElementById('video-progress-text').textContent)", timeout=WAIT_MS)
    value = page.eval_on_selector("#video-progress-bar", "p => p.value")
    assert 0 < value < 1
    save_screenshot(page, tmp_path, f"video_progress_{viewport}")
    requests: list[tuple[str, str]] = []
    page.on("request", lambda r: requests.append((r.method, r.url)))
    page.click("#video-cancel")
    page.wait_for_function("document.getElementById('video-status').textContent === 'Cancelled.'", timeout=WAIT_MS)
    assert page.locator("#video-progress").is_hidden() and page.locator("#video-result").is_hidden()
    deletes = [url for method, url in requests if method == "DELETE"]
    assert len(deletes) == 1 and "/v1/video-jobs/" in deletes[0]
    page.wait_for_timeout(500)
    assert page.request.get(deletes[0]).status == 404  # the server forgot the job
    assert jobs


def test_tabs_follow_the_arrow_keys(page, viewport: str, tmp_path: Path) -> None:
    page.focus("#tab-photo")
    assert page.evaluate("[...document.querySelectorAll('[role=tab]')].map(t => t.tabIndex)") == [0, -1, -1]
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.id") == "tab-video"
    assert page.get_attribute("#tab-video", "aria-selected") == "true"
    assert page.locator("#video-panel").is_visible() and page.locator("#photo-panel").is_hidden()
    page.keyboard.press("End")
    assert page.evaluate("document.activeElement.id") == "tab-camera"
    page.keyboard.press("ArrowRight")  # wraps round
    assert page.evaluate("document.activeElement.id") == "tab-photo"
    page.keyboard.press("ArrowLeft")
    assert page.evaluate("document.activeElement.id") == "tab-camera"
    page.keyboard.press("Home")
    assert page.get_attribute("#tab-photo", "aria-selected") == "true"
    assert page.evaluate("[...document.querySelectorAll('[role=tab]')].map(t => t.tabIndex)") == [0, -1, -1]


def test_header_is_compact_on_a_phone(page, viewport: str, tmp_path: Path) -> None:
    header = page.eval_on_selector("header", "h => h.getBoundingClientRect().height")
    about_open = page.eval_on_selector("#model-about", "d => d.open")
    if viewport == "phone":
        assert header <= 100 and not about_open, header
    else:
        assert about_open and page.locator("#model-info").is_visible()
    # nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    save_screenshot(page, tmp_path, f"header_{viewport}")


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_load_nothing_from_outside(page, server_url: str, viewport: str, tmp_path: Path, path: str) -> None:
    outside: list[str] = []

    def only_this_server(route) -> None:
        if route.request.url.startswith(server_url) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.goto(server_url + path)
    selector = ".swagger-ui .opblock" if path == "/docs" else ".api-content h2"
    page.wait_for_selector(selector, state="attached", timeout=WAIT_MS)
    page.wait_for_timeout(500)  # images and workers the page starts after rendering
    assert "/v1/video-jobs" in page.inner_text("body")
    assert outside == []
    save_screenshot(page, tmp_path, f"docs{path.replace('/', '_')}_{viewport}")
