"""Prediction options and their defaults, declared once.

Why one object: ``predict``, ``camera``, ``serve``, the Python API (:class:`~.recognizer.Recognizer`)
and the server's engine used to spell each default themselves (the detector's name in seven
places, the detection size in four). :class:`PredictOptions` holds every option that shapes a
prediction with its default; the command line takes its defaults from :data:`DEFAULTS`, the
recognizer's keyword defaults are the same values, and ``Recognizer.from_options`` builds one from
an options value. The detector's own defaults live with the detectors
(:data:`affectlens.faces.detection.DEFAULT_DETECTOR`, ``DEFAULT_MAX_SIDE``), the batch size with
the runtime (:data:`affectlens.runtime.steps.DEFAULT_BATCH_SIZE`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from affectlens.faces.detection import DEFAULT_DETECTOR, DEFAULT_MAX_SIDE


@dataclass(frozen=True)
class PredictOptions:
    """Everything that shapes a prediction: the model and how it runs, the detector, videos' sampling."""

    #: a shipped name, run folder, ``.safetensors``/``.onnx`` file or ensemble card
    model: str = "default"
    #: ``onnx`` (ONNX Runtime on CPU) or ``torch`` (needs the train extra)
    backend: str = "onnx"
    #: torch device with the torch backend
    device: str = "cpu"
    detector: str = DEFAULT_DETECTOR
    #: detector confidence threshold; None: the detector's own
    threshold: float | None = None
    #: faces smaller than this many pixels are ignored
    min_face_size: float = 0.0
    #: images are downscaled to this longer side for detection (0: full size)
    max_side: int = DEFAULT_MAX_SIDE
    ten_crop: bool = False
    #: also classify the mirror image; None: as the model card says
    mirror: bool | None = None
    #: classifier threads; None: up to 4
    threads: int | None = None
    #: video: full detection on every N-th processed frame, faces followed in between
    detect_every: int = 5
    #: 0 (as trained) to 1 (as if every emotion were equally common)
    prior_correction: float = 0.0
    #: video: exponential smoothing of each track's probabilities, in [0, 1)
    smoothing: float = 0.5
    #: apply the card's fitted temperature
    calibrate: bool = True

    def recognizer_arguments(self) -> dict[str, Any]:
        """These options as :class:`~.recognizer.Recognizer` keyword arguments."""
        return {"model": self.model, "detector": self.detector, "backend": self.backend, "device": self.device,
                "threshold": self.threshold, "min_face_size": self.min_face_size,
                "max_side": self.max_side or None, "smoothing": self.smoothing, "ten_crop": self.ten_crop,
                "num_threads": self.threads, "detect_every": self.detect_every,
                "prior_correction": self.prior_correction, "mirror": self.mirror, "calibrate": self.calibrate}


#: the defaults, for keyword defaults and command-line options
DEFAULTS = PredictOptions()


# ------------------------------------------------------------------------------------------ engines
#: how ``predict`` walks its inputs: one after another in this process (as it always has), a pool
#: of local processes, or Ray (embedded on this machine, or an existing cluster); see
#: :mod:`affectlens.engines`
ENGINES = ("sequential", "process", "ray")


@dataclass(frozen=True)
class EngineOptions:
    """How a collection is run: these change where and how fast the work is done, never a record.

    Declared here beside :class:`PredictOptions` so the command line and the Python API
    (:func:`affectlens.engines.run_collection`) share one default each.
    """

    #: one of :data:`ENGINES`
    engine: str = "sequential"
    #: worker processes (Ray actors); None: this machine's CPUs, or with ``address`` the cluster's
    workers: int | None = None
    #: an existing Ray cluster (``auto``, ``HOST:PORT`` or ``ray://HOST:10001``); None: Ray embedded here
    address: str | None = None


#: the engine defaults, for keyword defaults and command-line options
ENGINE_DEFAULTS = EngineOptions()
