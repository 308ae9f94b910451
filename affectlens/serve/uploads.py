"""Uploaded bytes: what they are (by content, never by file name) and their decoded pixels.

A client's file name and declared content type are labels it chose, so the kind of an upload is
read from its first bytes (the magic numbers of the formats we decode). Images are decoded in
memory with a pixel limit checked from the header *before* any pixel is decoded, which is what
makes a 50 kB PNG that inflates to gigabytes harmless. Decoding is the shared reader of every
command (:mod:`affectlens.data.image_io`), so the web app sees an image exactly as ``predict`` does:
EXIF orientation applied, 16-bit and float images scaled to 8 bits rather than clipped.
"""

from __future__ import annotations

import re

from affectlens.data import image_io
from affectlens.data.image_io import DecodedImage, ImageTooLargeError
from affectlens.errors import AffectlensError
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


#: per kind of upload: the formats we decode, what a person calls them, the endpoint that takes them
_ENDPOINTS = {
    "image": (IMAGE_FORMATS, "photos", "/v1/predict"),
    "video": (VIDEO_FORMATS, "videos", "/v1/predict/video"),
}


def require_kind(data: bytes, name: str, wanted: str) -> tuple[str, str]:
    """The sniffed ``(kind, format)`` of an upload to the ``wanted`` endpoint, else a 415 ServeError.

    One check for both endpoints, so a photo sent to the video endpoint (and vice versa) is told
    where to go in the same words.
    """
    kind = sniff(data)
    if kind is not None and kind[0] == wanted:
        return kind
    hint = "" if kind is None else "; send {1} to {2}".format(*_ENDPOINTS[kind[0]])
    raise ServeError(415, f"{name}: is {describe_kind(kind)}, not a supported {wanted} ({_ENDPOINTS[wanted][0]}){hint}")


def decode_image(data: bytes, name: str, max_pixels: int) -> DecodedImage:
    """Decode an uploaded image (already sniffed as one) with the shared reader of every command.

    413: more than ``max_pixels`` (from the header, before decoding). 422: the bytes claim an image
    format but do not decode (truncated, corrupt). Notices lose the upload's name: they travel in
    an HTTP header, which must stay Latin-1, and the client knows what it sent.
    """
    try:
        decoded = image_io.decode_image(data, name=name, max_pixels=max_pixels)
    except ImageTooLargeError as exc:
        raise ServeError(413, str(exc)) from None
    except AffectlensError as exc:
        raise ServeError(422, str(exc)) from None
    decoded.notices = [notice.removeprefix(f"{name}: ") for notice in decoded.notices]
    return decoded


def display_name(filename: str | None, fallback: str) -> str:
    """The client's file name reduced to a harmless label (no folders, no control characters)."""
    base = re.split(r"[\\/]", filename or "")[-1]
    base = re.sub(r"[^\w.\- ]", "_", base).strip(" .")[:120]
    return base or fallback
