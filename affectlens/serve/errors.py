"""Every error the web app answers is JSON ``{"error": "<one line>"}`` with a fitting status.

Bad input is always a 4xx: :class:`ServeError` carries its own status (413, 415, 422, 503,
504), an :class:`AffectlensError` raised deeper down (a truncated video, an unknown option) is
the request's fault (422), and FastAPI's own validation and HTTP errors are reshaped to the same
body. Only a bug reaches the 500 handler, which logs the traceback and says no more to the client.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from affectlens.errors import AffectlensError

log = logging.getLogger(__name__)


class ServeError(Exception):
    """A request that cannot be served, with the HTTP status that says why."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = int(status)
        self.message = message
        self.headers = headers or {}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    """``missing form field 'file'``-style text from pydantic's list of problems."""
    parts = []
    for problem in exc.errors()[:3]:
        where = [str(p) for p in problem.get("loc", ()) if p not in ("body", "query", "path", "header")]
        field = ".".join(where) or "request"
        if problem.get("type") == "missing":
            place = {"body": "form field", "query": "query parameter"}.get(str((problem.get("loc") or ("",))[0]),
                                                                            "field")
            parts.append(f"missing {place} '{field}'")
        else:
            parts.append(f"{field}: {problem.get('msg', 'invalid value')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServeError)
    async def _serve_error(_: Request, exc: ServeError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(AffectlensError)
    async def _affectlens_error(_: Request, exc: AffectlensError) -> JSONResponse:
        return error_response(422, str(exc).splitlines()[0] if str(exc) else "invalid input")

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal server error (a bug: the server log has the details)")
