"""Valence/arousal evaluation reports: metrics.json, report.md, per-frame predictions and timelines.

The numbers the continuous-emotion literature reports (CCC per dimension and their mean, MSE,
Pearson r; Aff-Wild2 winners reach a mean CCC around 0.64) beside a trivial baseline: predicting
every frame as the mean annotation scores CCC 0, so any positive CCC is agreement the model
learnt. Timelines of chosen videos show *how* it agrees (lag, bias, flattened range).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from affectlens.data.dataset import EmotionDataset
from affectlens.data.sequences import track_keys, video_tracks
from affectlens.errors import AffectlensError
from affectlens.evaluation.plots import plot_va_timeline
from affectlens.utils.markdown import markdown_table

#: timelines drawn when the user names no video
DEFAULT_TIMELINES = 3


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{float(value):.3f}"


def timeline_tracks(dataset: EmotionDataset, videos: list[str] | None) -> list[np.ndarray]:
    """The tracks to draw: those of the named videos (an error names unknown ones), else the first few."""
    tracks = video_tracks(dataset)
    if not videos:
        return tracks[:DEFAULT_TIMELINES]
    ids = dataset.videos if dataset.videos is not None else dataset.subjects
    assert ids is not None  # video_tracks raised otherwise
    chosen = [t for t in tracks if str(ids[t[0]]) in videos]
    found = {str(ids[t[0]]) for t in chosen}
    unknown = [v for v in videos if v not in found]
    if unknown:
        known = sorted({str(v) for v in ids})
        raise AffectlensError(f"no video {', '.join(unknown)} in dataset '{dataset.name}'; videos: "
                              f"{', '.join(known[:20])}{' ...' if len(known) > 20 else ''}")
    return chosen


def write_va_report(metrics: dict[str, Any], dataset: EmotionDataset, va: np.ndarray, out_dir: str | Path,
                    title: str, extra: dict[str, Any], videos: list[str] | None = None) -> dict[str, Path]:
    """Write metrics.json, report.md, predictions.csv and one timeline PNG per chosen video."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = np.stack([dataset.valence, dataset.arousal], axis=1)  # type: ignore[list-item]
    files: dict[str, Path] = {}
    keys = track_keys(dataset)
    for k, track in enumerate(timeline_tracks(dataset, videos)):
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in keys[track[0]].split("\x1f")[-1])
        frames = dataset.frames[track] if dataset.frames is not None else np.arange(len(track))
        files[f"timeline_{k}"] = plot_va_timeline(frames, target[track], va[track], out / f"timeline_{name}.png",
                                                  title=f"{title}: {name}")
    files["predictions"] = out / "predictions.csv"
    with open(files["predictions"], "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sample", "video", "frame", "valence", "arousal", "predicted_valence", "predicted_arousal"])
        ids = dataset.source_ids if dataset.source_ids is not None else np.arange(len(dataset))
        videos_col = dataset.videos if dataset.videos is not None else keys
        frames_col = dataset.frames if dataset.frames is not None else np.arange(len(dataset))
        for i in range(len(dataset)):
            writer.writerow([ids[i], videos_col[i], int(frames_col[i]),
                             *("" if not np.isfinite(x) else f"{x:.4f}" for x in target[i]),
                             f"{va[i, 0]:.4f}", f"{va[i, 1]:.4f}"])
    files["metrics"] = out / "metrics.json"
    files["metrics"].write_text(json.dumps({**metrics, "info": extra}, indent=2) + "\n")
    files["report"] = out / "report.md"
    files["report"].write_text("\n".join(_markdown(metrics, title, extra, files)) + "\n")
    return files


def _markdown(metrics: dict[str, Any], title: str, extra: dict[str, Any], files: dict[str, Path]) -> list[str]:
    va = metrics["valence_arousal"]
    lines = [f"# {title}", ""] + markdown_table(["setting", "value"], [[k, v] for k, v in extra.items()]) + [""]
    rows = [[name, d["n"], _fmt(d["ccc"]), _fmt(d["pearson_r"]), _fmt(d["mse"]), _fmt(d["rmse"]), _fmt(d["mae"])]
            for name, d in va["dimensions"].items()]
    rows.append(["mean", "", _fmt(va["mean_ccc"]), _fmt(va["mean_pearson_r"]), _fmt(va["mean_mse"]), "", ""])
    lines += ["## Valence and arousal", ""]
    lines += markdown_table(["dimension", "frames", "CCC", "Pearson r", "MSE", "RMSE", "MAE"], rows,
                            right={1, 2, 3, 4, 5, 6})
    lines += ["", "CCC (Lin's concordance correlation) is 1 for perfect agreement and 0 for a constant prediction "
              "at the mean annotation; unlike Pearson r it also drops when predictions are biased or "
              "wrongly scaled. Frames without an annotation are left out.", ""]
    if "accuracy" in metrics:
        lines += ["## Expression classes", "", f"accuracy {_fmt(metrics['accuracy'])}, "
                  f"macro-F1 {_fmt(metrics['macro_f1'])} on {metrics['n']} labelled frames", ""]
    timelines = [p for k, p in files.items() if k.startswith("timeline_")]
    if timelines:
        lines += ["## Predicted and annotated valence/arousal over time", ""]
        lines += [f"![{p.stem}]({p.name})" for p in timelines]
    return lines
