"""``predict --engine process|ray``: the same records as ``predict``, on worker processes or Ray, resumably.

One real Ray cluster (embedded, 2 CPUs) serves the whole module; every run is checked against one
sequential ``predict`` of the same collection: the shared photos copied under several names and
folders, the three shared videos (first 40 frames each) and two broken files. The faults are real:
a worker process that exits in the middle of the run (the ``AFFECTLENS_TEST_EXIT_ON`` hook of
affectlens/engines/worker.py), Ctrl-C sent to a running command, and an interpreter where Ray
cannot be imported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from affectlens.engines.collection import TEST_EXIT_ENV
from affectlens.engines.ledger import LEDGER, STATE_DIR, Ledger, input_key
from affectlens.engines.progress import Progress
from affectlens.engines.ray_engine import NO_RAY
from affectlens.engines.tasks import InputTask, make_units, split
from affectlens.errors import AffectlensError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import FakeClock, RunCliSubprocess, RunMain

ray = pytest.importorskip("ray", reason="the batch extra (pip install -e '.[batch]') is not installed")
pq = pytest.importorskip("pyarrow.parquet")

PHOTOS = ("single_face.jpg", "multi_face.jpg", "Image_with_alpha.png", "free-mountain-vector-01.jpg",
          "BWPictureHuman.jpg")
VIDEOS = ("single_face.mp4", "no_face.mp4", "face_noface.mov")
#: the same options in every run: short videos keep the module fast; the records still cover every kind
COMMON = ("--max-frames", "40", "--progress")
BROKEN = ("broken.jpg", "broken.mp4")


# ---------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory, media_dir: Path) -> Path:
    """26 inputs: 5 photos x 4 folders, one photo again at the top, 3 videos, 2 broken files."""
    root = tmp_path_factory.mktemp("collection") / "in"
    for folder in "abcd":
        (root / folder).mkdir(parents=True)
        for name in PHOTOS:
            shutil.copyfile(media_dir / name, root / folder / name)
    shutil.copyfile(media_dir / "single_face.jpg", root / "single_face.jpg")
    (root / "clips").mkdir()
    for name in VIDEOS:
        shutil.copyfile(media_dir / name, root / "clips" / name)
    (root / "broken.jpg").write_bytes(b"not a jpeg at all" * 10)
    (root / "broken.mp4").write_bytes(os.urandom(2000))
    return root


def _inputs(collection: Path) -> int:
    return sum(1 for p in collection.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def sequential(collection: Path, tmp_path_factory: pytest.TempPathFactory,
               run_cli_subprocess: RunCliSubprocess) -> tuple[Path, subprocess.CompletedProcess]:
    """The reference: today's ``predict`` (no --engine) over the collection."""
    out = tmp_path_factory.mktemp("sequential") / "out"
    result = run_cli_subprocess("predict", collection, "-o", out, *COMMON)
    assert result.returncode == 1, result.stderr  # the broken files fail, the batch goes on
    return out, result


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """One embedded Ray (2 CPUs) for the module: in-process runs use it, subprocesses join it by address."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, object_store_memory=100 * 1024 ** 2)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _failed(stderr: str) -> list[str]:
    """The failure list at the end of a batch: ``N failed:`` then one indented line each."""
    tail = stderr.split(" failed:\n", 1)[1]
    return [line.strip() for line in tail.splitlines() if line.startswith("  ")]


def _ledger_keys(out: Path) -> list[str]:
    lines = [json.loads(line) for line in (out / STATE_DIR / LEDGER).read_text().splitlines()]
    return [line["key"] for line in lines if "key" in line]


def _same_records(out: Path, reference: Path) -> None:
    for name in ("predictions.jsonl", "predictions.csv"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


# ------------------------------------------------------------------------------------------- ray
def test_ray_writes_the_records_of_sequential_predict_and_a_matching_parquet(
        collection: Path, sequential: tuple[Path, subprocess.CompletedProcess], ray_cluster: str,
        tmp_path: Path, run_main: RunMain) -> None:
    reference, reference_run = sequential
    out = tmp_path / "out"
    code, stdout, stderr = run_main(["predict", collection, "-o", out, *COMMON, "--engine", "ray", "--workers", "2"])
    assert code == 1  # as sequential predict: the batch completed, two inputs failed
    _same_records(out, reference)
    assert sorted(_failed(stderr)) == sorted(_failed(reference_run.stderr))
    assert len(_failed(stderr)) == 2 and all(name in stderr for name in BROKEN)
    assert "Traceback" not in stderr
    summary = f"24 of {_inputs(collection)} inputs"
    assert stdout.split(" processed")[0] == reference_run.stdout.split(" processed")[0] == summary
    # the annotated files and timelines of sequential predict, under the same names
    ours = {p.relative_to(out) for p in out.rglob("*") if p.is_file() and STATE_DIR not in p.parts}
    theirs = {p.relative_to(reference) for p in reference.rglob("*") if p.is_file()}
    assert ours - {Path("predictions.parquet")} == theirs
    for name in theirs:
        if name.suffix == ".jpg":
            assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    # progress over the whole collection on stderr
    assert f"24/{_inputs(collection)} inputs (2 failed)" in stderr and "faces/s" in stderr
    # every finished input once in the ledger
    keys = _ledger_keys(out)
    assert len(keys) == len(set(keys)) == 24

    # Parquet: the schema of affectlens/engines/parquet.py, a row per face (or per faceless record)
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    table = pq.read_table(out / "predictions.parquet")
    classes = list(records[0]["faces"][0]["probabilities"]) if records[0]["faces"] else \
        next(list(r["faces"][0]["probabilities"]) for r in records if r["faces"])
    assert table.column_names[:13] == ["input", "input_sha256", "frame", "time", "width", "height", "face_id",
                                       "x", "y", "w", "h", "score", "label"]
    assert table.column_names[13:] == [f"p_{name}" for name in classes]  # the default model has no valence
    assert table.num_rows == sum(max(1, len(r["faces"])) for r in records)
    rows = table.to_pylist()
    faces = [(r, f) for r in records for f in r["faces"]]
    with_face = [row for row in rows if row["face_id"] is not None]
    assert len(with_face) == len(faces)
    for row, (record, face) in zip(with_face, faces, strict=True):
        assert (row["input"], row["frame"], row["time"], row["face_id"], row["label"]) == \
            (record["file"], record["frame"], record["time"], face["face_id"], face["label"])
        assert row["x"] == face["box"][0] and row["w"] == pytest.approx(face["box"][2] - face["box"][0], abs=0.011)
        assert [row[f"p_{name}"] for name in classes] == [face["probabilities"][name] for name in classes]
    photo = collection / "a" / "multi_face.jpg"
    assert {row["input_sha256"] for row in rows if row["input"] == str(photo)} == \
        {hashlib.sha256(photo.read_bytes()).hexdigest()}


def test_a_worker_killed_mid_run_loses_and_repeats_nothing(
        collection: Path, sequential: tuple[Path, subprocess.CompletedProcess], ray_cluster: str,
        tmp_path: Path, run_main: RunMain, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker holding clips/single_face.mp4 exits mid-run; Ray restarts it and retries the call."""
    monkeypatch.setenv(TEST_EXIT_ENV, "single_face.mp4")
    out = tmp_path / "out"
    code, stdout, stderr = run_main(["predict", collection, "-o", out, *COMMON, "--no-annotate",
                                     "--engine", "ray", "--workers", "2"])
    assert (out / STATE_DIR / "test-exited-on-single_face.mp4").exists()  # the worker really died
    assert code == 1 and sorted(_failed(stderr)) == sorted(_failed(sequential[1].stderr))
    _same_records(out, sequential[0])  # every record exactly once, in order
    keys = _ledger_keys(out)
    assert len(keys) == len(set(keys)) == 24


