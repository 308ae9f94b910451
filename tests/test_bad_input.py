"""Every class of bad input of issue 14, one table row each, through the real command line.

Each row is a command line with the exit status it must end with, the fragments its stderr must
hold, and, where a command could destroy something, a check that earlier outputs and inputs are
byte-for-byte intact. Error rows must print exactly one stderr line and never a traceback. The
rows run in-process through :func:`affectlens.cli.main` (the console entry point, so its error
handling is what is tested); the SIGTERM row runs a real subprocess.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

if TYPE_CHECKING:
    from conftest import PngHeaderOnly, RunMain

CUDA = False
try:  # the device row needs a machine without a GPU
    import torch

    CUDA = torch.cuda.is_available()
except ImportError:  # pragma: no cover - the light install has no torch
    pass


# ------------------------------------------------------------------------------------------ inputs
LONG_NAME = "p" * 251 + ".jpg"  # 255 bytes: the most one name may have; outputs add ".annotated"


def group_video(path: Path, photo: Path, frames: int = 12) -> Path:
    """The photo held still for ``frames`` frames, as H.264 (what a phone makes of a group shot)."""
    import cv2

    from affectlens.inference.video import VideoWriter

    image = cv2.imread(str(photo))
    with VideoWriter(path, 30) as writer:
        for _ in range(frames):
            writer.write(image)
    return path


@dataclass
class World:
    """Every bad (and good) input the table needs, made once in a temporary folder."""

    root: Path
    media: Path

    def p(self, relative: str) -> Path:
        return self.root / relative


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, media_dir: Path, png_header_only: PngHeaderOnly) -> World:
    root = tmp_path_factory.mktemp("bad_input")
    w = World(root, media_dir)
    face = Image.open(media_dir / "single_face.jpg")
    # 16-bit greyscale: Pillow's convert("L") clips it to white
    Image.fromarray(np.asarray(face.convert("L"), np.uint16) * 257).save(root / "face16.png")
    # a phone portrait: stored sideways, EXIF says "rotate 90 degrees clockwise to display"
    exif = Image.Exif()
    exif[0x0112] = 6
    face.transpose(Image.Transpose.ROTATE_90).save(root / "portrait.jpg", "JPEG", exif=exif, quality=95)
    frames = [face.convert("P"), face.transpose(Image.Transpose.FLIP_LEFT_RIGHT).convert("P")]
    frames[0].save(root / "animated.gif", save_all=True, append_images=frames[1:])
    (root / "bomb.png").write_bytes(png_header_only(60_000, 60_000))  # over Pillow's own bomb limit
    (root / "big.png").write_bytes(png_header_only(12_000, 12_000))  # over ours, under Pillow's: it warns
    # a folder of photos with a bomb and a voice memo in it
    photos = root / "photos"
    photos.mkdir()
    (photos / "single_face.jpg").write_bytes((media_dir / "single_face.jpg").read_bytes())
    (photos / "bomb.png").write_bytes(png_header_only(60_000, 60_000))
    (photos / "voice.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32))
    # class-per-folder datasets: one class only; two classes with a bomb and audio inside
    rng = np.random.default_rng(0)
    for folder, classes in (("one_class", ["happy"]), ("dirty", ["happy", "sad"])):
        for cls in classes:
            (root / folder / cls).mkdir(parents=True)
            for i in range(6):
                Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)).save(root / folder / cls / f"{i}.png")
    (root / "dirty" / "sad" / "bomb.png").write_bytes(png_header_only(60_000, 60_000))
    (root / "dirty" / "happy" / "laugh.mp3").write_bytes(b"ID3\x03\x00" + bytes(64))
    # CSVs: a PNG renamed .csv, FER2013 with a misspelt header, a manifest to split
    (root / "binary.csv").write_bytes((root / "face16.png").read_bytes())
    pixels = " ".join(str(v) for v in rng.integers(0, 256, 48 * 48))
    (root / "fer_bad.csv").write_text(f"label,pixels,Usage\n3,{pixels},Training\n")
    rows = ["path,label"] + [f"one_class/happy/{i % 6}.png,{'happy' if i % 2 else 'sad'}" for i in range(20)]
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    # outputs from an earlier run, and files in the way
    (root / "earlier").mkdir()
    (root / "earlier" / "predictions.jsonl").write_text('{"file": "earlier.jpg", "faces": []}\n')
    (root / "a_file.txt").write_text("I am a file, not a folder\n")
    (root / "taken.csv").write_text("path,label\nsomething.png,happy\n")
    (root / "taken.mp4").write_bytes(b"an earlier annotated video")
    (root / "taken.onnx").write_bytes(b"an earlier export")
    (root / "clip.mp4").write_bytes((media_dir / "single_face.mp4").read_bytes())
    (root / "runs").mkdir()
    # a phone export with a 255-byte name, and a video of the five-person photo (faces under 128 px)
    (root / LONG_NAME).write_bytes((media_dir / "single_face.jpg").read_bytes())
    group_video(root / "group.mp4", media_dir / "multi_face.jpg")
    (root / "old_report").mkdir()
    (root / "old_report" / "report.md").write_text("an earlier report\n")
    (root / "old_report" / "notes.txt").write_text("the user's own notes\n")
    return w


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------- table
@dataclass
class Case:
    """One row: argv (``{root}`` is the inputs folder), exit status, stderr fragments, and checks."""

    name: str
    argv: list[str]
    code: int
    stderr: list[str] = field(default_factory=list)
    stdout: list[str] = field(default_factory=list)
    intact: list[str] = field(default_factory=list)  # paths (relative to root) that must not change
    check: Callable[[World, str, str], None] | None = None
    one_line: bool | None = None  # default: error rows (exit 2) print exactly one stderr line
    skip: str | None = None


def records(world: World, folder: str) -> list[dict]:
    return [json.loads(line) for line in (world.p(folder) / "predictions.jsonl").read_text().splitlines()]


def check_face16(world: World, out: str, err: str) -> None:
    (record,) = records(world, "out_face16")
    assert len(record["faces"]) == 1  # clipped to white it had none


def check_portrait(world: World, out: str, err: str) -> None:
    (record,) = records(world, "out_portrait")
    with Image.open(world.media / "single_face.jpg") as displayed:
        assert (record["width"], record["height"]) == displayed.size  # the displayed size, not the stored one
    assert len(record["faces"]) == 1


def check_batch_went_on(world: World, out: str, err: str) -> None:
    assert [Path(r["file"]).name for r in records(world, "out_photos")] == ["single_face.jpg"]


def check_no_run_left(world: World, out: str, err: str) -> None:
    assert list(world.p("runs").iterdir()) == []


def check_replaced(world: World, out: str, err: str) -> None:
    assert world.p("replaced.csv").read_text().startswith("path,label")


def check_left_empty(world: World, out: str, err: str) -> None:
    folder = world.p("out_failed")
    assert not folder.exists() or not any(folder.iterdir())  # no header-only files: a rerun is not refused


def check_long_name(world: World, out: str, err: str) -> None:
    (annotated,) = world.p("out_long").glob("*.annotated.jpg")
    assert len(annotated.name.encode()) <= 255 - len(".partial") and annotated.name.startswith("pppp")
    assert len(records(world, "out_long")[0]["faces"]) == 1


def check_group_video(world: World, out: str, err: str) -> None:
    frames = records(world, "out_group")
    assert len(frames) == 12 and all(len(r["faces"]) == 5 for r in frames)


def check_report_replaced(world: World, out: str, err: str) -> None:
    assert "an earlier report" not in world.p("old_report/report.md").read_text()
    assert (world.p("old_report") / "report.json").is_file()


CASES = [
    # --- images read as a person sees them
    Case("16-bit PNG is scaled, not clipped", ["predict", "{root}/face16.png", "-o", "{root}/out_face16"], 0,
         check=check_face16),
    Case("EXIF orientation applied, displayed size reported",
         ["predict", "{root}/portrait.jpg", "-o", "{root}/out_portrait"], 0, check=check_portrait),
    Case("animated GIF: first frame with a notice", ["predict", "{root}/animated.gif", "-o", "{root}/out_gif"], 0,
         stderr=["animated.gif", "2 frames", "only the first frame"]),
    Case("decompression bomb: one line naming file and size", ["predict", "{root}/bomb.png", "-o", "{root}/out_b"], 2,
         stderr=["bomb.png", "3,600.0 megapixels", "limit"]),
    Case("image just over the pixel limit: no Pillow warning, one line",
         ["predict", "{root}/big.png", "-o", "{root}/out_big"], 2, stderr=["big.png", "12000x12000", "limit"]),
    Case("a video of a group photo (faces under 128 px) at default settings",
         ["predict", "{root}/group.mp4", "-o", "{root}/out_group"], 0, check=check_group_video),
    Case("a 255-byte file name: the outputs' names are shortened", ["predict", "{root}/" + LONG_NAME, "-o",
                                                                   "{root}/out_long"], 0, check=check_long_name),
    Case("an empty PATH is not the current folder", ["predict", "", "-o", "{root}/out_empty"], 2,
         stderr=["empty PATH"]),
    Case("--format with no format", ["predict", "{root}/face16.png", "--format", "", "-o", "{root}/out_fmt"], 2,
         stderr=["--format", "jsonl"]),
    Case("--every beyond the video's length: its first frame", ["predict", "{root}/clip.mp4", "--every", "100000",
                                                                "-o", "{root}/out_every"], 0,
         stdout=["1 frames"]),
    Case("a run whose inputs all fail leaves its --out empty", ["predict", "{root}/bomb.png", "-o",
                                                                "{root}/out_failed"], 2,
         stderr=["bomb.png"], check=check_left_empty),
    Case("bomb and audio in a folder: the batch goes on, both listed",
         ["predict", "{root}/photos", "-o", "{root}/out_photos"], 1,
         stderr=["bomb.png", "megapixel", "voice.wav", "1 failed"], check=check_batch_went_on, one_line=False),
    # --- outputs are never lost
    Case("--out is an existing file", ["predict", "{root}/face16.png", "-o", "{root}/a_file.txt"], 2,
         stderr=["a_file.txt", "existing file"], intact=["a_file.txt"]),
    Case("--out under a file (unwritable)", ["predict", "{root}/face16.png", "-o", "{root}/a_file.txt/out"], 2,
         stderr=["a_file.txt", "existing file"], intact=["a_file.txt"]),
    Case("--out in an unwritable place", ["predict", "{root}/face16.png", "-o", "/proc/affectlens-out"], 2,
         stderr=["/proc/affectlens-out"]),
    Case("--out holds an earlier run", ["predict", "{root}/face16.png", "-o", "{root}/earlier"], 2,
         stderr=["earlier", "not empty", "--exist-ok"], intact=["earlier/predictions.jsonl"]),
    Case("--exist-ok rerun whose inputs all fail keeps the earlier records",
         ["predict", "{root}/bomb.png", "-o", "{root}/earlier", "--exist-ok"], 2,
         stderr=["bomb.png"], intact=["earlier/predictions.jsonl"]),
    Case("split writing over its own input", ["split", "{root}/manifest.csv", "-o", "{root}/manifest.csv"], 2,
         stderr=["manifest.csv", "also an input"], intact=["manifest.csv"]),
    Case("split onto an existing file", ["split", "{root}/manifest.csv", "-o", "{root}/taken.csv"], 2,
         stderr=["taken.csv", "already exists", "--exist-ok"], intact=["taken.csv", "manifest.csv"]),
    Case("split onto a folder", ["split", "{root}/manifest.csv", "-o", "{root}/photos"], 2,
         stderr=["photos", "is a folder"], intact=["manifest.csv"]),
    Case("split with --exist-ok replaces", ["split", "{root}/manifest.csv", "-o", "{root}/replaced.csv",
                                             "--fractions", "train=0.5,val=0.5", "--exist-ok"], 0,
         intact=["manifest.csv"], check=check_replaced),
    Case("camera onto an existing video", ["camera", "--source", "{root}/clip.mp4", "--no-window", "-o",
                                           "{root}/taken.mp4", "--max-frames", "2"], 2,
         stderr=["taken.mp4", "already exists"], intact=["taken.mp4", "clip.mp4"]),
    Case("camera writing over its source", ["camera", "--source", "{root}/clip.mp4", "--no-window", "-o",
                                            "{root}/clip.mp4", "--max-frames", "2"], 2,
         stderr=["clip.mp4", "also an input"], intact=["clip.mp4"]),
    Case("camera --out under a file", ["camera", "--source", "{root}/clip.mp4", "--no-window", "-o",
                                       "{root}/a_file.txt/cam.mp4", "--max-frames", "2"], 2,
         stderr=["a_file.txt", "existing file"], intact=["a_file.txt"]),
    Case("export onto an existing file", ["export", "-o", "{root}/taken.onnx", "--no-check"], 2,
         stderr=["taken.onnx", "already exists"], intact=["taken.onnx"]),
    Case("inspect --exist-ok replaces a report whole, other files stay",
         ["inspect", "{root}/one_class", "-o", "{root}/old_report", "--no-near", "--exist-ok"], 0,
         intact=["old_report/notes.txt"], check=check_report_replaced),
    Case("inspect report onto a file", ["inspect", "{root}/one_class", "-o", "{root}/a_file.txt", "--no-near"], 2,
         stderr=["a_file.txt", "existing file"], intact=["a_file.txt"]),
    Case("evaluate report into an earlier run's folder", ["evaluate", "--data", "{root}/manifest.csv", "-o",
                                                          "{root}/earlier"], 2,
         stderr=["earlier", "not empty"], intact=["earlier/predictions.jsonl"]),
    # --- validation at the edge
    Case("--device cuda without a GPU", ["predict", "{root}/face16.png", "--backend", "torch", "--device", "cuda",
                                         "-o", "{root}/out_cuda"], 2,
         stderr=["--device cuda", "no CUDA GPU"], skip="this machine has a CUDA GPU" if CUDA else None),
    Case("non-finite number option", ["predict", "{root}/face16.png", "--threshold", "nan", "-o",
                                      "{root}/out_nan"], 2, stderr=["--threshold", "nan"]),
    Case("out-of-range number option", ["train", "--data", "{root}/dirty", "--kind", "folder", "--batch-size", "0"],
         2, stderr=["--batch-size"]),
    Case("training on one class", ["train", "--data", "{root}/one_class", "--kind", "folder", "--epochs", "1",
                                   "--set", "output_dir={root}/runs"], 2,
         stderr=["one_class", "at least two classes"], check=check_no_run_left),
    Case("inspect flags one class HIGH", ["inspect", "{root}/one_class", "-o", "{root}/rep_one", "--no-near"], 0,
         stdout=["HIGH", "Only 1 class (happy)"]),
    Case("inspect lists a bomb and audio in a dataset", ["inspect", "{root}/dirty", "-o", "{root}/rep_dirty",
                                                         "--no-near"], 0,
         stdout=["HIGH", "left out", "bomb.png", "laugh.mp3"]),
    Case("binary file named .csv", ["inspect", "{root}/binary.csv", "-o", "{root}/rep_bin"], 2,
         stderr=["binary.csv", "binary content"]),
    Case("FER2013 CSV with a wrong header is not a manifest", ["inspect", "{root}/fer_bad.csv", "-o",
                                                              "{root}/rep_fer"], 2,
         stderr=["fer_bad.csv", "missing column(s) emotion"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, world: World, run_main: RunMain, monkeypatch: pytest.MonkeyPatch) -> None:
    run_case(case, world, run_main, monkeypatch)


def run_case(case: Case, world: World, run_main: RunMain, monkeypatch: pytest.MonkeyPatch,
             setup: Callable[[World, pytest.MonkeyPatch], None] | None = None) -> None:
    """Run one row through :func:`affectlens.cli.main` and check everything the row promises
    (``setup`` runs just before the command; other tables of rows use it to prepare their inputs)."""
    if case.skip:
        pytest.skip(case.skip)
    before = {rel: digest(world.p(rel)) for rel in case.intact}
    argv = [arg.replace("{root}", str(world.root)) for arg in case.argv]
    if setup is not None:
        setup(world, monkeypatch)
    code, out, err = run_main(argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == case.code, f"exit {code}, expected {case.code}\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in err + out
    if case.one_line if case.one_line is not None else case.code == 2:
        assert len(lines) == 1, err
        assert lines[0].startswith("affectlens: error: "), lines[0]
    for fragment in case.stderr:
        assert fragment in err, f"{fragment!r} not in stderr: {err}"
    for fragment in case.stdout:
        assert fragment in out, f"{fragment!r} not in stdout: {out}"
    assert {rel: digest(world.p(rel)) for rel in case.intact} == before, "an earlier output or an input changed"
    assert not list(world.root.rglob("*.partial*")), "a half-written file was left behind"
    if case.check is not None:
        case.check(world, out, err)


# ------------------------------------------------------------------------------------------ signals
def long_video(path: Path, source: Path, repeats: int) -> Path:
    """``source`` played ``repeats`` times: long enough to be stopped half-way."""
    import av

    with av.open(str(source)) as clip:
        frames = [frame.to_ndarray(format="bgr24") for frame in clip.decode(video=0)]
    from affectlens.inference.video import VideoWriter

    with VideoWriter(path, 30) as writer:
        for _ in range(repeats):
            for frame in frames:
                writer.write(frame)
    return path


def complete_records(path: Path) -> int:
    """How many whole records (lines ended by a newline) the JSON Lines file holds so far."""
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_sigterm_keeps_a_playable_video_and_the_records(media_dir: Path, tmp_path: Path) -> None:
    """SIGTERM is handled like Ctrl-C: the annotated video is closed (it plays) and the records are in place."""
    import av

    video = long_video(tmp_path / "long.mp4", media_dir / "single_face.mp4", repeats=20)
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # output to files, not pipes: nothing the run prints can fill a pipe and stall it while we wait
    stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with open(stdout, "w") as out_file, open(stderr, "w") as err_file:
        process = subprocess.Popen([sys.executable, "-m", "affectlens.cli", "predict", str(video), "-o", str(out),
                                    "--threads", "1", "--no-progress"], stdout=out_file, stderr=err_file, env=env)
    records_file = out / "predictions.jsonl"
    # Stop it once 11 frames are recorded: the records are written before a frame goes to the video
    # writer, so the 11th record means 10 frames are already on their way into the video. The wait is
    # on that condition, with a deadline generous enough for a loaded machine, not on a set time.
    deadline = time.monotonic() + 600
    try:
        while complete_records(records_file) < 11:
            if process.poll() is not None:
                pytest.fail(f"the run ended (exit {process.returncode}) before it could be stopped:\n"
                            f"{stderr.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no 11 records in 600 s ({complete_records(records_file)} so far):\n"
                            f"{stderr.read_text()}")
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    err = stderr.read_text()
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "terminated" in err
    kept = records_file.read_text().splitlines()
    assert 10 <= len(kept) < 20 * 72  # what it did is kept; it did stop early
    with av.open(str(out / "long.annotated.mp4")) as annotated:  # closed properly: it opens and decodes
        decoded = sum(1 for _ in annotated.decode(video=0))
    assert decoded >= 10
    assert not list(out.glob("*.partial*"))


def test_pixel_limit_is_configurable(world: World, run_main: RunMain, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFFECTLENS_MAX_PIXELS", "100000")
    code, _, err = run_main(["predict", str(world.media / "single_face.jpg"), "-o", str(world.p("out_limit"))])
    assert code == 2 and "572x562" in err and "0.1 megapixel limit" in err and "AFFECTLENS_MAX_PIXELS" in err


def test_outputs_inside_an_input_folder_are_not_read_back(world: World, run_main: RunMain) -> None:
    """``predict photos/ -o photos/out --exist-ok`` twice: the second run does not predict on the first's outputs."""
    folder = world.p("inside")
    folder.mkdir()
    (folder / "single_face.jpg").write_bytes((world.media / "single_face.jpg").read_bytes())
    argv = ["predict", str(folder), "-o", str(folder / "out")]
    assert run_main(argv)[0] == 0
    code, _, err = run_main([*argv, "--exist-ok"])
    assert code == 0, err
    assert [Path(r["file"]).name for r in records(world, "inside/out")] == ["single_face.jpg"]
    assert not list((folder / "out").rglob("*.annotated.annotated.*"))


