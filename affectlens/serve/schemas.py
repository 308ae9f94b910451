"""The shapes of the API's answers, for the OpenAPI document at /docs and for clients' tests.

These describe what :meth:`ImageResult.to_dict` already produces (the CLI's JSON Lines record);
the endpoints return that dict as it is rather than re-serialising it through these models, so
the API and the CLI can never drift apart field by field.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class FaceRecord(BaseModel):
    face_id: int = Field(description="Track id in a video or camera stream; left-to-right index in a photo.")
    box: list[float] = Field(description="x1, y1, x2, y2 in the image's displayed pixels.")
    landmarks: list[list[float]] | None = Field(
        description="Five [x, y] points (left eye, right eye, nose, mouth corners), or null for detectors without."
    )
    score: float = Field(description="Face detector confidence.")
    label: str = Field(description="The most probable emotion.")
    probabilities: dict[str, float] = Field(description="Probability per class, in the model's class order.")
    valence: float | None = Field(None, description="Only for models that predict valence and arousal.")
    arousal: float | None = Field(None, description="Only for models that predict valence and arousal.")


class ImageRecord(BaseModel):
    """One photo or video frame: the same record as one line of the CLI's predictions.jsonl."""

    file: str
    frame: int | None
    time: float | None
    width: int
    height: int
    faces: list[FaceRecord]


class PhotoAnswer(ImageRecord):
    """``POST /v1/predict``: the record, plus the analysed image when ``preview=true``."""

    preview: str | None = Field(None, description="preview=true: the image as analysed (orientation applied, "
                                                  "longer side at most 2048 px), a JPEG data URL; box "
                                                  "coordinates scale with width and height.")


class VideoTimeline(BaseModel):
    """What every video answer holds: the video's facts and one record per analysed frame."""

    file: str
    model: str
    fps: float
    width: int
    height: int
    every: int
    frames_analysed: int
    tracks: list[int]
    frames: list[ImageRecord] = Field(description="One record per analysed frame (the timeline).")


class VideoAnswer(VideoTimeline):
    csv: str = Field(description="The CLI's predictions.csv: one row per face.")
    annotated_video: str | None = Field(None, description="annotate=true: data URL of the H.264 MP4.")
    timeline_png: str | None = Field(None, description="annotate=true and faces found: data URL of the plot.")


class VideoJobStatus(BaseModel):
    """Where a video job stands (``GET /v1/video-jobs/{id}``)."""

    id: str
    file: str
    model: str
    every: int
    state: str = Field(description="queued, running, done, failed or cancelled.")
    frames_done: int = Field(description="Frames analysed so far.")
    frames_total: int | None = Field(description="Frames to analyse (after every), once the video is opened.")
    progress: float | None = Field(description="frames_done / frames_total, 0 to 1.")
    eta_s: float | None = Field(description="Estimated seconds left, from the rate so far.")
    elapsed_s: float
    error: str | None = Field(description="state failed: what went wrong, in one line.")


class VideoJobResult(VideoTimeline):
    """A finished job (``GET /v1/video-jobs/{id}/result``): the timeline, and links to its files."""

    csv_url: str
    jsonl_url: str
    annotated_video_url: str | None = Field(None, description="annotate=true: the H.264 MP4 (range requests).")
    timeline_url: str | None = Field(None, description="annotate=true and faces found: the PNG plot.")


class ModelInfo(BaseModel):
    name: str
    default: bool
    file: str
    architecture: str
    classes: list[str]
    valence_arousal: bool
    description: str
    training_data: str
    licence: str
    backend: str
    #: 0: probabilities as trained; up to 1: training class frequencies divided out (serve --prior-correction)
    prior_correction: float = 0.0
    detector: str


class ModelList(BaseModel):
    default: str
    models: list[ModelInfo]


class Health(BaseModel):
    status: str
    version: str
    models: list[str]
    concurrency: int
    limits: dict[str, float | int]


class ErrorBody(BaseModel):
    error: str = Field(description="One line saying what was wrong with the request.")