# ------------------------------------------------------------------------------------ process pool
def test_the_process_engine_gives_the_same_records_and_survives_a_dead_worker(
        collection: Path, sequential: tuple[Path, subprocess.CompletedProcess], tmp_path: Path,
        run_main: RunMain, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TEST_EXIT_ENV, "multi_face.jpg")  # four copies: the first one met kills its worker
    out = tmp_path / "out"
    code, stdout, stderr = run_main(["predict", collection, "-o", out, *COMMON, "--no-annotate",
                                     "--engine", "process", "--workers", "2"])
    assert (out / STATE_DIR / "test-exited-on-multi_face.jpg").exists()
    assert code == 1 and sorted(_failed(stderr)) == sorted(_failed(sequential[1].stderr))
    _same_records(out, sequential[0])
    keys = _ledger_keys(out)
    assert len(keys) == len(set(keys)) == 24
    assert pq.read_table(out / "predictions.parquet").num_rows > 24


# ---------------------------------------------------------------------------------- Ctrl-C, resume
def test_ctrl_c_then_a_rerun_skips_the_finished_inputs(
        collection: Path, sequential: tuple[Path, subprocess.CompletedProcess], ray_cluster: str,
        tmp_path: Path) -> None:
    """A command on the module's cluster (``--address``) gets SIGINT after three inputs; the rerun does the rest."""
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "affectlens", "predict", str(collection), "-o", str(out), *COMMON,
            "--no-annotate", "--engine", "ray", "--workers", "2", "--address", ray_cluster]
    ledger = out / STATE_DIR / LEDGER
    run = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and run.poll() is None:
            if ledger.is_file() and len(_ledger_keys(out)) >= 3:
                break
            time.sleep(0.02)
        run.send_signal(signal.SIGINT)
        stdout, stderr = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 130, stderr[-2000:]  # as predict: Ctrl-C exits 130 with one word
    assert stderr.rstrip().endswith("interrupted") and "Traceback" not in stderr
    finished = len(_ledger_keys(out))
    assert 3 <= finished < 24

    rerun = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 1, rerun.stderr[-2000:]
    assert f"{finished} finished by an earlier run" in rerun.stdout
    keys = _ledger_keys(out)
    assert len(keys) == len(set(keys)) == 24  # the first run's inputs were not done again
    _same_records(out, sequential[0])


