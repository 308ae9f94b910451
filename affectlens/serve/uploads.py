"""Uploaded bytes: what they are (by content, never by file name) and their decoded pixels.

A client's file name and declared content type are labels it chose, so the kind of an upload is
read from its first bytes (the magic numbers of the formats we decode). Images are decoded in
memory with a pixel limit checked from the header *before* any pixel is decoded, which is what
makes a 50 kB PNG that inflates to gigabytes harmless. The image is read as a person sees it:
EXIF orientation applied, 16-bit and float images scaled to 8 bits rather than clipped.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

import numpy as np

from affectlens.serve.errors import ServeError

IMAGE_FORMATS = "JPEG, PNG, GIF, BMP, TIFF, WebP, PGM/PPM"
VIDEO_FORMATS = "MP4, MOV, M4V, 3GP, WebM, MKV, AVI, MPEG"


def sniff(data: bytes) -> tuple[str, str] | None:
    """``("image" | "video", format)`` from the leading bytes, or None when we decode no such thing."""
    head = data[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return "image", "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image", "gif"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image", "tiff"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image", "webp"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "video", "avi"
    if head.startswith(b"BM") and len(data) >= 26:
        return "image", "bmp"
    if re.match(rb"P[256][\s#]", head):
        return "image", "pnm"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand.startswith((b"avif", b"heic", b"heix", b"mif1", b"msf1")):
            return None  # still-image containers we cannot decode
        return "video", "mov" if brand == b"qt  " else "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video", "mkv"
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return "video", "mpg"
    return None


def describe_kind(kind: tuple[str, str] | None) -> str:
    return "of an unrecognised type" if kind is None else f"a {kind[0]} ({kind[1].upper()})"


@dataclass
class DecodedImage:
    """uint8 pixels ``(H, W, 3)`` RGB or ``(H, W, 1)`` grey, plus what the reader had to decide."""

    pixels: np.ndarray
    notices: list[str] = field(default_factory=list)


def _to_uint8(img) -> tuple[np.ndarray, list[str]]:
    """Pillow image -> uint8 array; high bit depths are rescaled, never clipped to white."""
    notices: list[str] = []
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(img, dtype=np.float64)
        if img.mode == "F":
            low, high = float(np.nanmin(values)), float(np.nanmax(values))
            if 0.0 <= low and high <= 1.0:
                scaled = values * 255.0
            else:
                scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
                notices.append(f"float image scaled from its range [{low:g}, {high:g}] to 0-255")
        elif float(np.nanmax(values, initial=0.0)) <= 65535 and float(np.nanmin(values, initial=0.0)) >= 0:
            scaled = values / 257.0  # 16-bit: 65535 -> 255
        else:
            low, high = float(values.min()), float(values.max())
            scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
        grey = np.clip(np.nan_to_num(scaled), 0, 255).round().astype(np.uint8)
        return grey[..., None], notices
    if img.mode in ("1", "L", "LA"):
        return np.asarray(img.convert("L"))[..., None], notices
    return np.asarray(img.convert("RGB")), notices


def decode_image(data: bytes, name: str, max_pixels: int) -> DecodedImage:
    """Decode an uploaded image (already sniffed as one); errors name the upload and the problem.

    413: more than ``max_pixels`` (from the header, before decoding). 422: the bytes claim an image
    format but do not decode (truncated, corrupt).
    """
    from PIL import Image, ImageOps

    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ServeError(413, f"{name}: image is too large to decode ({exc})") from None
    except Exception as exc:  # any failure of the decoder on untrusted bytes is the file's fault
        raise ServeError(422, f"{name}: not a decodable image ({_reason(exc)})") from None
    with img:
        width, height = img.size
        if width * height > max_pixels:
            raise ServeError(
                413,
                f"{name}: image is {width}x{height} = {width * height / 1e6:.1f} megapixels, "
                f"over the {max_pixels / 1e6:g} megapixel limit",
            )
        notices = []
        frames = int(getattr(img, "n_frames", 1) or 1)
        if frames > 1:
            notices.append(f"animated image with {frames} frames: only the first frame was analysed")
        try:
            img.seek(0)
            upright = ImageOps.exif_transpose(img)
            pixels, scale_notices = _to_uint8(upright)
        except Image.DecompressionBombError as exc:
            raise ServeError(413, f"{name}: image is too large to decode ({exc})") from None
        except Exception as exc:  # truncated data surfaces here, when the pixels are decoded
            raise ServeError(422, f"{name}: corrupt or truncated image ({_reason(exc)})") from None
    if pixels.size == 0:
        raise ServeError(422, f"{name}: image has no pixels")
    return DecodedImage(np.ascontiguousarray(pixels), notices + scale_notices)


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def display_name(filename: str | None, fallback: str) -> str:
    """The client's file name reduced to a harmless label (no folders, no control characters)."""
    base = re.split(r"[\\/]", filename or "")[-1]
    base = re.sub(r"[^\w.\- ]", "_", base).strip(" .")[:120]
    return base or fallback