def test_two_runs_into_one_new_folder_cannot_mix(world: World, tmp_path: Path, run_main: RunMain) -> None:
    """While another run holds an --out folder, a second run into it is refused; once it ends, it goes ahead."""
    out = tmp_path / "shared_out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from affectlens.utils.outputs import prepare_output_dir; "
         "prepare_output_dir(sys.argv[1]); print('held', flush=True); time.sleep(60)", str(out)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _, err = run_main(["predict", str(world.p("face16.png")), "-o", str(out)])
        assert code == 2 and "another affectlens run" in err and str(out) in err, err
        assert not any(out.iterdir())  # the refused run wrote nothing
        code, _, err = run_main(["predict", str(world.p("face16.png")), "-o", str(out), "--exist-ok"])
        assert code == 2 and "another affectlens run" in err, err
    finally:
        holder.kill()
        holder.wait()
    code, _, err = run_main(["predict", str(world.p("face16.png")), "-o", str(out)])
    assert code == 0, err


def test_exist_ok_rerun_never_mixes_two_runs(world: World, tmp_path: Path, run_main: RunMain) -> None:
    """A rerun with fewer formats or no annotations removes the earlier run's files it does not write again."""
    out = tmp_path / "rerun"
    face = str(world.p("face16.png"))
    assert run_main(["predict", face, "-o", str(out)])[0] == 0
    assert {p.name for p in out.iterdir()} == {"predictions.jsonl", "predictions.csv", "face16.annotated.png"}
    (out / "my_notes.txt").write_text("the user's own file\n")
    assert run_main(["predict", face, "-o", str(out), "--exist-ok", "--format", "jsonl", "--no-annotate"])[0] == 0
    assert {p.name for p in out.iterdir()} == {"predictions.jsonl", "my_notes.txt"}
    # an input that happens to carry an output's name, inside the folder, is never removed
    (out / "kept.annotated.png").write_bytes(world.p("face16.png").read_bytes())
    assert run_main(["predict", str(out / "kept.annotated.png"), "-o", str(out), "--exist-ok", "--no-annotate"])[0] == 0
    assert (out / "kept.annotated.png").is_file()


