"""PNG plots for evaluation reports, training runs and dataset inspection.

Figures are built with :class:`matplotlib.figure.Figure` and rendered by the Agg canvas directly,
never through ``pyplot``: no window can open, no global backend is switched under other code (a
server or a notebook), and no figure leaks into pyplot's registry, so nothing needs closing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from affectlens.errors import AffectlensError
from affectlens.utils.figures import DPI, new_figure, plot_class_distribution, save_figure

__all__ = ["DPI", "plot_class_distribution"]  # re-exported: evaluation.plot_class_distribution


def plot_confusion_matrix(
    cm: np.ndarray | list[list[float]],
    class_names: Sequence[str],
    path: str | Path,
    normalized: bool = False,
    title: str = "Confusion matrix",
) -> Path:
    """Heatmap of a confusion matrix (rows = true class), each cell annotated.

    With ``normalized=True`` the matrix is row-normalised here (empty rows stay 0), so either the
    counts or an already normalised matrix can be passed; cells then show percentages of the true class.
    """
    m = np.asarray(cm, dtype=np.float64)
    k = len(class_names)
    if m.shape != (k, k):
        raise AffectlensError(f"confusion matrix has shape {m.shape}, expected ({k}, {k}) for {k} classes")
    if normalized:
        sums = m.sum(axis=1, keepdims=True)
        m = np.divide(m, sums, out=np.zeros_like(m), where=sums > 0)
    size = max(4.0, 0.8 * k + 2.0)
    fig = new_figure(size + 1.0, size)
    ax = fig.add_subplot()
    vmax = 1.0 if normalized else max(float(m.max()), 1.0)
    im = ax.imshow(m, cmap="Blues", vmin=0.0, vmax=vmax)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ticks = np.arange(k)
    ax.set_xticks(ticks, labels=list(class_names), rotation=45, ha="right")
    ax.set_yticks(ticks, labels=list(class_names))
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.set_title(title)
    fontsize = 10 if k <= 8 else 7
    for i in range(k):
        for j in range(k):
            v = m[i, j]
            text = f"{100 * v:.0f}%" if normalized else f"{int(round(v))}"
            color = "white" if v > 0.6 * vmax else "black"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=fontsize)
    return save_figure(fig, path)


def plot_roc(
    y_true: np.ndarray,
    probs: np.ndarray,
    class_names: Sequence[str],
    path: str | Path,
    title: str = "ROC curves",
) -> Path:
    """ROC curve(s) with AUC in the legend.

    Binary: one curve for class index 1. Multiclass: one-vs-rest curve per class present in y_true,
    plus the macro-average curve (mean TPR over a common FPR grid; its legend shows the mean of the
    per-class AUCs, matching ``metrics.json``). Classes without positives or negatives are noted, not drawn.
    """
    y = np.asarray(y_true).astype(np.int64)
    p = np.asarray(probs, dtype=np.float64)
    k = len(class_names)
    if p.ndim != 2 or p.shape != (y.shape[0], k):
        raise AffectlensError(f"probs must have shape ({y.shape[0]}, {k}), got {p.shape}")
    fig = new_figure(6.0, 5.5)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance (AUC = 0.50)")
    targets = [1] if k == 2 else list(range(k))
    grid = np.linspace(0.0, 1.0, 201)
    tprs, aucs, skipped = [], [], []
    for c in targets:
        pos = y == c
        if pos.all() or not pos.any():
            skipped.append(class_names[c])
            continue
        fpr, tpr, _ = roc_curve(pos.astype(np.int64), p[:, c])
        auc = float(roc_auc_score(pos.astype(np.int64), p[:, c]))
        tprs.append(np.interp(grid, fpr, tpr))
        aucs.append(auc)
        label = (
            f"{class_names[c]} (AUC = {auc:.3f})"
            if k > 2
            else f"{class_names[1]} vs {class_names[0]} (AUC = {auc:.3f})"
        )
        ax.plot(fpr, tpr, linewidth=1.5 if k == 2 else 1.0, label=label)
    if k > 2 and len(aucs) > 1:
        mean_tpr = np.mean(tprs, axis=0)
        mean_tpr[0] = 0.0
        ax.plot(
            grid, mean_tpr, color="black", linewidth=2.2, label=f"macro-average (AUC = {np.mean(aucs):.3f})"
        )
    if skipped:
        ax.text(
            0.98,
            0.02,
            "no AUC (class absent or only class): " + ", ".join(skipped),
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=8,
            color="dimgrey",
        )
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate")
    ax.set_title(title if k > 2 else f"{title} (positive class: {class_names[1]})")
    ax.legend(loc="lower right", fontsize=8 if k > 4 else 9, bbox_to_anchor=(1.0, 0.06 if skipped else 0.0))
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def _series(history: list[dict], key: str) -> tuple[list[float], list[float]]:
    """(epochs, values) for one key, skipping epochs where it is missing or None."""
    xs, ys = [], []
    for i, row in enumerate(history):
        v = row.get(key)
        if v is None:
            continue
        xs.append(float(row.get("epoch", i + 1)))
        ys.append(float(v))
    return xs, ys


def plot_training_curves(history: list[dict], path: str | Path, title: str = "Training curves") -> Path:
    """Loss, accuracy/macro-F1 and learning-rate panels from per-epoch history dicts.

    Each dict has ``epoch`` and any of ``train_loss, val_loss, train_accuracy, val_accuracy,
    val_macro_f1, lr``; panels with no data are left out, so partial logs still plot.
    """
    if not history:
        raise AffectlensError("training history is empty; nothing to plot")
    panels = [
        ("Loss", ["train_loss", "val_loss"], False),
        ("Accuracy / macro-F1", ["train_accuracy", "val_accuracy", "val_macro_f1"], False),
        ("Learning rate", ["lr"], True),
    ]
    todo = []
    for name, keys, logy in panels:
        series = [(key, *_series(history, key)) for key in keys]
        series = [s for s in series if s[1]]
        if series:
            todo.append((name, series, logy))
    if not todo:
        raise AffectlensError(
            "training history has none of train_loss, val_loss, train_accuracy, val_accuracy, "
            "val_macro_f1, lr"
        )
    fig = new_figure(4.5 * len(todo), 4.0)
    axes = fig.subplots(1, len(todo), squeeze=False)[0]
    for ax, (name, series, logy) in zip(axes, todo, strict=True):
        for key, xs, ys in series:
            ax.plot(xs, ys, marker="o" if len(xs) <= 30 else None, markersize=3, label=key)
        if logy and all(v > 0 for _, _, ys in series for v in ys):
            ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if len(series) > 1 or not logy:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_va_timeline(frames: np.ndarray, true: np.ndarray, pred: np.ndarray, path: str | Path,
                     title: str = "Valence and arousal over time") -> Path:
    """Annotated (solid) and predicted (dashed) valence and arousal of one video, frame by frame.

    Unlabelled frames (NaN targets) leave gaps in the annotated line; both panels share the
    [-1, 1] scale, so a biased or flattened prediction is visible at a glance.
    """
    fig = new_figure(9.0, 4.8)
    axes = fig.subplots(2, 1, sharex=True)
    for ax, j, name, colour in ((axes[0], 0, "valence", "tab:blue"), (axes[1], 1, "arousal", "tab:red")):
        ax.plot(frames, true[:, j], color=colour, linewidth=1.6, label=f"annotated {name}")
        ax.plot(frames, pred[:, j], color="black", linewidth=1.2, linestyle="--", label=f"predicted {name}")
        ax.set_ylim(-1.05, 1.05)
        ax.axhline(0.0, color="grey", linewidth=0.5)
        ax.set_ylabel(name)
        ax.legend(loc="upper right", fontsize=8)
    axes[1].set_xlabel("frame")
    axes[0].set_title(title)
    return save_figure(fig, path)


def plot_reliability(bins: Sequence[dict], path: str | Path, ece: float, title: str = "Reliability") -> Path:
    """Reliability diagram: accuracy per confidence bin against the diagonal of perfect calibration.

    Bars are the accuracy of the faces whose top probability falls in each bin; the red gap to the
    diagonal is over-confidence (below it) or under-confidence (above it); the bars' widths are
    the bins, the lower panel how many faces each holds. ``ece`` goes in the title.
    """
    fig = new_figure(5.5, 6.0)
    top, low = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    lows = np.array([b["low"] for b in bins])
    width = np.array([b["high"] - b["low"] for b in bins])
    accuracy = np.array([b["accuracy"] for b in bins])
    confidence = np.array([b["confidence"] for b in bins])
    counts = np.array([b["count"] for b in bins])
    filled = counts > 0
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    top.bar(lows[filled], accuracy[filled], width=width[filled], align="edge", color="#4a78b5",
            edgecolor="white", label="accuracy")
    top.bar(lows[filled], confidence[filled] - accuracy[filled], bottom=accuracy[filled], width=width[filled],
            align="edge", color="#d9534f", alpha=0.45, edgecolor="none", label="gap to confidence")
    top.set_xlim(0.0, 1.0)
    top.set_ylim(0.0, 1.0)
    top.set_ylabel("Accuracy")
    top.set_title(f"{title} (ECE {ece:.3f}, {len(bins)} bins)")
    top.legend(loc="upper left", fontsize=8)
    top.grid(alpha=0.3)
    low.bar(lows, counts, width=width, align="edge", color="dimgrey", edgecolor="white")
    low.set_xlabel("Confidence (top probability)")
    low.set_ylabel("Faces")
    return save_figure(fig, path)
