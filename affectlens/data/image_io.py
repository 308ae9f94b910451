"""The one image reader: files and uploaded bytes, read as a person sees them.

Every command that reads a still image (``predict``, the dataset loaders behind ``train``,
``inspect`` and ``split``, and the web app) comes through :func:`decode_image`, so they all agree
on what an image *is*:

- EXIF orientation is applied: a phone portrait is analysed upright and reported with its
  displayed size, not the sideways size it is stored with.
- 16-bit and float images are scaled to 8 bits, never clipped (a 16-bit PNG would otherwise
  turn white and show no face).
- An animated or multi-page image gives its first frame, with a notice saying so.
- A pixel limit is checked from the header *before* any pixel is decoded, so a 50 kB PNG that
  inflates to gigabytes costs nothing; the error names the file and its size, and a batch goes on.

Anything the decoder cannot read becomes one :class:`AffectlensError` naming the file and the
problem; notices (animation, unusual value ranges) are returned beside the pixels.
"""

from __future__ import annotations

import io
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from affectlens.errors import AffectlensError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm", ".ppm"}

#: Largest image (width x height) read unless told otherwise: a 100-megapixel RGB image is 300 MB
#: of pixels. Set ``AFFECTLENS_MAX_PIXELS`` or pass ``max_pixels`` to change it.
DEFAULT_MAX_PIXELS = 100_000_000
MAX_PIXELS_ENV = "AFFECTLENS_MAX_PIXELS"

_HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
_GREY_MODES = ("1", "L", "LA", "La", "P;L")


class ImageTooLargeError(AffectlensError):
    """The image has more pixels than the limit (the web app answers 413 for it, not 422)."""


