"""``POST /v1/predict``: every face of one photo."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from affectlens.serve.engine import Engine
from affectlens.serve.limits import Deadline, ServeLimits
from affectlens.serve.preview import preview_data_url
from affectlens.serve.routes.common import ERRORS, ModelQuery, UploadField, read_upload
from affectlens.serve.schemas import PhotoAnswer
from affectlens.serve.uploads import decode_image, require_kind


def photo_router(engine: Engine, limits: ServeLimits) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/predict", summary="Every face of one photo with its emotion",
                 responses={200: {"model": PhotoAnswer}, **ERRORS})
    async def predict(
        file: UploadField,
        model: ModelQuery = None,
        preview: Annotated[bool, Query(description="Also return the image as analysed (a JPEG data URL), for "
                                                    "clients that cannot draw the upload (TIFF, PGM/PPM).")] = False,
    ) -> JSONResponse:
        """The answer is the CLI's JSON Lines record for the photo (``file`` is the upload's name)."""
        deadline = Deadline(limits.timeout_s)
        data, name = await read_upload(file, limits)
        require_kind(data, name, "image")
        recognizer = engine.get(model)

        def work() -> tuple[dict[str, Any], list[str]]:
            with engine.slot(deadline):
                decoded = decode_image(data, name, limits.max_pixels)
                result = recognizer.predict(decoded.pixels)
            result.source = name
            record = result.to_dict()
            if preview:
                record["preview"] = preview_data_url(decoded.pixels)
            return record, decoded.notices

        record, notices = await anyio.to_thread.run_sync(work)
        headers = {"X-Affectlens-Model": model or engine.default}
        if notices:
            headers["X-Affectlens-Notice"] = "; ".join(notices)
        return JSONResponse(record, headers=headers)

    return router
