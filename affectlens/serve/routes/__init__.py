"""The app's routes, one :class:`fastapi.APIRouter` per area, each built around the app's engine.

``pages``: the page at ``/``, its static files, ``/health`` and ``/v1/models``; ``photo``:
``POST /v1/predict``; ``video``: ``POST /v1/predict/video``; ``camera``: the ``/v1/camera``
WebSocket. ``common`` holds what the upload routes share (reading an upload, the documented
error answers, the ``file`` and ``model`` parameters).
"""
