"""Reading images from disk with errors that name the file.

OpenCV returns ``None`` for anything it cannot decode and Pillow raises a variety of exceptions;
both are turned into one :class:`AffectlensError` naming the file and the problem, so that batch
jobs can record the failure and carry on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectlens.errors import AffectlensError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm", ".ppm"}


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 RGB ``(H, W, 3)`` or grey ``(H, W, 1)``; alpha is dropped.

    Greyscale files stay single-channel so grey datasets are not tripled in memory.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise AffectlensError(f"{path}: file does not exist")
    if path.is_dir():
        raise AffectlensError(f"{path}: is a folder, not an image")
    if path.stat().st_size == 0:
        raise AffectlensError(f"{path}: file is empty")
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("L", "I;16", "I", "F", "1"):
                array = np.asarray(img.convert("L"))[..., None]
            else:
                array = np.asarray(img.convert("RGB"))
    except UnidentifiedImageError:
        raise AffectlensError(f"{path}: not a readable image (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise AffectlensError(f"{path}: corrupt or truncated image ({exc})") from None
    return np.ascontiguousarray(array)


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
