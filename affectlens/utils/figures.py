"""Figure plumbing shared by every report (evaluation, training curves, dataset inspection).

Figures are built with :class:`matplotlib.figure.Figure` and rendered by the Agg canvas directly,
never through ``pyplot``: no window can open, no global backend is switched under other code (a
server or a notebook), and no figure leaks into pyplot's registry, so nothing needs closing.
Kept at the bottom of the import graph so that data/ (inspection) and evaluation/ share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from affectlens.errors import AffectlensError

DPI = 120


def new_figure(width: float, height: float) -> Figure:
    """A figure bound to the Agg canvas (headless rendering, no pyplot state)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write the PNG (creating parent folders) and drop the figure's artists."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI, format="png")
    fig.clear()
    return out


def plot_class_distribution(
    counts_by_split: dict[str, Sequence[int]],
    class_names: Sequence[str],
    path: str | Path,
    title: str = "Class distribution",
) -> Path:
    """Grouped bar chart of samples per class, one bar colour per split (train/val/test...)."""
    k = len(class_names)
    if not counts_by_split:
        raise AffectlensError("no splits given to plot the class distribution of")
    for split, counts in counts_by_split.items():
        if len(counts) != k:
            raise AffectlensError(f"split '{split}' has {len(counts)} class counts, expected {k}")
    n_splits = len(counts_by_split)
    width = 0.8 / n_splits
    x = np.arange(k)
    fig = new_figure(max(6.0, 0.9 * k + 2.0), 4.5)
    ax = fig.add_subplot()
    for s, (split, counts) in enumerate(counts_by_split.items()):
        bars = ax.bar(x - 0.4 + width * (s + 0.5), list(counts), width, label=f"{split} (n={sum(counts)})")
        if k * n_splits <= 40:
            ax.bar_label(bars, fontsize=7, padding=1)
    ax.set_xticks(x, labels=list(class_names), rotation=30 if k > 6 else 0, ha="right" if k > 6 else "center")
    ax.set_ylabel("samples")
    ax.set_title(title)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)