def test_a_changed_file_is_done_again_and_a_moved_one_by_its_new_name(tmp_path: Path) -> None:
    """The ledger's key is the content hash with the path the records carry: never the name alone."""
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"one")
    ledger = Ledger(tmp_path / "out", {"model": "default"})
    ledger.record(input_key(photo, "sha-one"), {"path": str(photo)})
    again = Ledger(tmp_path / "out", {"model": "default"})
    assert again.done(input_key(photo, "sha-one")) is not None
    assert again.done(input_key(photo, "sha-two")) is None  # same name, new content
    assert again.done(input_key(tmp_path / "b.jpg", "sha-one")) is None  # the records would name b.jpg


def test_the_ledger_ignores_a_torn_last_line_and_refuses_other_settings(tmp_path: Path) -> None:
    out = tmp_path / "out"
    ledger = Ledger(out, {"model": "default"})
    ledger.record("k1", {"path": "x"})
    with (out / STATE_DIR / LEDGER).open("a") as handle:
        handle.write('{"key":"k2","pa')  # a run killed in the middle of a write
    assert set(Ledger(out, {"model": "default"}).entries) == {"k1"}
    with pytest.raises(AffectlensError, match="other settings \\(model\\); pass --exist-ok") as info:
        Ledger(out, {"model": "fast"})
    assert "\n" not in str(info.value)
    assert Ledger(out, {"model": "fast"}, restart=True).entries == {}


