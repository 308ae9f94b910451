"""What the upload routes share: reading an upload within the limits, and their OpenAPI pieces."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import File, Query, UploadFile

from affectlens.serve.errors import ServeError
from affectlens.serve.limits import ServeLimits
from affectlens.serve.schemas import ErrorBody
from affectlens.serve.uploads import display_name

#: the error answers an upload route documents
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        413: "Upload, image or video over the server's limits.",
        415: "Not an image (or not a video) by its content.",
        422: "Undecodable file, unknown model or invalid parameter.",
        503: "No inference slot became free within the time limit.",
        504: "The work ran past the per-request time limit.",
    }.items()
}

UploadField = Annotated[UploadFile, File(description="The file; its type is read from its content, not its name.")]
ModelQuery = Annotated[str | None, Query(description="A name from GET /v1/models (default: the server's model).")]
# the video options, declared once for POST /v1/predict/video and POST /v1/video-jobs
EveryQuery = Annotated[int, Query(ge=1, le=1000, description="Analyse every n-th frame.")]
SmoothingQuery = Annotated[float | None, Query(ge=0.0, lt=1.0, description="Per-face moving average weight of "
                                                                       "the past (default: the model's).")]
AnnotateQuery = Annotated[bool, Query(description="Also make the annotated H.264 video and the timeline plot.")]


async def read_upload(file: UploadFile, limits: ServeLimits) -> tuple[bytes, str]:
    """The upload's bytes and display name; 413 over the upload limit, 422 when empty."""
    data = await file.read()
    name = display_name(file.filename, "upload")
    if len(data) > limits.max_upload_bytes:
        raise ServeError(413, f"{name}: upload larger than the {limits.max_upload_mb:g} MB limit")
    if not data:
        raise ServeError(422, f"{name}: the file is empty")
    return data, name
