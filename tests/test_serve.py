"""The web app in process: every endpoint, every error path, the camera WebSocket, H.264 output.

Real photos and videos from ../shared/media; limits are set tiny where a test needs to cross one,
so that no test has to send a huge file.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import random
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from affectlens.data.image_io import read_image
from affectlens.errors import AffectlensError
from affectlens.inference.outputs import JsonlWriter, csv_header
from affectlens.inference.video import VideoWriter
from affectlens.serve.app import create_app, run_server
from affectlens.serve.command import serve_command
from affectlens.serve.limits import Deadline, ServeLimits
from affectlens.serve.schemas import ImageRecord, ModelList, PhotoAnswer, VideoAnswer, VideoJobResult, VideoJobStatus
from affectlens.serve.uploads import decode_image, display_name, sniff

if TYPE_CHECKING:
    from conftest import FakeClock, PngHeaderOnly

MODEL = "fast"  # the quickest shipped model; the detector (which finds the faces) is the same for all


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return create_app(MODEL, extra_models=["default"], temp_root=tmp_path_factory.mktemp("serve_temp"))


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def small_app(tmp_path: Path, **limits) -> TestClient:
    """An app with some limits changed, sharing nothing with the module's app."""
    return TestClient(create_app(MODEL, extra_models=[], limits=ServeLimits(**limits), temp_root=tmp_path))


def upload(path: Path | str, data: bytes | None = None, content_type: str = "application/octet-stream") -> dict:
    name = Path(path).name
    return {"file": (name, Path(path).read_bytes() if data is None else data, content_type)}


