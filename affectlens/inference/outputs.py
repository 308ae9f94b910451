"""Prediction outputs: JSON Lines, CSV and per-track timeline plots.

Both record writers flush after every record, so a run that is interrupted (Ctrl-C or SIGTERM,
a truncated video, a crash hours into a long file) keeps everything written so far, and the
files can be tailed while a long video is processed. A file that already exists (a run told
``--exist-ok``) is not touched until the new one is finished: the new records go to
``<name>.partial.<ext>``, which replaces it on close. A run that wrote no record leaves no file
(and an earlier one as it was).

- JSON Lines: one record per processed image or frame (also frames without faces, with an
  empty ``faces`` list), so the record count equals the frames processed.
- CSV: one row per face; a frame without faces gets one row with empty face columns, so the
  time axis has no holes. Probabilities are one column per class (``p_<class>``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Self

import numpy as np

from affectlens.faces.types import LANDMARK_NAMES
from affectlens.inference.types import ImageResult
from affectlens.utils.outputs import atomic_path, commit, partial_path

FORMATS = ("jsonl", "csv")


class _RecordFile:
    """A text file at ``path``, or at its ``.partial`` name while an earlier ``path`` must stay intact."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.written_to = partial_path(self.path) if self.path.exists() else self.path
        self._file: IO[str] = self.written_to.open("w", encoding="utf-8", newline="")
        self.records = 0

    def close(self) -> None:
        """Finish the file; a file without records is removed (an earlier one stays as it was).

        A run whose inputs all failed thus leaves no header-only file behind, and its output folder
        stays empty for the corrected rerun.
        """
        if self._file.closed:
            return
        self._file.close()
        if self.records == 0:
            self.written_to.unlink(missing_ok=True)
        elif self.written_to != self.path:
            commit(self.written_to, self.path)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class JsonlWriter(_RecordFile):
    """Appends one JSON object per line and flushes it."""

    def write(self, result: ImageResult) -> None:
        self._file.write(json.dumps(result.to_dict(), separators=(",", ":")) + "\n")
        self._file.flush()
        self.records += 1


def csv_header(class_names: Sequence[str], valence_arousal: bool = False) -> list[str]:
    cols = ["file", "frame", "time", "face_id", "x1", "y1", "x2", "y2", "score", "label"]
    cols += [f"p_{name}" for name in class_names]
    if valence_arousal:
        cols += ["valence", "arousal"]
    for name in LANDMARK_NAMES:
        cols += [f"{name}_x", f"{name}_y"]
    return cols


class CsvWriter(_RecordFile):
    """One row per face (see module docstring); flushed per image/frame."""

    def __init__(self, path: str | Path, class_names: Sequence[str], valence_arousal: bool = False) -> None:
        super().__init__(path)
        self.class_names = list(class_names)
        self.valence_arousal = valence_arousal
        self.header = csv_header(self.class_names, valence_arousal)
        self._writer = csv.writer(self._file)
        self._writer.writerow(self.header)
        self._file.flush()
        self.rows = 0

    def write(self, result: ImageResult) -> None:
        record = result.to_dict()
        head = [record["file"], _blank(record["frame"]), _blank(record["time"])]
        if not record["faces"]:
            self._writer.writerow(head + [""] * (len(self.header) - 3))
            self.rows += 1
        for face in record["faces"]:
            row = head + [face["face_id"], *face["box"], face["score"], face["label"]]
            row += [face["probabilities"][name] for name in self.class_names]
            if self.valence_arousal:
                row += [_blank(face.get("valence")), _blank(face.get("arousal"))]
            lms = face["landmarks"]
            row += [v for point in lms for v in point] if lms else [""] * (2 * len(LANDMARK_NAMES))
            self._writer.writerow(row)
            self.rows += 1
        self._file.flush()
        self.records += 1


def _blank(value: object) -> object:
    return "" if value is None else value


class TimelineRecorder:
    """Collects (time, probabilities[, valence, arousal]) per face track of one video for :meth:`plot`.

    Keeps only float32 arrays (about 32 bytes per face per processed frame: an hour at 30 fps
    with one face is under 4 MB), not the frames or result objects.
    """

    def __init__(self, class_names: Sequence[str]) -> None:
        self.class_names = list(class_names)
        self._times: dict[int, list[float]] = {}
        self._probs: dict[int, list[np.ndarray]] = {}
        self._va: dict[int, list[np.ndarray]] = {}
        self.end_time = 0.0  # last processed frame time, with or without faces: the x-axis extent

    def add(self, time: float, face_ids: Sequence[int], probabilities: Sequence[np.ndarray],
            valence_arousal: Sequence[tuple[float | None, float | None]] | None = None) -> None:
        """Record one processed frame (``face_ids`` may be empty); ``valence_arousal`` per face when predicted."""
        self.end_time = max(self.end_time, float(time))
        for i, (fid, p) in enumerate(zip(face_ids, probabilities, strict=True)):
            self._times.setdefault(int(fid), []).append(float(time))
            self._probs.setdefault(int(fid), []).append(np.asarray(p, np.float32))
            if valence_arousal is not None:
                self._va.setdefault(int(fid), []).append(np.asarray(valence_arousal[i], np.float32))

    def plot(self, path: str | Path, title: str = "", max_tracks: int = 6) -> Path | None:
        """One panel per track (the ``max_tracks`` longest), a line per class; None if no faces."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        from affectlens.inference.annotate import class_colour

        if not self._times:
            return None
        ids = sorted(self._times, key=lambda i: -len(self._times[i]))[:max_tracks]
        ids.sort()
        fig = Figure(figsize=(10, 1.0 + 2.2 * len(ids)), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(len(ids), 1, sharex=True, squeeze=False)[:, 0]
        for ax, fid in zip(axes, ids, strict=True):
            t = np.asarray(self._times[fid])
            p = np.stack(self._probs[fid])
            style = "-" if len(t) > 1 else "o"
            for k, name in enumerate(self.class_names):
                b, g, r = class_colour(name, k)
                ax.plot(t, p[:, k], style, color=(r / 255, g / 255, b / 255), label=name, lw=1.4, ms=4)
            ax.set_ylim(0, 1)
            if fid in self._va:  # valence/arousal on [-1, 1]: the right axis beside probabilities, else the only one
                va_ax = ax.twinx() if self.class_names else ax
                va = np.stack(self._va[fid])
                va_ax.plot(t, va[:, 0], "--" if len(t) > 1 else "s", color="black", label="valence", lw=1.6, ms=4)
                va_ax.plot(t, va[:, 1], ":" if len(t) > 1 else "^", color="dimgrey", label="arousal", lw=1.8, ms=4)
                va_ax.set_ylim(-1, 1)
                va_ax.set_ylabel("valence / arousal" if self.class_names else f"face #{fid}")
                if fid == ids[0]:
                    va_ax.legend(loc="lower left", bbox_to_anchor=(1.06 if self.class_names else 1.0, 0.0), fontsize=8,
                                 frameon=False)
            ax.set_xlim(0, max(self.end_time, float(t.max()), 1e-3))
            ax.set_ylabel(f"face #{fid}")
            ax.grid(alpha=0.3)
        if self.class_names:
            axes[0].legend(loc="upper left", bbox_to_anchor=(1.06 if self._va else 1.0, 1.0), fontsize=8,
                           frameon=False)
        axes[-1].set_xlabel("time (s)")
        fig.suptitle(title or ("emotion per face" if self._va else "emotion probabilities per face"))
        out = Path(path)
        with atomic_path(out) as partial:
            fig.savefig(partial, dpi=100, format="png")
        fig.clear()
        return out
