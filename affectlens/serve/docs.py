"""The API documentation pages (``/docs``, ``/redoc``) served from this package, never from a CDN.

FastAPI's own pages load Swagger UI and ReDoc from jsDelivr and ReDoc's fonts from Google: offline
they are blank pages, and online every visit tells those hosts about this server, against the
page's promise that nothing is sent anywhere else. ``fastapi-offline`` (a dependency of the
``serve`` extra) ships the same assets in its wheel and serves them under
``/static-offline-docs``; the ReDoc page is built without Google fonts. Swagger UI's online
validator badge (an image from validator.swagger.io for non-local hosts) is switched off too.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


def offline_docs_app(**settings: Any) -> FastAPI:
    """A FastAPI app whose ``/docs`` and ``/redoc`` need no outside host; ``settings`` go to FastAPI."""
    from fastapi_offline import FastAPIOffline

    parameters = {"validatorUrl": None, **settings.pop("swagger_ui_parameters", {})}
    return FastAPIOffline(swagger_ui_parameters=parameters, **settings)
