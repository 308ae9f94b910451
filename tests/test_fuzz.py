"""Property-based fuzzing of everything that reads user files: the image reader and the dataset loaders.

The property is the one the CLI promises: whatever the bytes, the answer is a result or one
:class:`AffectlensError` (printed as one line), never another exception and never a hang. Valid
images made by Pillow's own encoders from random arrays must also *decode*, at their displayed
size, with high bit depths scaled rather than clipped.

Each test has a per-example deadline (Hypothesis) and a hard wall-clock limit (SIGALRM), and a
modest, fixed (derandomized) set of examples so the suite stays fast and repeatable on two cores.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import string
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from affectlens.data.image_io import IMAGE_EXTENSIONS, decode_image, read_header, read_image
from affectlens.data.manifest import load_manifest
from affectlens.data.registry import guess_kind, load_dataset
from affectlens.errors import AffectlensError

if TYPE_CHECKING:
    from conftest import PngHeaderOnly

#: examples per test; AFFECTLENS_FUZZ_EXAMPLES=5000 for a deep search before a release
EXAMPLES = int(os.environ.get("AFFECTLENS_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=timedelta(seconds=5), derandomize=EXAMPLES <= 150,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
#: no single fuzz test may run longer than this (a hang fails the test instead of the CI run)
HARD_LIMIT_S = 240 if EXAMPLES <= 150 else 3600

MAGIC = [b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"GIF87a", b"II*\x00", b"MM\x00*", b"BM",
         b"RIFF\x00\x00\x00\x00WEBP", b"P5\n", b"P6\n", b""]


@pytest.fixture(autouse=True)
def hard_time_limit() -> Iterator[None]:
    def fail(*_: object) -> None:
        raise TimeoutError(f"fuzz test ran past {HARD_LIMIT_S} s: something hangs")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(HARD_LIMIT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def assert_image(pixels: np.ndarray) -> None:
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] in (1, 3) and pixels.size > 0


def one_line(exc: AffectlensError) -> None:
    assert str(exc) and "\n" not in str(exc)


# ----------------------------------------------------------------------------------------- bytes
@FUZZ
@given(prefix=st.sampled_from(MAGIC), body=st.binary(max_size=3000))
def test_random_bytes_decode_or_one_line_error(prefix: bytes, body: bytes) -> None:
    try:
        decoded = decode_image(prefix + body, "fuzz.bin", max_pixels=4_000_000)
    except AffectlensError as exc:
        one_line(exc)
        return
    assert_image(decoded.pixels)


@FUZZ
@given(prefix=st.sampled_from(MAGIC), body=st.binary(max_size=2000), suffix=st.sampled_from(sorted(IMAGE_EXTENSIONS)))
def test_random_files_with_image_extensions(prefix: bytes, body: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"random{suffix}"
        path.write_bytes(prefix + body)
        for read in (read_image, read_header):
            try:
                result = read(path)
            except AffectlensError as exc:
                one_line(exc)
                assert str(path) in str(exc)
                continue
            if read is read_image:
                assert_image(result)


# ------------------------------------------------------------------------------ valid encodings
ENCODERS = {"PNG": ".png", "TIFF": ".tif", "BMP": ".bmp", "GIF": ".gif", "WEBP": ".webp", "JPEG": ".jpg",
            "PPM": ".ppm"}


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    """Random images of every dtype/shape Pillow can turn into an image."""
    h, w = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    kind = draw(st.sampled_from(["grey8", "rgb8", "rgba8", "grey16", "int32", "float01", "float_wide", "bool"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "grey8":
        return rng.integers(0, 256, (h, w), dtype=np.uint8)
    if kind == "rgb8":
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if kind == "rgba8":
        return rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    if kind == "grey16":
        return rng.integers(0, 65536, (h, w), dtype=np.uint16)
    if kind == "int32":
        return rng.integers(-(2**31), 2**31 - 1, (h, w), dtype=np.int32)
    if kind == "float01":
        return rng.random((h, w), dtype=np.float32)
    if kind == "float_wide":
        values = rng.normal(0, 1e4, (h, w)).astype(np.float32)
        if draw(st.booleans()):
            values[0, 0] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        return values
    return rng.random((h, w)) > 0.5


@FUZZ
@given(array=arrays(), encoder=st.sampled_from(sorted(ENCODERS)), orientation=st.integers(1, 8))
def test_pillow_encoded_arrays_decode_upright_and_scaled(array: np.ndarray, encoder: str, orientation: int) -> None:
    image = Image.fromarray(array)
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = orientation
    try:
        image.save(buffer, encoder, **({"exif": exif} if encoder in ("JPEG", "PNG", "WEBP", "TIFF") else {}))
    except (OSError, ValueError, KeyError, TypeError):
        assume(False)  # this encoder cannot store this mode: nothing to read back
    data = buffer.getvalue()
    decoded = decode_image(data, f"fuzz{ENCODERS[encoder]}", max_pixels=4_000_000)  # a valid file must decode
    assert_image(decoded.pixels)
    with Image.open(io.BytesIO(data)) as stored:
        swaps = stored.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    height, width = array.shape[:2]
    assert (decoded.width, decoded.height) == ((height, width) if swaps else (width, height))
    if encoder == "PNG" and array.dtype == np.uint16 and orientation == 1:
        expected = np.round(array / 257.0).astype(np.int64)  # scaled, not clipped to white
        assert np.abs(decoded.pixels[..., 0].astype(np.int64) - expected).max() <= 1
    if encoder == "TIFF" and array.dtype == np.float32 and orientation == 1 and np.isfinite(array).all() \
            and array.min() >= 0 and array.max() <= 1:
        assert np.abs(decoded.pixels[..., 0] - np.round(array * 255)).max() <= 1


def test_pixel_limit_is_checked_before_decoding(png_header_only: PngHeaderOnly) -> None:
    """A header claiming 40,000 x 40,000 pixels is refused from the header, naming the size."""
    for side in (40_000, 200_000):  # under and over Pillow's own bomb limit
        png = png_header_only(side, side)
        with pytest.raises(AffectlensError, match=r"bomb\.png: image is .*megapixel") as caught:
            decode_image(png, "bomb.png", max_pixels=10_000_000)
        one_line(caught.value)


# -------------------------------------------------------------------------------- dataset loaders
NAMES = st.text(alphabet=string.ascii_letters + string.digits + "_-. ", min_size=1, max_size=12).filter(
    lambda n: n.strip(" .") == n and not n.startswith("."))
JUNK_SUFFIXES = [".wav", ".mp3", ".txt", ".csv", ".json", "", ".JPG", ".png", ".jpg", ".gif", ".tif"]


@st.composite
def folder_trees(draw: st.DrawFn) -> list[tuple[str, str, bytes]]:
    """(class folder, file name, content): valid PNGs, random bytes, empty files, any extension."""
    classes = draw(st.lists(NAMES, min_size=1, max_size=3, unique=True))
    files = []
    for index in range(draw(st.integers(1, 8))):
        cls = draw(st.sampled_from(classes))
        suffix = draw(st.sampled_from(JUNK_SUFFIXES))
        content = draw(st.one_of(st.binary(max_size=300), st.just(b""), st.builds(_tiny_png, st.integers(0, 255))))
        files.append((cls, f"f{index}{suffix}", content))
    return files


def _tiny_png(level: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((6, 5), level, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@FUZZ
@given(tree=folder_trees())
def test_folder_loader_on_junk_trees(tree: list[tuple[str, str, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        for cls, name, content in tree:
            (root / cls).mkdir(parents=True, exist_ok=True)
            (root / cls / name).write_bytes(content)
        try:
            dataset = load_dataset("folder", root, image_size=8, channels=1)
        except AffectlensError as exc:
            one_line(exc)
            return
        skipped = {Path(s["file"]).name for s in dataset.meta["skipped"]}
        readable = {name for _, name, content in tree if content.startswith(b"\x89PNG")
                    and Path(name).suffix.lower() in IMAGE_EXTENSIONS}
        assert readable <= {Path(p).name for p in dataset.meta["paths"]}
        assert len(dataset) + len(skipped) == len(tree)  # every file is either loaded or listed
        assert dataset.images is not None and dataset.images.shape[1:] == (8, 8, 1)


CELLS = st.one_of(st.text(max_size=12), st.sampled_from(["img.png", "missing.png", "-1", "0", "1", "2", "nan",
                                                           "inf", "1e309", "99999999", "²", "", " happy "]))
COLUMNS = ["path", "label", "valence", "arousal", "subject", "video", "split", "frame", "pixels", "emotion"]


@FUZZ
@given(header=st.lists(st.one_of(st.sampled_from(COLUMNS), st.text(max_size=6)), min_size=0, max_size=6),
       rows=st.lists(st.lists(CELLS, max_size=7), max_size=6))
def test_manifest_loader_on_random_tables(header: list[str], rows: list[list[str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "img.png").write_bytes(_tiny_png(90))
        path = folder / "m.csv"
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
        for load in (lambda: load_manifest(path, image_size=8), lambda: load_dataset("auto", path)):
            try:
                dataset = load()
            except AffectlensError as exc:
                one_line(exc)
                continue
            assert len(dataset) >= 1


@FUZZ
@given(content=st.one_of(st.binary(max_size=2000), st.text(max_size=500).map(lambda t: t.encode("utf-8", "replace"))))
def test_any_file_named_csv_gives_a_dataset_or_one_line(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        path.write_bytes(content)
        try:
            kind = guess_kind(path)
            load_dataset(kind, path)
        except AffectlensError as exc:
            one_line(exc)