def test_full_disk_stops_with_one_line_and_keeps_the_records(world: World, tmp_path: Path, run_main: RunMain,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection: the disk fills while the annotated video is written (images first, then videos)."""
    import errno

    from affectlens.inference.video import VideoWriter

    def full(self, bgr):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.partial))

    monkeypatch.setattr(VideoWriter, "_encode", full)
    out = tmp_path / "full"
    code, _, err = run_main(["predict", str(world.p("face16.png")), str(world.p("clip.mp4")), "-o", str(out)])
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and "Traceback" not in err, err
    assert lines[-1].startswith("affectlens: error: ") and "clip.mp4" in lines[-1], err
    assert "No space left on device" in lines[-1] and "records written so far are kept" in lines[-1]
    kept = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert Path(kept[0]["file"]).name == "face16.png"  # the image before the failure is kept


def test_busy_port_is_one_line_before_anything_loads(run_main: RunMain) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = run_main(["serve", "--port", str(port)])
    assert code == 2 and "serving on" not in err + out, err
    assert err.strip().splitlines() == [f"affectlens: error: --port {port}: cannot listen on 127.0.0.1:{port}: "
                                        "Address already in use (another server is using it?)"]


def test_a_decoder_failing_mid_video_is_one_failure_and_the_batch_goes_on(world: World, tmp_path: Path,
                                                                          run_main: RunMain,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection: the decode worker of one video dies after three frames (an OpenCV error)."""
    import cv2

    from affectlens.inference.video import VideoReader

    original = VideoReader._frames

    def dies(self):
        for frame in original(self):
            if self.name.endswith("clip.mp4") and frame.index == 3:
                raise cv2.error("decoder crashed")
            yield frame

    monkeypatch.setattr(VideoReader, "_frames", dies)
    out = tmp_path / "decoder"
    code, _, err = run_main(["predict", str(world.p("clip.mp4")), str(world.p("group.mp4")), "-o", str(out)])
    assert code == 1 and "Traceback" not in err, err
    assert "clip.mp4: decoding stopped after frame 2 (error: decoder crashed)" in err and "1 failed" in err
    kept = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    by_file = Counter(Path(r["file"]).name for r in kept)
    assert by_file == {"clip.mp4": 3, "group.mp4": 12}  # the frames before the failure, and the next video


def test_a_decode_worker_that_vanishes_is_named_not_waited_for(world: World, tmp_path: Path, run_main: RunMain,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection: the decode thread ends without handing over its frames or an error."""
    from affectlens.inference.video import VideoReader

    monkeypatch.setattr(VideoReader, "_worker", lambda self, out: None)
    code, _, err = run_main(["predict", str(world.p("clip.mp4")), "-o", str(tmp_path / "vanished")])
    assert code == 2 and "Traceback" not in err, err
    assert "clip.mp4: decoding stopped before the first frame" in err and "decode worker ended" in err
