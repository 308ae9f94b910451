"""The PNG charts of a dataset report: class shares, subjects/videos per class, duplicate examples.

Built on :mod:`affectlens.utils.figures` (headless Agg figures, no pyplot state), which the
evaluation reports share. :func:`near_order` is also the order of the report's near-duplicate
table, so that the pairs pictured are the first ones listed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from affectlens.data.dataset import EmotionDataset
from affectlens.utils.figures import new_figure, save_figure


def plot_class_shares(dist: dict[str, Any], path: Path) -> Path:
    """Grouped bars of each class's share per split (splits of different sizes side by side)."""
    names = dist["class_names"]
    k, splits = len(names), dist["splits"]
    width = 0.8 / len(splits)
    x = np.arange(k)
    fig = new_figure(max(6.0, 0.9 * k + 2.0), 4.5)
    ax = fig.add_subplot()
    for s, split in enumerate(splits):
        ax.bar(x - 0.4 + width * (s + 0.5), [100 * v for v in dist["shares"][split]], width, label=split)
    ax.set_xticks(x, labels=names, rotation=30 if k > 6 else 0, ha="right" if k > 6 else "center")
    ax.set_ylabel("% of the split's labelled images")
    ax.set_title("Class shares per split (same heights = same class mix)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


def plot_groups(result: dict[str, Any], path: Path) -> Path:
    """Per class: distinct subjects/videos (bars) and the largest one's share (dots, right axis)."""
    groups = result["groups"]
    ref = result["dataset"]["reference_split"]
    fig = new_figure(max(6.0, 0.9 * len(result["class_distribution"]["class_names"]) + 2.0) * len(groups), 4.5)
    axes = fig.subplots(1, len(groups), squeeze=False)[0]
    for ax, (kind, info) in zip(axes, groups.items(), strict=True):
        stats = info["per_split"].get(ref) or next(iter(info["per_split"].values()))
        rows = stats["per_class"]
        if not rows:
            ax.text(0.5, 0.5, f"{info['distinct']} {info['plural']} (no class labels)", ha="center",
                    transform=ax.transAxes)
            ax.set_axis_off()
            continue
        x = np.arange(len(rows))
        bars = ax.bar(x, [r["distinct"] for r in rows], color="tab:blue", alpha=0.8)
        ax.bar_label(bars, fontsize=7, padding=1)
        ax.set_xticks(x, labels=[r["class"] for r in rows], rotation=30, ha="right")
        ax.set_ylabel(f"distinct {info['plural']}")
        twin = ax.twinx()
        twin.plot(x, [100 * r["largest_share"] for r in rows], "o", color="tab:red")
        twin.set_ylim(0, 105)
        twin.set_ylabel(f"% of the class from its largest {kind}", color="tab:red")
        ax.set_title(f"{info['plural'].capitalize()} per class ({ref if ref in info['per_split'] else 'all'})")
        ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


def plot_duplicate_examples(result: dict[str, Any], dataset: EmotionDataset, path: Path,
                            per_row: int = 6) -> Path | None:
    """Image pairs side by side: cross-split identical copies, near-identical pairs, blank images."""
    rows: list[tuple[str, list[tuple[int, int | None, str]]]] = []
    blank_ids = {b["index"] for b in result["images"]["near_blank"]}
    exact = sorted(result["duplicates"]["exact"]["listed"],
                   key=lambda g: (g["members"][0]["index"] in blank_ids, len(g["splits"]) == 1,
                                  not g["labels_differ"]))
    if exact:
        items = []
        for g in exact[:per_row]:
            first, other = g["members"][0], _most_telling(g["members"])
            items.append((first["index"], other["index"], _caption(first, other)))
        rows.append(("identical pixels", items))
    near = result["duplicates"].get("near") or {}
    pairs, seen = [], set()
    for p in sorted(near.get("listed", []), key=near_order):
        if p["a"]["index"] not in seen and p["b"]["index"] not in seen:  # show distinct pictures
            pairs.append(p)
            seen.update((p["a"]["index"], p["b"]["index"]))
    if pairs:
        rows.append(("near-identical", [(p["a"]["index"], p["b"]["index"],
                                         f"{p['distance']} bits apart\n" + _caption(p["a"], p["b"]))
                                        for p in pairs[:per_row]]))
    blank = result["images"]["near_blank"]
    if blank:
        rows.append(("near-blank", [(b["index"], None, f"{b['id']}\n{b['split']}") for b in blank[:per_row]]))
    if not rows:
        return None
    heights = [1.0 if title != "near-blank" else 1.6 for title, _ in rows]
    fig = new_figure(2.0 * per_row, 0.6 + 1.6 * sum(heights))
    axes = fig.subplots(len(rows), per_row, squeeze=False, gridspec_kw={"height_ratios": heights})
    for r, (title, items) in enumerate(rows):
        for c in range(per_row):
            ax = axes[r][c]
            ax.set_axis_off()
            if c >= len(items):
                continue
            a, b, caption = items[c]
            image = dataset.image(int(a))
            if b is not None:
                gap = np.full((image.shape[0], 2, image.shape[2]), 255, np.uint8)
                image = np.concatenate([image, gap, dataset.image(int(b))], axis=1)
            ax.imshow(image[..., 0] if image.shape[2] == 1 else image, cmap="gray", vmin=0, vmax=255)
            ax.set_title(caption, fontsize=6)
        axes[r][0].text(-0.08, 0.5, title, rotation=90, va="center", ha="right", transform=axes[r][0].transAxes,
                        fontsize=9)
    fig.suptitle("Duplicate and blank images (split:label of each)", fontsize=10)
    return save_figure(fig, path)


def _most_telling(members: list[dict[str, Any]]) -> dict[str, Any]:
    """The group member best shown beside the first: another split, else another label."""
    first = members[0]
    for m in members[1:]:
        if m["split"] != first["split"]:
            return m
    for m in members[1:]:
        if m["label"] != first["label"]:
            return m
    return members[1]


def near_order(pair: dict[str, Any]) -> tuple[bool, bool, int]:
    """Cross-split pairs first, then those whose labels differ, then the closest."""
    return pair["a"]["split"] == pair["b"]["split"], not pair["labels_differ"], pair["distance"]


def _caption(a: dict[str, Any], b: dict[str, Any]) -> str:
    return f"{a['split']}:{a['label']} | {b['split']}:{b['label']}"


def plot_valence_arousal(dataset: EmotionDataset, path: Path) -> Path:
    """2-D histogram of the labelled (valence, arousal) pairs."""
    v = np.asarray(dataset.valence, np.float64)
    a = np.asarray(dataset.arousal, np.float64)
    known = np.isfinite(v) & np.isfinite(a)
    fig = new_figure(5.0, 4.5)
    ax = fig.add_subplot()
    if known.any():
        lo = float(min(v[known].min(), a[known].min(), -1.0))
        hi = float(max(v[known].max(), a[known].max(), 1.0))
        _, _, _, im = ax.hist2d(v[known], a[known], bins=40, range=[[lo, hi], [lo, hi]], cmap="Blues", cmin=1)
        fig.colorbar(im, ax=ax, label="samples")
    ax.set_xlabel("valence")
    ax.set_ylabel("arousal")
    ax.set_title(f"Valence / arousal ({int(known.sum()):,} labelled)")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)
