"""The models of one server process, loaded once and shared by every request.

Sharing is safe because nothing a request touches is mutable: the face detector and the
classifiers are ONNX Runtime sessions (``run()`` may be called from many threads at once) and
:meth:`Recognizer.predict` keeps no state between calls. The one stateful piece of video work,
the face tracker, is created per video request or per camera connection and never shared, so
two photos or two cameras can never see each other's tracks.

A slot gate bounds how many inferences run at once: on a small CPU, more concurrent work only
makes every request slower, so extra requests wait for a slot up to their time limit (then 503).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from affectlens.errors import AffectlensError
from affectlens.faces import FaceDetector
from affectlens.inference.options import DEFAULTS
from affectlens.inference.recognizer import Recognizer
from affectlens.serve.errors import ServeError
from affectlens.serve.limits import Deadline

log = logging.getLogger(__name__)

#: names offered beside the server's own model when this install has them
STANDARD_MODELS = ("default", "fast")


class Engine:
    """Recognizers by name (one shared detector), the default name, and the inference slots."""

    def __init__(
        self,
        model: str | Path = DEFAULTS.model,
        detector: str | FaceDetector = DEFAULTS.detector,
        extra_models: Sequence[str] | None = None,
        concurrency: int = 2,
        recognizer_options: dict[str, Any] | None = None,
    ) -> None:
        options = dict(recognizer_options or {})
        self.default = str(model)
        first = Recognizer(model=model, detector=detector, **options)
        self.recognizers: dict[str, Recognizer] = {self.default: first}
        explicit = list(extra_models) if extra_models is not None else []
        implicit = [name for name in STANDARD_MODELS if extra_models is None]
        for name in [*explicit, *implicit]:
            if name in self.recognizers:
                continue
            try:
                recognizer = Recognizer(model=name, detector=first.detector, **options)
            except AffectlensError as exc:
                if name in explicit:
                    raise
                log.info("model %s not offered: %s", name, exc)
                continue
            if any(r.model_path == recognizer.model_path for r in self.recognizers.values()):
                continue  # an alias of a model already offered
            self.recognizers[name] = recognizer
        self._slots = threading.BoundedSemaphore(int(concurrency))
        self.concurrency = int(concurrency)

    @property
    def names(self) -> list[str]:
        return list(self.recognizers)

    def get(self, name: str | None) -> Recognizer:
        """The recognizer called ``name`` (None: the default); 422 naming the choices otherwise."""
        key = self.default if name in (None, "") else str(name)
        if key not in self.recognizers:
            raise ServeError(422, f"unknown model '{key}'; this server offers: {', '.join(self.names)}")
        return self.recognizers[key]

    def describe(self) -> list[dict[str, Any]]:
        """What GET /v1/models lists: enough for a client to label and plot the answers."""
        out = []
        for name, recognizer in self.recognizers.items():
            card = recognizer.card
            out.append({
                "name": name,
                "default": name == self.default,
                "file": recognizer.model_path.name,
                "architecture": card.architecture,
                "classes": list(card.class_names),
                "valence_arousal": recognizer.has_valence_arousal,
                "description": card.description,
                "training_data": card.training_data,
                "licence": card.licence,
                "backend": recognizer.backend,
                "prior_correction": getattr(recognizer.classifier, "strength", 0.0),
                "detector": getattr(recognizer.detector, "name", type(recognizer.detector).__name__),
            })
        return out

    @contextmanager
    def slot(self, deadline: Deadline) -> Iterator[None]:
        """Hold one inference slot; 503 when none frees up before ``deadline``."""
        if not self._slots.acquire(timeout=deadline.remaining()):
            raise ServeError(
                503,
                f"server busy: no free inference slot within the {deadline.seconds:g} s time limit; retry later",
                headers={"Retry-After": "1"},
            )
        try:
            yield
        finally:
            self._slots.release()