# ------------------------------------------------------------------------------------ without Ray
def test_without_ray_the_ray_engine_is_one_line_and_the_process_engine_runs(media_dir: Path, tmp_path: Path) -> None:
    """In an interpreter where ray and pyarrow cannot be imported (a user who never installed the extra)."""
    code = (
        "import sys\n"
        "sys.modules['ray'] = None\nsys.modules['pyarrow'] = None\n"
        "from affectlens.cli import main\n"
        "import affectlens, affectlens.engines\n"
        f"photo, out = {str(media_dir / 'single_face.jpg')!r}, {str(tmp_path)!r}\n"
        "for engine in ('ray', 'process'):\n"
        "    try:\n"
        "        main(['predict', photo, '-o', out + '/' + engine, '--engine', engine, '--workers', '1'])\n"
        "    except SystemExit as exc:\n"
        "        print('exit', engine, exc.code, flush=True)\n"
        "    else:\n"
        "        print('exit', engine, 0, flush=True)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "exit ray 2" in result.stdout and "exit process 0" in result.stdout, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == [f"affectlens: error: {NO_RAY}"]
    assert not (tmp_path / "ray").exists()  # refused before any output
    assert "1 of 1 inputs processed (1 images" in result.stdout
    assert (tmp_path / "process" / "predictions.jsonl").is_file()
    assert not (tmp_path / "process" / "predictions.parquet").exists()
    assert "pyarrow is not installed" in result.stderr


def test_engine_options_apply_only_to_the_engines(run_main: RunMain, media_dir: Path, tmp_path: Path) -> None:
    photo = media_dir / "single_face.jpg"
    code, _, stderr = run_main(["predict", photo, "-o", tmp_path / "a", "--workers", "2"])
    assert code == 2 and "--workers applies to --engine process or ray" in stderr
    code, _, stderr = run_main(["predict", photo, "-o", tmp_path / "b", "--engine", "process", "--address", "auto"])
    assert code == 2 and "--address applies to --engine ray" in stderr
    code, _, stderr = run_main(["predict", photo, "-o", tmp_path / "c", "--engine", "spark"])
    assert code == 2 and "spark" in stderr
    code, _, stderr = run_main(["predict", photo, "-o", tmp_path / "d", "--engine", "ray", "--address", "127.0.0.1:1"])
    assert code == 2 and "--address 127.0.0.1:1: no Ray cluster answers there" in stderr  # not minutes of retries
    assert not any((tmp_path / name).exists() for name in "abcd")


# ------------------------------------------------------------------------------------- the pieces
def _task(index: int, kind: str, size: int = 10) -> InputTask:
    return InputTask(index, Path(f"{index}.{'jpg' if kind == 'image' else 'mp4'}"), kind, "0" * 64, str(index), size)


def test_units_put_the_largest_videos_first_and_photos_in_batches() -> None:
    tasks = [_task(i, "image") for i in range(40)] + [_task(40, "video", 5), _task(41, "video", 500)]
    units = make_units(tasks, workers=2)
    assert [u.tasks[0].index for u in units[:2]] == [41, 40] and all(len(u.tasks) == 1 for u in units[:2])
    photos = [t.index for u in units[2:] for t in u.tasks]
    assert photos == list(range(40)) and max(len(u.tasks) for u in units[2:]) == 5
    assert [len(u.tasks) for u in split(units[2])] == [1] * 5


def test_progress_counts_the_whole_collection_with_an_eta_by_bytes(fake_clock: FakeClock) -> None:
    import io

    stream = io.StringIO()
    meter = Progress(10, 1000, done=4, enabled=True, stream=stream, interval=0.0, clock=fake_clock)
    fake_clock.advance(10)
    meter.update(ok=True, records=100, faces=50, size=250)
    meter.update(ok=False, size=250)
    assert stream.getvalue().splitlines()[-1] == \
        "affectlens: 5/10 inputs (1 failed), 100 frames, 50 faces, 5.0 faces/s, ETA 0:10"