def assert_error(response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and "\n" not in body["error"], body
    for word in words:
        assert word in body["error"], body


def jpeg_frames(video: Path, every: int) -> list[bytes]:
    capture = cv2.VideoCapture(str(video))
    frames, index = [], 0
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        if index % every == 0:
            frames.append(cv2.imencode(".jpg", bgr)[1].tobytes())
        index += 1
    capture.release()
    return frames


# ------------------------------------------------------------------------------ service endpoints
def test_health_models_docs_and_page(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["models"] == [MODEL, "default"]
    listing = ModelList.model_validate(client.get("/v1/models").json())
    assert listing.default == MODEL
    assert [m.name for m in listing.models] == [MODEL, "default"]
    assert all(m.classes and m.file.endswith((".safetensors", ".onnx")) for m in listing.models)
    assert [m.default for m in listing.models] == [True, False]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/predict", "/v1/predict/video", "/v1/models", "/health"} <= set(paths)
    assert {"413", "415", "422", "503", "504"} <= set(paths["/v1/predict"]["post"]["responses"])
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert_error(client.get("/no/such/page"), 404)


def test_page_needs_nothing_from_outside(client: TestClient) -> None:
    """Offline: the page and everything it loads come from this server (no CDN, no fonts)."""
    for path in ("/", "/static/app.js", "/static/app.css"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "http://" not in response.text and "https://" not in response.text, path
    assert 'src="/static/app.js"' in client.get("/").text


# ------------------------------------------------------------------------------------------ photos
def test_multi_face_photo_is_the_cli_record(client: TestClient, app: FastAPI, media_dir: Path,
                                            tmp_path: Path) -> None:
    response = client.post("/v1/predict", files=upload(media_dir / "multi_face.jpg", content_type="image/jpeg"))
    assert response.status_code == 200, response.text
    record = response.json()
    assert len(record["faces"]) == 5
    ImageRecord.model_validate(record)
    assert response.headers["X-Affectlens-Model"] == MODEL
    # The same record the CLI writes to predictions.jsonl for this photo.
    recognizer = app.state.engine.get(MODEL)
    result = recognizer.predict(read_image(media_dir / "multi_face.jpg"))
    result.source = "multi_face.jpg"
    with JsonlWriter(tmp_path / "predictions.jsonl") as writer:
        writer.write(result)
    assert record == json.loads((tmp_path / "predictions.jsonl").read_text())


def test_type_is_read_from_content_not_name(client: TestClient, media_dir: Path) -> None:
    data = (media_dir / "single_face.jpg").read_bytes()
    named_wrong = client.post("/v1/predict", files={"file": ("notes.txt", data, "text/plain")})
    assert named_wrong.status_code == 200 and len(named_wrong.json()["faces"]) == 1
    assert named_wrong.json()["file"] == "notes.txt"
    text_as_jpeg = client.post("/v1/predict", files={"file": ("photo.jpg", b"hello, not a photo", "image/jpeg")})
    assert_error(text_as_jpeg, 415, "photo.jpg", "not a supported image")
    video_as_photo = client.post("/v1/predict", files=upload(media_dir / "single_face.mp4", content_type="image/png"))
    assert_error(video_as_photo, 415, "/v1/predict/video")
    photo_as_video = client.post("/v1/predict/video", files=upload(media_dir / "single_face.jpg"))
    assert_error(photo_as_video, 415, "/v1/predict")


def test_grey_rgba_and_other_model(client: TestClient, media_dir: Path) -> None:
    rgba = client.post("/v1/predict", files=upload(media_dir / "Image_with_alpha.png"))
    assert rgba.status_code == 200 and len(rgba.json()["faces"]) == 1
    grey = client.post("/v1/predict?model=default", files=upload(media_dir / "BWPictureHuman.jpg"))
    assert grey.status_code == 200 and len(grey.json()["faces"]) >= 1
    assert grey.headers["X-Affectlens-Model"] == "default"
    none = client.post("/v1/predict", files=upload(media_dir / "free-mountain-vector-01.jpg"))
    assert none.status_code == 200 and none.json()["faces"] == []
    assert_error(client.post("/v1/predict?model=nope", files=upload(media_dir / "single_face.jpg")), 422,
                 "unknown model 'nope'", MODEL)


def test_photo_read_as_displayed(client: TestClient, media_dir: Path) -> None:
    """EXIF orientation applied (displayed size reported), 16-bit scaled, animation noticed."""
    displayed = Image.open(media_dir / "single_face.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    stored = io.BytesIO()
    displayed.transpose(Image.Transpose.ROTATE_90).save(stored, "JPEG", exif=exif, quality=95)
    rotated = client.post("/v1/predict", files={"file": ("portrait.jpg", stored.getvalue(), "image/jpeg")}).json()
    assert (rotated["width"], rotated["height"]) == displayed.size and len(rotated["faces"]) == 1

    grey16 = np.asarray(displayed.convert("L"), np.uint16) * 257
    png16 = io.BytesIO()
    Image.fromarray(grey16).save(png16, "PNG")
    decoded = decode_image(png16.getvalue(), "grey16.png", 10**8)
    assert np.abs(decoded.pixels[..., 0].astype(int) - np.asarray(displayed.convert("L"), int)).max() <= 1
    answer = client.post("/v1/predict", files={"file": ("grey16.png", png16.getvalue(), "image/png")})
    assert answer.status_code == 200 and len(answer.json()["faces"]) == 1

    gif = io.BytesIO()
    frames = [displayed.convert("P"), displayed.transpose(Image.Transpose.FLIP_LEFT_RIGHT).convert("P")]
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:])
    animated = client.post("/v1/predict", files={"file": ("a.gif", gif.getvalue(), "image/gif")})
    assert animated.status_code == 200 and "only the first frame" in animated.headers["X-Affectlens-Notice"]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pixel_bombs_are_refused_before_decoding(client: TestClient, media_dir: Path, tmp_path: Path,
                                                 png_header_only: PngHeaderOnly) -> None:
    for width, height in ((60_000, 60_000), (10_000, 10_000)):  # over Pillow's own bomb limit, and just ours
        bomb = png_header_only(width, height)
        assert len(bomb) < 2000
        assert_error(client.post("/v1/predict", files={"file": ("bomb.png", bomb, "image/png")}), 413, "bomb.png")
    tight = small_app(tmp_path, max_pixels=200_000)
    assert_error(tight.post("/v1/predict", files=upload(media_dir / "multi_face.jpg")), 413,
                 "1000x667", "megapixel limit")
    assert_error(tight.post("/v1/predict/video", files=upload(media_dir / "single_face.mp4")), 413,
                 "640x360", "megapixel limit")


def test_undecodable_and_malformed_requests(client: TestClient, media_dir: Path) -> None:
    jpeg = (media_dir / "single_face.jpg").read_bytes()
    cases = {
        "truncated.jpg": jpeg[: len(jpeg) // 3],
        "header_only.jpg": jpeg[:4] + b"\x00" * 64,
        "header_only.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
    }
    for name, data in cases.items():
        assert_error(client.post("/v1/predict", files={"file": (name, data, "image/jpeg")}), 422, name)
    assert_error(client.post("/v1/predict", files={"file": ("empty.jpg", b"", "image/jpeg")}), 422, "empty")
    assert_error(client.post("/v1/predict", files={"other": ("x.jpg", jpeg, "image/jpeg")}), 422,
                 "missing form field 'file'")
    assert_error(client.post("/v1/predict", content=b"raw bytes", headers={"content-type": "image/jpeg"}), 422)
    assert_error(client.post("/v1/predict", content=b"--x\r\nbroken", headers={
        "content-type": "multipart/form-data; boundary=x"}), 422, "file")
    mp4 = (media_dir / "single_face.mp4").read_bytes()
    assert_error(client.post("/v1/predict/video", files={"file": ("cut.mp4", mp4[: len(mp4) // 4], "video/mp4")}),
                 422, "cut.mp4")
    assert_error(client.post("/v1/predict/video", files={"file": ("junk.mp4", mp4[:12] + b"\x00" * 500, "video/mp4")}),
                 422, "junk.mp4")
    assert_error(client.post("/v1/predict/video?every=0", files=upload(media_dir / "single_face.mp4")), 422, "every")
    assert_error(client.post("/v1/predict/video?format=xml", files=upload(media_dir / "single_face.mp4")), 422)


def test_random_bytes_behind_every_magic_number_never_give_a_500(client: TestClient) -> None:
    rng = random.Random(12)
    prefixes = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"II*\x00", b"MM\x00*", b"BM",
                b"RIFF\x00\x00\x00\x00WEBP", b"P5\n", b"P6 ", b"\x00\x00\x00\x18ftypmp42", b"\x1a\x45\xdf\xa3",
                b"RIFF\x00\x00\x00\x00AVI ", b"\x00\x00\x01\xba", b""]
    for prefix in prefixes:
        for size in (0, 7, 300, 5000):
            data = prefix + bytes(rng.getrandbits(8) for _ in range(size))
            for endpoint in ("/v1/predict", "/v1/predict/video"):
                response = client.post(endpoint, files={"file": ("fuzz.bin", data, "application/octet-stream")})
                assert 400 <= response.status_code < 500 or response.status_code == 200, (prefix, size, endpoint)
                assert "error" in response.json() or response.status_code == 200


# ------------------------------------------------------------------------------------------ limits
def test_upload_size_limit(tmp_path: Path, media_dir: Path) -> None:
    limited = small_app(tmp_path, max_upload_mb=0.1)
    just_over = (media_dir / "multi_face.jpg").read_bytes()  # over the limit, within multipart's allowance
    far_over = (media_dir / "BWPictureHuman.jpg").read_bytes()  # refused from its Content-Length, unread
    assert 100_000 < len(just_over) < 100_000 + 64 * 1024 < len(far_over)
    for photo in (just_over, far_over):
        assert_error(limited.post("/v1/predict", files={"file": ("big.jpg", photo, "image/jpeg")}), 413, "0.1 MB")
    assert_error(limited.post("/v1/predict/video", files=upload(media_dir / "single_face.mp4")), 413, "0.1 MB")

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit counts bytes as they arrive
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.jpg\"\r\n\r\n"
        for _ in range(40):
            yield b"\xff" * 8192
        yield b"\r\n--b--\r\n"

    response = limited.post("/v1/predict", content=chunked(),
                            headers={"content-type": "multipart/form-data; boundary=b"})
    assert_error(response, 413, "0.1 MB")
    small = limited.post("/v1/predict", files=upload(media_dir / "single_face.jpg"))
    assert small.status_code == 200  # under the limit still works


def test_time_limit_and_busy_server(tmp_path: Path, media_dir: Path, fake_clock: FakeClock,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # the requests' deadlines read a fake clock, so the limit is crossed by the logic, not by this machine's speed
    monkeypatch.setattr("affectlens.serve.limits.clock", fake_clock)
    slow = small_app(tmp_path, timeout_s=0.05)
    fake_clock.tick = 0.01  # 0.01 s a reading: the 0.05 s limit runs out a few frames into the video
    assert_error(slow.post("/v1/predict/video", files=upload(media_dir / "single_face.mp4")), 504,
                 "single_face.mp4", "0.05 s time limit")
    fake_clock.tick = 0.0  # time stands still: the same video under the same limit is answered
    assert slow.post("/v1/predict/video?every=8", files=upload(media_dir / "single_face.mp4")).status_code == 200
    busy_app = create_app(MODEL, extra_models=[], limits=ServeLimits(concurrency=1, timeout_s=0.5), temp_root=tmp_path)
    busy = TestClient(busy_app)
    with busy_app.state.engine.slot(Deadline(10)):  # another request holds the only slot
        response = busy.post("/v1/predict", files=upload(media_dir / "single_face.jpg"))
    assert_error(response, 503, "busy")
    assert response.headers["Retry-After"] == "1"
    assert busy.post("/v1/predict", files=upload(media_dir / "single_face.jpg")).status_code == 200
    assert_error(small_app(tmp_path, max_video_frames=10).post(
        "/v1/predict/video", files=upload(media_dir / "single_face.mp4")), 413, "72 frames", "every=8")
    assert list(tmp_path.iterdir()) == []


def test_limits_and_server_options_are_checked() -> None:
    for bad in ({"max_upload_mb": 0}, {"timeout_s": float("nan")}, {"concurrency": 0}, {"max_pixels": 1.5},
                {"max_video_frames": True}):
        with pytest.raises(AffectlensError, match=next(iter(bad))):
            ServeLimits(**bad)
    with pytest.raises(AffectlensError, match="--port"):
        run_server(port=70000)
    with pytest.raises(AffectlensError, match="--workers"):
        run_server(workers=0)
    runner = CliRunner()
    helped = runner.invoke(serve_command, ["--help"])
    assert helped.exit_code == 0
    for option in ("--host", "--port", "--model", "--workers", "--max-upload-mb", "--timeout"):
        assert option in helped.output
    assert runner.invoke(serve_command, ["--port", "70000"]).exit_code == 2
    assert runner.invoke(serve_command, ["--timeout", "-1"]).exit_code == 2


# ------------------------------------------------------------------------------------------ videos
def test_video_timeline_csv_and_annotated_h264(client: TestClient, app: FastAPI, media_dir: Path) -> None:
    response = client.post("/v1/predict/video?every=6&annotate=true", files=upload(media_dir / "single_face.mp4"))
    assert response.status_code == 200, response.text
    answer = VideoAnswer.model_validate(response.json())
    assert answer.frames_analysed == 12 and [r.frame for r in answer.frames] == list(range(0, 72, 6))
    assert all(len(r.faces) == 1 and r.file == "single_face.mp4" for r in answer.frames)
    assert answer.tracks == [0] and answer.fps == pytest.approx(30.0)
    rows = answer.csv.strip().splitlines()
    recognizer = app.state.engine.get(MODEL)
    assert rows[0].split(",") == csv_header(recognizer.class_names, recognizer.has_valence_arousal)
    assert len(rows) == 1 + 12
    assert answer.timeline_png.startswith("data:image/png;base64,")
    video = base64.b64decode(answer.annotated_video.split(",", 1)[1])
    import av

    with av.open(io.BytesIO(video)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert sum(1 for _ in container.decode(stream)) == 12

    as_csv = client.post("/v1/predict/video?every=6&format=csv", files=upload(media_dir / "single_face.mp4"))
    assert as_csv.headers["content-type"].startswith("text/csv") and as_csv.text == answer.csv
    as_jsonl = client.post("/v1/predict/video?every=6&format=jsonl", files=upload(media_dir / "single_face.mp4"))
    assert [json.loads(line) for line in as_jsonl.text.splitlines()] == response.json()["frames"]
    no_face = client.post("/v1/predict/video?every=8", files=upload(media_dir / "no_face.mp4")).json()
    assert no_face["tracks"] == [] and all(r["faces"] == [] for r in no_face["frames"])
    assert no_face["annotated_video"] is None and no_face["timeline_png"] is None


def test_no_request_file_outlives_its_request(tmp_path: Path, media_dir: Path, fake_clock: FakeClock,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Per-request folders, and the form parser's spooled files, are gone after success and failure."""
    import tempfile

    system_temp = tmp_path / "system"
    request_temp = tmp_path / "requests"
    system_temp.mkdir()
    request_temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_temp))
    # deadlines read a clock that moves 0.01 s a reading: the hurried app's 0.01 s limit runs out at the
    # first frame however fast this machine is, the other's 120 s never does
    fake_clock.tick = 0.01
    monkeypatch.setattr("affectlens.serve.limits.clock", fake_clock)
    client = TestClient(create_app(MODEL, extra_models=[], temp_root=request_temp))
    hurried = TestClient(create_app(MODEL, extra_models=[], limits=ServeLimits(timeout_s=0.01),
                                    temp_root=request_temp))
    mp4 = (media_dir / "single_face.mp4").read_bytes()
    responses = [
        client.post("/v1/predict/video?every=12&annotate=true", files=upload(media_dir / "single_face.mp4")),
        client.post("/v1/predict/video", files={"file": ("cut.mp4", mp4[: len(mp4) // 4], "video/mp4")}),
        hurried.post("/v1/predict/video", files=upload(media_dir / "face_noface.mov")),  # past the time limit
        client.post("/v1/predict", files=upload(media_dir / "BWPictureHuman.jpg")),  # > 1 MB: spooled to disk
        client.post("/v1/predict", files={"file": ("../../etc/passwd", b"\xff\xd8\xff" + b"\x00" * 10, "image/jpeg")}),
    ]
    assert [r.status_code for r in responses] == [200, 422, 504, 200, 422]
    assert "passwd" in responses[-1].json()["error"] and "/etc" not in responses[-1].json()["error"]
    assert list(request_temp.iterdir()) == [] and list(system_temp.iterdir()) == []


# --------------------------------------------------------------------------------------- camera
def test_camera_websocket_returns_boxes_and_tracks(client: TestClient, media_dir: Path) -> None:
    frames = jpeg_frames(media_dir / "single_face.mp4", every=8)
    with client.websocket_connect(f"/v1/camera?model={MODEL}") as socket:
        ready = socket.receive_json()
        assert ready["type"] == "ready" and ready["model"] == MODEL
        answers = []
        for frame in frames:
            socket.send_bytes(frame)
            answers.append(socket.receive_json())
        socket.send_bytes(b"this is not a frame")
        error = socket.receive_json()
        socket.send_bytes(frames[0])
        after_error = socket.receive_json()
    assert [a["seq"] for a in answers] == list(range(1, len(frames) + 1))
    assert all(a["type"] == "result" and len(a["faces"]) == 1 for a in answers)
    assert {a["faces"][0]["face_id"] for a in answers} == {0}  # one track across the frames
    box = answers[0]["faces"][0]["box"]
    assert 150 < box[0] < 300 and box[2] - box[0] > 100 and (answers[0]["width"], answers[0]["height"]) == (640, 360)
    assert error["type"] == "error" and "JPEG or PNG" in error["error"] and error["seq"] == len(frames) + 1
    assert after_error["type"] == "result" and len(after_error["faces"]) == 1


def test_camera_drops_frames_instead_of_queueing(client: TestClient, media_dir: Path) -> None:
    frames = jpeg_frames(media_dir / "single_face.mp4", every=6)
    with client.websocket_connect("/v1/camera") as socket:
        socket.receive_json()
        for frame in frames:  # all at once: much faster than the server can analyse them
            socket.send_bytes(frame)
        answers = [socket.receive_json()]
        while answers[-1]["seq"] != len(frames):
            answers.append(socket.receive_json())
    assert all(a["type"] == "result" for a in answers)
    assert len(answers) < len(frames) and answers[-1]["dropped"] == len(frames) - len(answers)
    assert [a["seq"] for a in answers] == sorted(a["seq"] for a in answers)


def test_camera_unknown_model(client: TestClient) -> None:
    with client.websocket_connect("/v1/camera?model=nope") as socket:
        message = socket.receive_json()
    assert message["type"] == "error" and "unknown model 'nope'" in message["error"]


def test_concurrent_requests_share_the_models_safely(client: TestClient, media_dir: Path) -> None:
    photos = ["multi_face.jpg", "single_face.jpg", "Image_with_alpha.png"]
    expected = {name: client.post("/v1/predict", files=upload(media_dir / name)).json() for name in photos}
    results: list[tuple[str, dict]] = []

    def worker(name: str) -> None:
        results.append((name, client.post("/v1/predict", files=upload(media_dir / name)).json()))

    threads = [threading.Thread(target=worker, args=(photos[i % 3],)) for i in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 9 and all(record == expected[name] for name, record in results)


# ------------------------------------------------------------------------------- input helpers
def test_sniff_and_display_name(media_dir: Path) -> None:
    assert sniff((media_dir / "multi_face.jpg").read_bytes()) == ("image", "jpeg")
    assert sniff((media_dir / "Image_with_alpha.png").read_bytes()) == ("image", "png")
    assert sniff((media_dir / "single_face.mp4").read_bytes()) == ("video", "mp4")
    assert sniff((media_dir / "face_noface.mov").read_bytes())[0] == "video"
    assert sniff(b"%PDF-1.7 ...") is None and sniff(b"") is None
    assert display_name("../../etc/passwd", "upload") == "passwd"
    assert display_name("C:\\photos\\me.jpg", "upload") == "me.jpg"
    assert display_name("", "upload") == "upload" and display_name("<script>.jpg", "x") == "_script_.jpg"


# ---------------------------------------------------------------------------- annotated videos
def test_annotated_videos_are_h264(tmp_path: Path) -> None:
    import av

    with VideoWriter(tmp_path / "odd.mp4", fps=29.97) as writer:
        for i in range(5):
            writer.write(np.full((41, 57, 3), i * 50, np.uint8))  # odd sides: padded for yuv420p
    assert writer.codec == "h264"
    with av.open(str(tmp_path / "odd.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and (stream.width, stream.height) == (58, 42)
        assert sum(1 for _ in container.decode(stream)) == 5


def test_video_writer_falls_back_to_mp4v_with_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    with caplog.at_level(logging.WARNING), VideoWriter(tmp_path / "fallback.mp4", fps=10) as writer:
        for i in range(4):
            writer.write(np.full((40, 56, 3), i * 60, np.uint8))
    assert writer.codec == "mp4v" and "browsers do not play" in caplog.text
    capture = cv2.VideoCapture(str(tmp_path / "fallback.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    capture.release()


# ------------------------------------------------------------------------------------- video jobs
def long_video(source: Path, target: Path, repeats: int) -> Path:
    """``source`` played ``repeats`` times in a row (mp4v: the server reads it through PyAV)."""
    capture = cv2.VideoCapture(str(source))
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(bgr)
    capture.release()
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (width, height))
    for _ in range(repeats):
        for bgr in frames:
            writer.write(bgr)
    writer.release()
    return target


def wait_for_job(client: TestClient, job_id: str, timeout_s: float = 120.0) -> dict:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = client.get(f"/v1/video-jobs/{job_id}").json()
        if status["state"] in ("done", "failed", "cancelled"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {status}")


def test_video_job_progress_result_and_files(client: TestClient, media_dir: Path) -> None:
    created = client.post("/v1/video-jobs?every=6&annotate=true", files=upload(media_dir / "single_face.mp4"))
    assert created.status_code == 202, created.text
    job = VideoJobStatus.model_validate(created.json())
    assert created.headers["location"] == f"/v1/video-jobs/{job.id}" and job.state in ("queued", "running")
    assert job.file == "single_face.mp4" and job.model == MODEL
    done = VideoJobStatus.model_validate(wait_for_job(client, job.id))
    assert done.state == "done" and done.frames_done == done.frames_total == 12
    assert done.progress == 1.0 and done.eta_s == 0.0 and done.error is None
    result = VideoJobResult.model_validate(client.get(f"/v1/video-jobs/{job.id}/result").json())
    assert result.frames_analysed == 12 and result.tracks == [0] and result.model == MODEL
    # the same records and CSV as the one-request endpoint
    sync = client.post("/v1/predict/video?every=6", files=upload(media_dir / "single_face.mp4")).json()
    assert [r.model_dump(exclude_none=True) for r in result.frames] == \
        [ImageRecord.model_validate(r).model_dump(exclude_none=True) for r in sync["frames"]]
    csv_file = client.get(result.csv_url)
    assert csv_file.text == sync["csv"] and "single_face.predictions.csv" in csv_file.headers["content-disposition"]
    jsonl = client.get(result.jsonl_url)
    assert [json.loads(line) for line in jsonl.text.splitlines()] == sync["frames"]
    timeline = client.get(result.timeline_url)
    assert timeline.headers["content-type"] == "image/png" and timeline.content.startswith(b"\x89PNG")
    whole = client.get(result.annotated_video_url)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    part = client.get(result.annotated_video_url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"
    import av

    with av.open(io.BytesIO(whole.content)) as container:
        assert sum(1 for _ in container.decode(container.streams.video[0])) == 12
    deleted = client.delete(f"/v1/video-jobs/{job.id}")
    assert deleted.status_code == 200 and deleted.json()["state"] == "done"
    assert_error(client.get(f"/v1/video-jobs/{job.id}"), 404, "no video job")
    assert_error(client.get(result.annotated_video_url), 404)


def test_video_job_cancel_stops_the_analysis(client: TestClient, app: FastAPI, media_dir: Path,
                                             tmp_path: Path) -> None:
    import time

    video = long_video(media_dir / "single_face.mp4", tmp_path / "long.mp4", repeats=10)  # 720 frames
    created = client.post("/v1/video-jobs?annotate=true", files=upload(video)).json()
    job = app.state.jobs.get(created["id"])
    deadline = time.monotonic() + 60
    while client.get(f"/v1/video-jobs/{job.id}").json()["frames_done"] < 5:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.02)
    running = client.get(f"/v1/video-jobs/{job.id}").json()
    assert running["state"] == "running" and running["frames_total"] == 720
    assert 0 < running["progress"] < 1 and running["eta_s"] > 0
    cancelled = client.delete(f"/v1/video-jobs/{job.id}").json()
    assert cancelled["state"] == "cancelled"
    assert_error(client.get(f"/v1/video-jobs/{job.id}"), 404)
    time.sleep(1.0)  # the loop stops after its current frame
    stopped_at = job.progress.frames_done
    time.sleep(0.5)
    assert job.progress.frames_done == stopped_at < 720 and job.analysis is None


def test_video_job_waiting_for_a_slot_can_be_cancelled(tmp_path: Path, media_dir: Path) -> None:
    local = small_app(tmp_path, concurrency=1)
    engine = local.app.state.engine
    engine._slots.acquire()  # the only slot is busy
    try:
        job = local.post("/v1/video-jobs", files=upload(media_dir / "single_face.mp4")).json()
        assert local.get(f"/v1/video-jobs/{job['id']}").json()["state"] == "queued"
        assert_error(local.get(f"/v1/video-jobs/{job['id']}/result"), 409, "queued")
        assert local.delete(f"/v1/video-jobs/{job['id']}").json()["state"] == "cancelled"
    finally:
        engine._slots.release()


def test_video_job_errors(client: TestClient, media_dir: Path) -> None:
    photo = upload(media_dir / "single_face.jpg")
    assert_error(client.post("/v1/video-jobs", files=photo), 415, "not a supported video")
    assert_error(client.post("/v1/video-jobs?model=nope", files=upload(media_dir / "single_face.mp4")), 422, "nope")
    assert_error(client.post("/v1/video-jobs?every=0", files=upload(media_dir / "single_face.mp4")), 422, "every")
    assert_error(client.get("/v1/video-jobs/not-a-job"), 404, "no video job")
    assert_error(client.delete("/v1/video-jobs/not-a-job"), 404)
    mp4 = (media_dir / "single_face.mp4").read_bytes()
    cut = client.post("/v1/video-jobs", files={"file": ("cut.mp4", mp4[: len(mp4) // 4], "video/mp4")}).json()
    failed = wait_for_job(client, cut["id"])
    assert failed["state"] == "failed" and failed["error"].startswith("cut.mp4")
    assert_error(client.get(f"/v1/video-jobs/{cut['id']}/result"), 422, "cut.mp4")
    client.delete(f"/v1/video-jobs/{cut['id']}")


def test_ranged_response_edges() -> None:
    from affectlens.serve.ranges import ranged_response

    data = bytes(range(100))
    assert ranged_response(data, "video/mp4", None).status_code == 200
    tail = ranged_response(data, "video/mp4", "bytes=-10")
    assert tail.status_code == 206 and tail.body == data[-10:] and tail.headers["content-range"] == "bytes 90-99/100"
    open_end = ranged_response(data, "video/mp4", "bytes=95-")
    assert open_end.body == data[95:]
    assert ranged_response(data, "video/mp4", "bytes=100-").status_code == 416
    assert ranged_response(data, "video/mp4", "items=0-5").status_code == 200  # not a byte range: all of it


# ------------------------------------------------------------------------------ photo previews
@pytest.mark.parametrize("extension", [".tif", ".pgm", ".ppm"])
def test_photo_preview_for_formats_browsers_cannot_draw(client: TestClient, media_dir: Path, tmp_path: Path,
                                                        extension: str) -> None:
    bgr = cv2.imread(str(media_dir / "multi_face.jpg"))
    pixels = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if extension == ".pgm" else bgr
    path = tmp_path / f"multi_face{extension}"
    assert cv2.imwrite(str(path), pixels)
    plain = client.post("/v1/predict", files=upload(path))
    assert plain.status_code == 200 and "preview" not in plain.json()
    response = client.post("/v1/predict?preview=true", files=upload(path))
    assert response.status_code == 200, response.text
    answer = PhotoAnswer.model_validate(response.json())
    assert len(answer.faces) == 5 and (answer.width, answer.height) == (1000, 667)
    assert answer.preview.startswith("data:image/jpeg;base64,")
    shown = cv2.imdecode(np.frombuffer(base64.b64decode(answer.preview.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    assert shown.shape[:2] == (667, 1000)
    grey_expected = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    assert np.abs(cv2.cvtColor(shown, cv2.COLOR_BGR2GRAY).astype(np.float32) - grey_expected).mean() < 6


def test_photo_preview_is_shrunk_and_oriented(client: TestClient, media_dir: Path) -> None:
    from affectlens.serve.preview import preview_data_url

    big = np.zeros((3000, 5000, 3), np.uint8)
    url = preview_data_url(big)
    shown = cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    assert shown.shape[:2] == (1229, 2048)
    displayed = Image.open(media_dir / "single_face.jpg")
    answer = client.post("/v1/predict?preview=true", files=upload(media_dir / "single_face.jpg")).json()
    preview = Image.open(io.BytesIO(base64.b64decode(answer["preview"].split(",", 1)[1])))
    from PIL import ImageOps

    upright = ImageOps.exif_transpose(displayed)
    assert preview.size[0] / preview.size[1] == pytest.approx(upright.size[0] / upright.size[1], rel=0.01)


# ------------------------------------------------------------------------------------- offline docs
def test_docs_and_redoc_need_no_outside_host(client: TestClient) -> None:
    import re

    for path in ("/docs", "/redoc"):
        page = client.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), path
        assert not re.findall(r"(?:https?:)?//[\w.-]+\.\w+", page.text), (path, page.text)
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        assert assets, path
        for asset in assets:
            assert asset.startswith("/"), asset
            assert client.get(asset).status_code == 200, asset
    assert '"validatorUrl": null' in client.get("/docs").text.replace("'", '"')
