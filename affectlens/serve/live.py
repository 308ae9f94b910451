"""The live camera over a WebSocket: frames in, faces out, and never a backlog.

The page sends camera frames (JPEG or PNG bytes, one per binary message) as fast as its camera
delivers them. A receiving task keeps only the newest frame in a one-place mailbox, so when
inference is slower than the camera the older frames are dropped, not queued: the answer the
page draws is always about a frame a fraction of a second old, however slow the machine. A
worker takes the newest frame whenever it is free, analyses it, and answers with the frame's
sequence number (the n-th binary message of the connection is frame n), its faces in the same
schema as the CLI's records, and how many frames were dropped so far.

Each connection owns its face tracker (stable ids and smoothing across its own frames only).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace

import anyio
import numpy as np
from fastapi import WebSocket, WebSocketDisconnect

from affectlens.inference.recognizer import Recognizer
from affectlens.inference.tracking import FaceTracker
from affectlens.inference.types import FaceResult
from affectlens.serve.engine import Engine
from affectlens.serve.errors import ServeError
from affectlens.serve.limits import Deadline, ServeLimits
from affectlens.serve.uploads import decode_image, sniff


class _Mailbox:
    """The newest unprocessed frame; putting a frame into a full mailbox drops the old one.

    Filled by the event loop, emptied by the worker thread, hence the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: tuple[int, bytes] | None = None
        self.received = 0
        self.dropped = 0
        self.closed = False

    def put(self, data: bytes) -> None:
        with self._lock:
            self.received += 1
            if self._frame is not None:
                self.dropped += 1
            self._frame = (self.received, data)

    def skip(self) -> int:
        """Count a frame refused on arrival (too large): it still has a sequence number."""
        with self._lock:
            self.received += 1
            return self.received

    def take(self) -> tuple[int, bytes] | None:
        with self._lock:
            frame, self._frame = self._frame, None
            return frame


def analyse_frame(recognizer: Recognizer, tracker: FaceTracker, data: bytes, max_pixels: int) -> dict:
    """Decode one camera frame, find and classify its faces, and follow them with ``tracker``."""
    kind = sniff(data)
    if kind is None or kind[0] != "image":
        raise ServeError(415, "camera frames must be JPEG or PNG images")
    image = decode_image(data, "camera frame", max_pixels).pixels
    result = recognizer.predict(image)
    faces = result.faces
    if faces:
        boxes = np.array([f.box for f in faces], np.float64)
        probs = np.stack([f.probabilities for f in faces])
        va = None
        if recognizer.has_valence_arousal:
            va = np.array([[f.valence, f.arousal] for f in faces], np.float32)
        ids, probs, va = tracker.update(boxes, probs, va)
        faces = [_tracked(face, int(ids[i]), probs[i], None if va is None else va[i]) for i, face in enumerate(faces)]
    else:
        tracker.update(np.zeros((0, 4)), np.zeros((0, len(recognizer.class_names)), np.float32))
    return {"width": result.width, "height": result.height, "faces": [face.to_dict() for face in faces]}


def _tracked(face: FaceResult, face_id: int, probabilities: np.ndarray, va: np.ndarray | None) -> FaceResult:
    label = face.class_names[int(np.argmax(probabilities))]
    return replace(face, face_id=face_id, probabilities=probabilities, label=label,
                   valence=face.valence if va is None else float(va[0]),
                   arousal=face.arousal if va is None else float(va[1]))


async def camera_session(websocket: WebSocket, engine: Engine, limits: ServeLimits, model: str | None) -> None:
    """Serve one camera connection until the client goes away (see the module docstring)."""
    await websocket.accept()
    try:
        recognizer = engine.get(model)
    except ServeError as exc:
        await websocket.send_json({"type": "error", "error": exc.message})
        await websocket.close(code=1008)
        return
    tracker = recognizer.new_tracker()
    mailbox = _Mailbox()
    arrived = asyncio.Event()
    await websocket.send_json({"type": "ready", "model": model or engine.default, "classes": recognizer.class_names})

    def answer_newest() -> dict | None:
        """In a worker thread: wait for an inference slot, then analyse the newest frame."""
        try:
            with engine.slot(Deadline(limits.timeout_s)):
                taken = mailbox.take()  # taken only now, so a wait for the slot never answers a stale frame
                if taken is None:
                    return None
                seq, data = taken
                started = time.perf_counter()
                try:
                    message = {"type": "result", "seq": seq,
                               **analyse_frame(recognizer, tracker, data, limits.max_pixels)}
                except ServeError as exc:
                    message = {"type": "error", "seq": seq, "error": exc.message}
                message["ms"] = round(1000 * (time.perf_counter() - started), 1)
        except ServeError as exc:  # no slot within the time limit: say so, the next frame retries
            message = {"type": "error", "seq": mailbox.received, "error": exc.message}
        message["dropped"] = mailbox.dropped
        return message

    async def receive_frames() -> None:
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("bytes")
                if data is None:
                    continue  # text messages carry nothing we act on
                if len(data) > limits.max_upload_bytes:
                    await websocket.send_json({"type": "error", "seq": mailbox.skip(),
                                               "error": f"frame larger than the {limits.max_upload_mb:g} MB limit"})
                    continue
                mailbox.put(data)
                arrived.set()
        except WebSocketDisconnect:
            pass
        finally:
            mailbox.closed = True
            arrived.set()

    async def answer_frames() -> None:
        while True:
            await arrived.wait()
            arrived.clear()
            if mailbox.closed:
                return
            message = await anyio.to_thread.run_sync(answer_newest)
            if message is None:
                continue
            if mailbox.closed:
                return
            try:
                await websocket.send_json(message)
            except (WebSocketDisconnect, RuntimeError):  # the page went away mid-answer
                return

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(receive_frames)
        tasks.start_soon(answer_frames)