@dataclass
class DecodedImage:
    """uint8 pixels ``(H, W, 3)`` RGB or ``(H, W, 1)`` grey as displayed, plus what the reader decided.

    ``frames`` is the number of frames the file holds (only the first is in ``pixels``).
    """

    pixels: np.ndarray
    notices: list[str] = field(default_factory=list)
    frames: int = 1

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def max_pixels_limit() -> int:
    """The configured pixel limit: ``AFFECTLENS_MAX_PIXELS`` when set, else :data:`DEFAULT_MAX_PIXELS`."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(raw))
    except ValueError:
        raise AffectlensError(f"{MAX_PIXELS_ENV}={raw!r} is not a number of pixels") from None
    if value < 1:
        raise AffectlensError(f"{MAX_PIXELS_ENV}={raw!r} must be at least 1")
    return value


def decode_image(
    source: bytes | str | Path, name: str | None = None, max_pixels: int | None = None, limit_hint: str = ""
) -> DecodedImage:
    """Decode an image file or in-memory bytes; see the module docstring for what is decided.

    Raises :class:`ImageTooLargeError` over ``max_pixels`` (default :func:`max_pixels_limit`) and
    :class:`AffectlensError` for anything else that cannot be read; both name ``name`` (default:
    the path). ``limit_hint`` is appended to the too-large message (how to raise the limit).
    Pillow's own warnings (its lower bomb limit, a corrupt EXIF block) are left to the caller's
    warning filters: swapping filters here would race between the web app's threads.
    """
    if isinstance(source, bytes | bytearray):
        label = name or "image"
        if not source:
            raise AffectlensError(f"{label}: file is empty")
        stream: io.BufferedIOBase | Path = io.BytesIO(source)
    else:
        path = Path(source)
        label = name or str(path)
        _check_file(path, label)
        stream = path
    limit = max_pixels if max_pixels is not None else max_pixels_limit()
    over = f"over the {limit / 1e6:g} megapixel limit{limit_hint}"
    _allow_pillow_up_to(limit)
    pixels, notices, frames = _decode(stream, label, limit, over)
    return DecodedImage(np.ascontiguousarray(pixels), notices, frames)


def _decode(stream: io.BufferedIOBase | Path, label: str, limit: int, over: str) -> tuple[np.ndarray, list[str], int]:
    """Open, check the size from the header, then decode the first frame upright."""
    from PIL import Image

    try:
        img = Image.open(stream)
    except Image.DecompressionBombError as exc:  # over twice Pillow's limit, which is at least ours
        raise ImageTooLargeError(f"{label}: image is {_bomb_size(exc)}, {over}") from None
    except FileNotFoundError:
        raise AffectlensError(f"{label}: file does not exist") from None
    except PermissionError:
        raise AffectlensError(f"{label}: permission denied") from None
    except Image.UnidentifiedImageError:
        raise AffectlensError(f"{label}: not a readable image (unknown or corrupt format)") from None
    except Exception as exc:  # any failure of the decoder on untrusted bytes is the file's fault
        raise AffectlensError(f"{label}: not a readable image (unknown or corrupt format: {_reason(exc)})") from None
    with img:
        width, height = img.size
        if width * height > limit:
            size = f"{width}x{height} = {width * height / 1e6:.1f} megapixels"
            raise ImageTooLargeError(f"{label}: image is {size}, {over}")
        notices: list[str] = []
        try:
            frames = int(getattr(img, "n_frames", 1) or 1)
            if frames > 1:
                notices.append(f"{label}: animated image with {frames} frames: only the first frame was analysed")
                img.seek(0)
            pixels, scale_notices = _to_uint8(_upright(img))
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError(f"{label}: image is {_bomb_size(exc)}, {over}") from None
        except MemoryError:
            raise ImageTooLargeError(f"{label}: not enough memory to decode a {width}x{height} image") from None
        except Exception as exc:  # truncated data surfaces here, when the pixels are decoded
            raise AffectlensError(f"{label}: corrupt or truncated image ({_reason(exc)})") from None
    if pixels.size == 0:
        raise AffectlensError(f"{label}: image has no pixels")
    return pixels, notices + [f"{label}: {n}" for n in scale_notices], frames


def load_image(path: str | Path, max_pixels: int | None = None) -> DecodedImage:
    """:func:`decode_image` for a file path; the too-large message says how to raise the limit."""
    return decode_image(Path(path), max_pixels=max_pixels, limit_hint=f" (set {MAX_PIXELS_ENV} to raise it)")


@dataclass(frozen=True)
class ImageHeader:
    """What a file's header says, without decoding pixels: displayed size, colour mode, frame count."""

    width: int
    height: int
    mode: str
    frames: int


#: EXIF orientations (5 to 8) that swap width and height when the image is displayed
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}


def read_header(path: str | Path) -> ImageHeader:
    """The displayed size (EXIF orientation applied), mode and frames of an image file, from its header.

    For statistics over many files (``inspect``): as cheap as opening the file, and it agrees with
    :func:`decode_image` on which way up the image is.
    """
    from PIL import Image

    path = Path(path)
    _check_file(path, str(path))
    try:
        with Image.open(path) as img:
            width, height = img.size
            orientation = img.getexif().get(0x0112, 1) if hasattr(img, "getexif") else 1
            frames = int(getattr(img, "n_frames", 1) or 1)
            mode = img.mode
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{path}: image is {_bomb_size(exc)}, too large to read") from None
    except Image.UnidentifiedImageError:
        raise AffectlensError(f"{path}: not a readable image (unknown or corrupt format)") from None
    except Exception as exc:  # as in decode_image: any failure on a file's bytes is the file's fault
        raise AffectlensError(f"{path}: not a readable image (unknown or corrupt format: {_reason(exc)})") from None
    if orientation in _SWAPPING_ORIENTATIONS:
        width, height = height, width
    return ImageHeader(int(width), int(height), mode, frames)


_noticed: set[str] = set()
_noticed_lock = threading.Lock()


