"""The API documentation pages (``/docs``, ``/redoc``) served from this package, never from a CDN.

FastAPI's own pages load Swagger UI and ReDoc from jsDelivr and ReDoc's fonts from Google: offline
they are blank pages, and online every visit tells those hosts about this server, against the
page's promise that nothing is sent anywhere else. ``fastapi-offline`` (a dependency of the
``serve`` extra) ships the same assets in its wheel; Swagger UI comes from it as it is (with its
online validator badge, an image from validator.swagger.io, switched off). ReDoc's bundle still
loads one image from cdn.redoc.ly (the "API docs by Redocly" logo), so ``/redoc`` is served here
with that address replaced by an inline image. Both pages carry a Content-Security-Policy that
allows this server only, so a future asset that reaches out is blocked, not sent.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

ASSETS = "/static-offline-docs"  # where fastapi-offline mounts its static folder
REDOC_JS_URL = "/docs-assets/redoc.offline.js"
_REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
_BLANK_IMAGE = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
#: what the documentation pages may load: this server, inline styles/scripts, data: images, blob workers
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'")


def offline_docs_app(**settings: Any) -> FastAPI:
    """A FastAPI app whose ``/docs`` and ``/redoc`` need no outside host; ``settings`` go to FastAPI."""
    from fastapi_offline import FastAPIOffline

    parameters = {"validatorUrl": None, **settings.pop("swagger_ui_parameters", {})}
    # fastapi-offline mounts its assets; the two pages are ours, to carry the policy header
    app = FastAPIOffline(swagger_ui_parameters=parameters, docs_url=None, redoc_url=None, **settings)
    headers = {"Content-Security-Policy": CSP}

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} - Swagger UI",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon.png", swagger_ui_parameters=parameters)
        return HTMLResponse(page.body, headers=headers)

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(openapi_url=app.openapi_url, title=f"{app.title} - ReDoc", redoc_js_url=REDOC_JS_URL,
                              redoc_favicon_url=f"{ASSETS}/favicon.png", with_google_fonts=False)
        return HTMLResponse(page.body, headers=headers)

    @app.get(REDOC_JS_URL, include_in_schema=False)
    async def redoc_js() -> Response:
        return Response(_offline_redoc_js(), media_type="text/javascript")

    return app


@cache
def _offline_redoc_js() -> str:
    """fastapi-offline's ReDoc bundle with its one outside address (the Redocly logo) made inline."""
    import fastapi_offline

    bundle = Path(fastapi_offline.__file__).parent / "static" / "redoc.standalone.js"
    return bundle.read_text(encoding="utf-8").replace(_REDOC_LOGO, _BLANK_IMAGE)
