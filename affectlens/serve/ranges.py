"""Bytes held in memory answered with HTTP range support, so a ``<video>`` can seek in them.

A browser's video element asks for ``Range: bytes=N-`` when the user seeks; an answer without
range support makes it download from the start again (or refuse to seek). Job results are kept in
memory (nothing a request writes outlives it on disk), so Starlette's ``FileResponse``, which
handles ranges for files, does not apply; this is the one-range subset browsers use.
"""

from __future__ import annotations

import re

from fastapi.responses import Response

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


def ranged_response(data: bytes, media_type: str, range_header: str | None,
                    headers: dict[str, str] | None = None) -> Response:
    """200 with all of ``data``, 206 with the asked part, or 416 for a range outside it."""
    common = {"Accept-Ranges": "bytes", **(headers or {})}
    size = len(data)
    match = _RANGE.match((range_header or "").strip())
    if match is None or not any(match.groups()):
        return Response(data, media_type=media_type, headers=common)
    first, last = match.groups()
    if first:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    else:  # "bytes=-N": the last N bytes
        start, end = max(0, size - int(last)), size - 1
    if start >= size or start > end:
        return Response(status_code=416, headers={**common, "Content-Range": f"bytes */{size}"})
    return Response(data[start:end + 1], status_code=206, media_type=media_type,
                    headers={**common, "Content-Range": f"bytes {start}-{end}/{size}"})