def read_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as uint8 RGB ``(H, W, 3)`` or grey ``(H, W, 1)``; alpha is dropped.

    Greyscale files stay single-channel so grey datasets are not tripled in memory. Notices are
    logged as warnings once per file (a lazily read dataset reads the same file every epoch).
    """
    decoded = load_image(path, max_pixels)
    for notice in decoded.notices:
        with _noticed_lock:
            fresh = notice not in _noticed
            _noticed.add(notice)
        if fresh:
            log.warning("%s", notice)
    return decoded.pixels


def _check_file(path: Path, label: str) -> None:
    """The one-line errors for paths that are not image files at all."""
    if not path.exists():
        raise AffectlensError(f"{label}: file does not exist")
    if path.is_dir():
        raise AffectlensError(f"{label}: is a folder, not an image")
    if not path.is_file():
        raise AffectlensError(f"{label}: is not a regular file")
    if path.stat().st_size == 0:
        raise AffectlensError(f"{label}: file is empty")
    if not os.access(path, os.R_OK):
        raise AffectlensError(f"{label}: permission denied")


def _allow_pillow_up_to(limit: int) -> None:
    """Raise Pillow's own bomb limit to ours when ours is higher (ours is checked before decoding).

    Pillow refuses images over twice ``Image.MAX_IMAGE_PIXELS`` before we can see their size; a
    user who configured a higher limit means it, so Pillow's is only ever raised, never lowered.
    """
    from PIL import Image

    current = Image.MAX_IMAGE_PIXELS
    if current is not None and current < limit:
        Image.MAX_IMAGE_PIXELS = limit


def _upright(img):
    """The image as displayed: EXIF orientation applied (a bad EXIF block is ignored, not fatal)."""
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(img)
    except (SyntaxError, ValueError, TypeError, KeyError, IndexError, AttributeError, ZeroDivisionError):
        img.load()
        return img


def _to_uint8(img) -> tuple[np.ndarray, list[str]]:
    """Pillow image -> uint8 array; high bit depths are rescaled, never clipped to white."""
    notices: list[str] = []
    if img.mode in _HIGH_DEPTH_MODES:
        values = np.asarray(img, dtype=np.float64)
        if values.ndim == 3:
            values = values[..., 0]
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        if img.mode == "F" and 0.0 <= low and high <= 1.0:
            scaled = values * 255.0
        elif img.mode != "F" and low >= 0 and high <= 65535:
            scaled = values / 257.0  # 16 bits: 65535 -> 255
        else:
            scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
            notices.append(f"{'float' if img.mode == 'F' else 'integer'} image scaled from its range "
                           f"[{low:g}, {high:g}] to 0-255")
        if finite.size < values.size:
            notices.append(f"{values.size - finite.size} non-finite pixel values read as black")
        grey = np.clip(np.nan_to_num(scaled, nan=0.0, posinf=0.0, neginf=0.0), 0, 255).round().astype(np.uint8)
        return grey[..., None], notices
    if img.mode in _GREY_MODES:
        return np.asarray(img.convert("L"))[..., None], notices
    return np.asarray(img.convert("RGB")), notices


def _bomb_size(exc: Exception) -> str:
    """"3600000000 pixels" from Pillow's bomb message, written as megapixels."""
    match = re.search(r"\((\d+) pixels\)", str(exc))
    return f"{int(match.group(1)) / 1e6:,.1f} megapixels" if match else "too large to decode"


def _reason(exc: BaseException | Warning) -> str:
    """The first line of an exception or warning, short enough for a one-line message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """Convert ``(H, W)``/``(H, W, 1|3|4)`` uint8 to ``(H, W, channels)`` (1 = grey, 3 = RGB)."""
    import cv2

    if image.ndim == 2:
        image = image[..., None]
    have = image.shape[2]
    if have == 4:
        image = image[..., :3]
        have = 3
    if have == channels:
        return image
    if channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None]
    if channels == 3:
        return np.repeat(image, 3, axis=2)
    raise ValueError(f"channels must be 1 or 3, got {channels}")


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS
