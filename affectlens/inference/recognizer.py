"""The predictor: faces in, emotions out, for photos, arrays, videos and cameras.

>>> from affectlens import Recognizer
>>> result = Recognizer().predict("photo.jpg")           # doctest: +SKIP
>>> [(f.label, f.box) for f in result.faces]             # doctest: +SKIP

Per image or frame the work is: detect all faces, align them (5 landmarks -> the template the
model was trained on), classify them in ONE batch, and, for video, follow them with a tracker that
gives stable ids and smooths the probabilities per face.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from affectlens.errors import AffectlensError
from affectlens.faces import FaceDetector, align_faces, create_detector
from affectlens.faces.types import Face
from affectlens.inference.keyframes import KeyframeDetector
from affectlens.inference.options import DEFAULTS, PredictOptions
from affectlens.inference.tracking import FaceTracker
from affectlens.inference.types import FaceResult, FrameResult, ImageResult
from affectlens.inference.video import Frame, VideoReader
from affectlens.runtime.classifiers import Classifier
from affectlens.runtime.factory import create_classifier
from affectlens.runtime.resolve import ResolvedModel, resolve
from affectlens.runtime.sequence import SequenceClassifier


class Recognizer:
    """Face detection + alignment + emotion classification.

    Parameters
    ----------
    model: a shipped name (``default``, ``fast``), a run folder, or a ``.safetensors``/``.onnx`` file.
    detector: a detector name (``centerface``, ``haar``) or a :class:`~affectlens.faces.FaceDetector`.
    backend: ``onnx`` (ONNX Runtime, CPU, default) or ``torch`` (any torch ``device``).
    threshold, min_face_size, max_side: detector options (``None`` threshold: the detector's
        default); ``max_side`` bounds the detection resolution and so its cost.
    smoothing: per-track EMA weight of the past for videos (0 = off); photos are never smoothed.
    ten_crop: average ten crops per face (slower, slightly more accurate).
    template: alignment template; default from the model card (``extra.face_template``), else
        ``fer`` for grey models and ``arcface`` for colour ones.
    detect_every: videos: a full face detection on every N-th frame, faces re-fitted in small
        windows in between (see :mod:`affectlens.inference.keyframes`); 1 detects on every frame.
    prior_correction: 0 to 1; divides the training class frequencies out of the probabilities so
        rare emotions (disgust) are not out-voted by common ones on faces from other sources
        (:mod:`affectlens.runtime.prior`); 0, the default, answers as trained.
    mirror: also classify each face's mirror image and average; ``None`` (default) as the model card
        says (``fast`` mirrors), False for twice the classifier speed at the unmirrored accuracy.
    calibrate: answer with the temperature in the model card (fitted on validation data so that a
        90% answer is right about 90% of the time; :mod:`affectlens.runtime.calibration`);
        False for the probabilities as trained.
    """

    def __init__(
        self,
        model: str | Path | ResolvedModel = DEFAULTS.model,
        detector: str | FaceDetector = DEFAULTS.detector,
        backend: str = DEFAULTS.backend,
        device: str = DEFAULTS.device,
        threshold: float | None = DEFAULTS.threshold,
        min_face_size: float = DEFAULTS.min_face_size,
        max_side: int | None = DEFAULTS.max_side,
        smoothing: float = DEFAULTS.smoothing,
        ten_crop: bool = DEFAULTS.ten_crop,
        num_threads: int | None = DEFAULTS.threads,
        template: str | None = None,
        iou_threshold: float = 0.3,
        max_age: int = 10,
        detect_every: int = DEFAULTS.detect_every,
        detector_options: dict[str, Any] | None = None,
        prior_correction: float = DEFAULTS.prior_correction,
        mirror: bool | None = DEFAULTS.mirror,
        calibrate: bool = DEFAULTS.calibrate,
    ) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise AffectlensError(f"smoothing must be in [0, 1), got {smoothing}")
        #: the model, resolved once (files, card, ensemble members) and handed to the classifier
        self.model = resolve(model)
        self.model_path = self.model.path
        # The detector first: a bad detector option fails before the (slower) model load.
        if isinstance(detector, FaceDetector):
            self.detector = detector
        else:
            options = dict(detector_options or {})
            if threshold is not None:
                options["threshold"] = threshold
            options.setdefault("min_face_size", min_face_size)
            options.setdefault("max_side", max_side)
            self.detector = create_detector(detector, **options)
        self.classifier: Classifier = create_classifier(
            self.model, backend=backend, device=device, ten_crop=ten_crop, num_threads=num_threads,
            prior_correction=prior_correction, mirror=mirror, calibrate=calibrate,
        )
        self.card = self.classifier.card
        self.grey = self.card.in_channels == 1
        self.template = template or self.card.extra.get("face_template") or ("fer" if self.grey else "arcface")
        self.smoothing = float(smoothing)
        self.iou_threshold = float(iou_threshold)
        self.max_age = int(max_age)
        if detect_every < 1:
            raise AffectlensError(f"detect_every must be >= 1, got {detect_every}")
        self.detect_every = int(detect_every)

    @classmethod
    def from_options(cls, options: PredictOptions, **extra: Any) -> Recognizer:
        """The recognizer ``options`` describe (``extra``: keyword arguments beyond them, e.g. a
        shared ``detector`` instance)."""
        return cls(**{**options.recognizer_arguments(), **extra})

    def __repr__(self) -> str:
        return f"Recognizer(model={self.model_path.name}, backend={self.backend}, detector={self.detector!r})"

    @property
    def class_names(self) -> list[str]:
        return list(self.card.class_names)

    @property
    def backend(self) -> str:
        return self.classifier.backend

    @property
    def has_valence_arousal(self) -> bool:
        return self.classifier.valence_arousal

    # ------------------------------------------------------------------------------------ stills
    def detect(self, image: np.ndarray) -> list[Face]:
        return self.detector.detect(image)

    def classify(self, image: np.ndarray, faces: list[Face]) -> tuple[np.ndarray, np.ndarray | None]:
        """Align ``faces`` of ``image`` and classify them in one batch: ``(probs (N, K), va or None)``."""
        crops = align_faces(image, faces, self.card.image_size, self.grey, self.template)
        return self.classifier.run(crops)

    def predict(self, image: np.ndarray | str | Path) -> ImageResult:
        """All faces of one photo: an image path, or a uint8 RGB/grey/RGBA array.

        Arrays are taken as RGB; convert OpenCV's BGR first (``cv2.cvtColor(img, cv2.COLOR_BGR2RGB)``).
        """
        source = ""
        if isinstance(image, str | Path):
            from affectlens.data.image_io import read_image

            source = str(image)
            image = read_image(image)
        faces, probs, va = self._analyse(image)
        ids = np.arange(len(faces))
        h, w = image.shape[:2]
        return ImageResult(source, int(w), int(h), self._results(faces, probs, va, ids))

    # ------------------------------------------------------------------------------------ videos
    def open_video(self, source: str | Path | int, every: int = 1, max_frames: int | None = None) -> VideoReader:
        """A streaming reader for a video file or camera index (see :class:`VideoReader`)."""
        return VideoReader(source, every=every, max_frames=max_frames)

    def new_tracker(self, smoothing: float | None = None) -> FaceTracker:
        return FaceTracker(
            iou_threshold=self.iou_threshold,
            max_age=self.max_age,
            smoothing=self.smoothing if smoothing is None else smoothing,
        )

    def stream(self, reader: VideoReader, smoothing: float | None = None) -> Iterator[tuple[FrameResult, Frame]]:
        """Results with the decoded frame (for annotation), one pair per processed frame."""
        import cv2

        tracker = self.new_tracker(smoothing)
        keyframes = KeyframeDetector(self.detector, self.detect_every)
        for frame in reader:
            rgb = cv2.cvtColor(frame.bgr, cv2.COLOR_BGR2RGB)
            faces, detected = keyframes.faces(rgb)
            if isinstance(self.classifier, SequenceClassifier):
                ids, probs, va = self._analyse_sequence(rgb, faces, tracker)
            else:
                probs, va = self.classify(rgb, faces)
                boxes = np.array([f.box for f in faces], np.float64).reshape(-1, 4)
                ids, probs, va = tracker.update(boxes, probs, va)
            h, w = rgb.shape[:2]
            result = FrameResult(
                reader.name, int(w), int(h), self._results(faces, probs, va, ids), frame=frame.index, time=frame.time,
                detected=detected,
            )
            yield result, frame

    def predict_video(
        self,
        source: str | Path | int,
        every: int = 1,
        smoothing: float | None = None,
        max_frames: int | None = None,
    ) -> Iterator[FrameResult]:
        """One :class:`FrameResult` per processed frame, streamed (constant memory)."""
        with self.open_video(source, every=every, max_frames=max_frames) as reader:
            for result, _ in self.stream(reader, smoothing):
                yield result

    # ----------------------------------------------------------------------------------- helpers
    def _analyse(self, image: np.ndarray) -> tuple[list[Face], np.ndarray, np.ndarray | None]:
        faces = self.detector.detect(image)
        probs, va = self.classify(image, faces)
        return faces, probs, va

    def _analyse_sequence(self, image: np.ndarray, faces: list[Face], tracker: FaceTracker
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """A CNN-GRU frame: each face continues its track's GRU state (a new track starts from zeros)."""
        assert isinstance(self.classifier, SequenceClassifier)
        crops = align_faces(image, faces, self.card.image_size, self.grey, self.template)
        tracks = tracker.assign(np.array([f.box for f in faces], np.float64).reshape(-1, 4))
        fresh = self.classifier.initial_states(1)[0]
        states = np.stack([fresh if t.state is None else t.state for t in tracks]) if tracks \
            else self.classifier.initial_states(0)
        probs, va, next_states = self.classifier.step(crops, states)
        for track, state in zip(tracks, next_states, strict=True):
            track.state = state
        ids, probs, smoothed = tracker.smooth(tracks, probs, va)
        return ids, probs, smoothed

    def _results(
        self, faces: list[Face], probs: np.ndarray, va: np.ndarray | None, ids: np.ndarray
    ) -> list[FaceResult]:
        names = tuple(self.card.class_names)
        labels = probs.argmax(axis=1) if len(faces) and names else np.zeros(len(faces), np.int64)
        return [
            FaceResult(
                box=face.box,
                landmarks=face.landmarks,
                score=face.score,
                label=names[int(labels[i])] if names else "",
                probabilities=probs[i],
                class_names=names,
                face_id=int(ids[i]),
                valence=None if va is None else float(va[i, 0]),
                arousal=None if va is None else float(va[i, 1]),
            )
            for i, face in enumerate(faces)
        ]
