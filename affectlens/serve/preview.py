"""The image the server analysed, sent back for clients that cannot draw the upload themselves.

Browsers draw JPEG, PNG, GIF, WebP and BMP, but not TIFF or PGM/PPM, which the server decodes:
without the decoded pixels such a photo's result would have nothing to be drawn over. The
preview is those pixels (orientation applied, so box coordinates match) as a JPEG data URL, shrunk
to at most :data:`PREVIEW_MAX_SIDE` pixels on its longer side to keep the answer small; boxes
scale with the record's ``width`` and ``height``, not with the preview's size.
"""

from __future__ import annotations

import base64

import numpy as np

PREVIEW_MAX_SIDE = 2048
PREVIEW_QUALITY = 88


def preview_data_url(pixels: np.ndarray, max_side: int = PREVIEW_MAX_SIDE) -> str:
    """``pixels`` (uint8 RGB ``(H, W, 3)`` or grey ``(H, W, 1)``) as a ``data:image/jpeg`` URL."""
    import cv2

    image = pixels[..., 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    bgr = image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, PREVIEW_QUALITY])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise ValueError("could not encode the preview")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")
