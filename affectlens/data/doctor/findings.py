"""The doctor's plain-language warnings: what the measured numbers mean for training and validation.

Each warning names the numbers behind it and says why they matter (a model that never predicts a
class, a score that measures recognising people rather than expressions), because the report is
read by people who have never seen the tool. Warnings are sorted most serious first.

One rule function per topic, ``(result, context) -> findings``, listed in :data:`RULES`: a new
check is one more function, testable alone, and the shared :class:`Context` (reference split,
what a sample is called, whether there are several splits) is worked out once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affectlens.data.doctor.thresholds import (
    BLANK_STD,
    BRIGHT_MEAN,
    DARK_MEAN,
    DOMINANT_SHARE,
    FEW_GROUPS,
    IMBALANCE_HIGH,
    IMBALANCE_MEDIUM,
    JS_HIGH,
    JS_MEDIUM,
    RARE_EVAL_COUNT,
    SMALL_SIDE,
)

SEVERITY_ORDER = {"high": 0, "medium": 1, "info": 2}


def _fmt(n: int | float) -> str:
    return f"{int(n):,}"


def _count(n: int, singular: str, plural: str | None = None) -> str:
    """``1 image`` / ``2 images`` (thousands separated)."""
    return f"{_fmt(n)} {singular if n == 1 else (plural or singular + 's')}"


def _are(n: int) -> str:
    return "is" if n == 1 else "are"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x >= 0.1 else f"{100 * x:.1f}%"


#: one warning: {"severity": high | medium | info, "topic": ..., "message": ...}
Finding = dict[str, str]


def finding(severity: str, topic: str, message: str) -> Finding:
    """One warning: ``severity`` high / medium / info; ``topic`` picks the remedy (see remedies.py)."""
    return {"severity": severity, "topic": topic, "message": message}


@dataclass(frozen=True)
class Context:
    """What most rules need, worked out once per inspection."""

    ref: str  #: the split the others are compared with (the training split when there is one)
    class_names: list[str]
    multi: bool  #: the dataset has several splits
    unit_one: str  #: what a sample is called: "frame" when video ids are known, else "image"
    unit: str  #: the plural of ``unit_one``
    where: str  #: " in <ref>" with several splits, else ""

    @classmethod
    def of(cls, result: dict[str, Any]) -> Context:
        dist = result["class_distribution"]
        ref = dist["reference_split"]
        unit_one = "frame" if "video" in result["groups"] else "image"
        multi = len(dist["splits"]) > 1
        return cls(ref=ref, class_names=dist["class_names"], multi=multi, unit_one=unit_one, unit=unit_one + "s",
                   where=f" in {ref}" if multi else "")


Rule = Callable[[dict[str, Any], Context], list[Finding]]


# ------------------------------------------------------------------------------------------- the rules
def labels_and_classes(result: dict[str, Any], ctx: Context) -> list[Finding]:
    """No labels at all, fewer than two labelled classes, class folders without images."""
    out: list[Finding] = []
    names = ctx.class_names
    if not names and result["regression_targets"] is None:
        out.append(finding("high", "labels", "The dataset has neither class labels nor valence/arousal values."))
    labelled_classes = [name for name, n in zip(names, result["class_distribution"]["all"], strict=True) if n > 0]
    if names and len(labelled_classes) < 2:
        out.append(finding(
            "high", "classes",
            f"Only {len(labelled_classes)} class ({', '.join(labelled_classes) or 'none'}) has labelled {ctx.unit}: a "
            "classifier needs at least two, and `affectlens train` refuses this dataset. A class-per-folder tree "
            "needs one sub-folder per class."))
    empty = result["dataset"].get("empty_class_folders") or []
    if empty:
        dropped = sorted({Path(folder).name for folder in empty} - set(names))
        left_out = ""
        if dropped:
            one = len(dropped) == 1
            left_out = (f": class{'' if one else 'es'} {', '.join(dropped)} {'is' if one else 'are'} left out, so a "
                        f"model trained on this data cannot predict {'it' if one else 'them'}")
        out.append(finding(
            "high" if dropped else "medium", "classes",
            f"{_count(len(empty), 'class folder')} {'holds' if len(empty) == 1 else 'hold'} no images "
            f"({', '.join(empty)}){left_out}."))
    return out


def skipped_files(result: dict[str, Any], ctx: Context) -> list[Finding]:
    """Files the loader or the scan left out (not images, unreadable)."""
    skipped = result["dataset"].get("skipped_files") or []
    if not skipped:
        return []
    shown = "; ".join(f"{Path(s['file']).name} ({s['reason']})" for s in skipped[:3])
    more = f"; and {_fmt(len(skipped) - 3)} more (all in report.json)" if len(skipped) > 3 else ""
    unreadable = any(s.get("kind") == "unreadable" for s in skipped)
    return [finding("high" if unreadable else "medium", "files",
                    f"{_count(len(skipped), 'file')} {'was' if len(skipped) == 1 else 'were'} left out of the "
                    f"dataset: {shown}{more}.")]


def imbalance(result: dict[str, Any], ctx: Context) -> list[Finding]:
    """Largest to smallest class ratio in the reference split."""
    dist = result["class_distribution"]
    imb = dist["imbalance"].get(ctx.ref)
    # an infinite ratio (a class with no samples) is reported by missing_classes
    if not imb or imb["ratio"] < IMBALANCE_MEDIUM or math.isinf(imb["ratio"]):
        return []
    total = sum(dist["counts"][ctx.ref])
    severity = "high" if imb["ratio"] >= IMBALANCE_HIGH else "medium"
    return [finding(
        severity, "imbalance",
        f"Classes are imbalanced{ctx.where}: {imb['smallest']} has {_fmt(imb['smallest_count'])} {ctx.unit}, "
        f"{imb['ratio']:.1f}x fewer than {imb['largest']} ({_fmt(imb['largest_count'])}). A model that "
        f"never predicts {imb['smallest']} loses only {_pct(imb['smallest_count'] / total)} accuracy, "
        "so watch macro-F1 and per-class recall, not accuracy.")]


def missing_classes(result: dict[str, Any], ctx: Context) -> list[Finding]:
    """Classes without labelled samples in a split (high in the reference split: nothing to learn from)."""
    out: list[Finding] = []
    for split, info in result["class_distribution"]["imbalance"].items():
        missing = info["missing_classes"]
        if missing:
            one = len(missing) == 1
            out.append(finding(
                "high" if split == ctx.ref else "medium", "imbalance",
                f"{', '.join(missing)} {'has' if one else 'have'} no labelled {ctx.unit} in {split}"
                + (f": the model cannot learn {'it' if one else 'them'}." if split == ctx.ref
                   else f": {'its' if one else 'their'} recall cannot be measured there.")))
    return out


def rare_evaluation_classes(result: dict[str, Any], ctx: Context) -> list[Finding]:
    """Classes so small in an evaluation split that one sample moves their recall by points."""
    dist = result["class_distribution"]
    rare_parts, steps = [], []
    for split in dist["splits"]:
        if split == ctx.ref or not ctx.multi:
            continue
        rare = [(cls, count) for cls, count in zip(ctx.class_names, dist["counts"][split], strict=True)
                if 0 < count < RARE_EVAL_COUNT]
        if rare:
            rare_parts.append(f"{split}: " + ", ".join(f"{cls} ({_fmt(count)})" for cls, count in rare))
            steps += [100 / count for _, count in rare]
    if not rare_parts:
        return []
    low, high = f"{min(steps):.1f}", f"{max(steps):.1f}"
    step = low if low == high else f"{low} to {high}"
    return [finding(
        "medium", "imbalance",
        f"Some classes have fewer than {RARE_EVAL_COUNT} {ctx.unit} in an evaluation split ("
        + "; ".join(rare_parts) + f"): one {ctx.unit_one} moves such a class's recall by {step} points, so its "
        "per-class scores are noisy.")]


def split_shift(result: dict[str, Any], ctx: Context) -> list[Finding]:
    """Splits whose class mix differs from the reference split's."""
    out: list[Finding] = []
    ref = ctx.ref
    for comp in result["split_divergence"]["comparisons"]:
        js = comp["js_divergence"]
        if js < JS_MEDIUM:
            continue
        diffs = "; ".join(f"{d['class']} is {_pct(d['share'])} of {comp['split']} but {_pct(d['reference_share'])} "
                          f"of {ref}" for d in comp["most_different"][:2])
        out.append(finding(
            "high" if js >= JS_HIGH else "medium", "split_shift",
            f"{comp['split']} has a different class mix from {ref} (Jensen-Shannon divergence {js:.3f} bits): "
            f"{diffs}. Accuracy on {comp['split']} is then not comparable with accuracy on {ref}."))
    return out


def groups_and_leakage(result: dict[str, Any], ctx: Context) -> list[Finding]:
    """Per subject/video kind: classes backed by few ids or one dominant id, ids in two splits, one id only."""
    out: list[Finding] = []
    ref, unit, unit_one, where = ctx.ref, ctx.unit, ctx.unit_one, ctx.where
    for kind, info in result["groups"].items():
        plural = info["plural"]
        stats = info["per_split"].get(ref) or next(iter(info["per_split"].values()), None)
        if stats is None:
            continue
        for row in stats["per_class"]:
            if row["samples"] < 4 or row["distinct"] == row["samples"]:
                continue  # too small to judge, or every image its own person / video
            few = row["distinct"] < FEW_GROUPS
            dominant = row["largest_share"] >= DOMINANT_SHARE
            if not (few or dominant):
                continue
            parts = [f"{row['class']}{where}: {_count(row['samples'], unit_one)} from "
                     + ("only " if few else "") + _count(row["distinct"], kind, plural),
                     f"one {kind} ({row['largest_id']}) supplies {_pct(row['largest_share'])} of them"]
            severity = "high" if row["distinct"] < 5 or row["largest_share"] >= 0.4 else "medium"
            out.append(finding(
                severity, "groups", "; ".join(parts) + f". A model can learn these {plural} instead of the "
                "expression; expect a lower validation score for this class on unseen " + plural + "."))
        for ov in info["overlaps"]:
            if ov["split"] == ref:
                continue
            affected = _count(ov["samples_in_shared"], f"{ov['split']} {unit_one}", f"{ov['split']} {unit}")
            out.append(finding(
                "high", "leakage",
                f"{_count(ov['shared_ids'], kind, plural)} {'appears' if ov['shared_ids'] == 1 else 'appear'} in "
                f"both {ov['split']} and {ov['other_split']} ({affected}, "
                f"{_pct(ov['share_of_split'])} of it): scores on {ov['split']} partly measure recognising these "
                f"{plural}, not their expressions."))
        if stats["distinct"] == 1 and stats["samples"] > 1:
            out.append(finding(
                "medium", "groups", f"All {_count(stats['samples'], unit_one)}{where} come from a single {kind} "
                f"({stats['largest_id']}): nothing learnt here is known to carry over to other {plural}."))
        elif not ctx.multi and stats["samples_per_id_median"] > 1:
            out.append(finding(
                "medium", "leakage",
                f"Each {kind} contributes several {unit} (median {stats['samples_per_id_median']:.0f}, up to "
                f"{_fmt(stats['samples_per_id_max'])}): a random image-level split would put the same {kind} "
                f"on both sides and inflate validation accuracy. Split by {kind} instead."))
    return out


def exact_duplicates(result: dict[str, Any], ctx: Context) -> list[Finding]:
    """Pixel-identical copies: of reference images in other splits, within a split, with different labels."""
    out: list[Finding] = []
    ex = result["duplicates"]["exact"]
    for split, n in ex["copies_of_reference_in"].items():
        if n:
            out.append(finding(
                "high", "duplicates",
                f"{_count(n, split + ' image')} {_are(n)} pixel-identical to {ctx.ref} images: the model has seen "
                f"{'it' if n == 1 else 'them'} in training, so {'it inflates' if n == 1 else 'they inflate'} "
                f"{split} scores."))
    if ex["extra_copies_within_splits"]:
        out.append(finding(
            "medium", "duplicates",
            f"{_count(ex['extra_copies_within_splits'], 'image')} {_are(ex['extra_copies_within_splits'])} "
            f"pixel-identical copies of another image in the same split ({_count(ex['groups'], 'group')} of "
            "identical images in all); copies weigh those pictures more in training and in scores."))
    if ex["label_conflict_groups"]:
        out.append(finding(
            "medium", "labels",
            f"{_count(ex['label_conflict_groups'], 'group')} of identical images "
            f"{'carries' if ex['label_conflict_groups'] == 1 else 'carry'} different labels: in each, at least one "
            "label is wrong."))
    return out


def near_duplicates(result: dict[str, Any], ctx: Context) -> list[Finding]:
    """Near-identical images (perceptual hash): of reference images, a truncated search, pairs within splits."""
    near = result["duplicates"].get("near")
    if not near:
        return []
    out: list[Finding] = []
    for split, n in near["near_copies_of_reference_in"].items():
        if n:
            out.append(finding(
                "medium", "duplicates",
                f"{_count(n, split + ' image')} {_are(n)} near-identical (not pixel-identical) to {ctx.ref} images "
                f"(perceptual hash within {near['threshold_bits']} bits): the same photos re-encoded or "
                "re-cropped."))
    if near["truncated"]:
        out.append(finding(
            "info", "duplicates",
            f"The near-duplicate search stopped at {_fmt(near['pairs'])} pairs (typical of video frames, which "
            "are near-identical by the thousand): near-duplicate counts are lower bounds. Exact duplicates "
            "are complete; `--no-near` skips this search."))
    if near["pairs_within_split"]:
        same = " and ".join(f"{_fmt(n)} from one {kind}" for kind, n in near["pairs_same_id"].items())
        same = f"of all near-identical pairs, {same}" if same else ""
        conflicts = (f"; {_count(near['label_conflict_pairs'], 'near-identical pair')} "
                     f"{'carries' if near['label_conflict_pairs'] == 1 else 'carry'} different labels"
                     if ctx.class_names else "")
        out.append(finding(
            "info", "duplicates",
            f"{_count(near['pairs_within_split'], 'pair')} of near-identical images"
            + (f" {'lies' if near['pairs_within_split'] == 1 else 'lie'} within one split" if ctx.multi else "")
            + (f" ({same})" if same else "") + conflicts + "."))
    return out


def images(result: dict[str, Any], ctx: Context) -> list[Finding]:
    """Near-blank, tiny, unreadable, mixed-size, very dark or bright images."""
    out: list[Finding] = []
    stats = result["images"]
    if stats["near_blank_count"]:
        out.append(finding(
            "medium", "images",
            f"{_count(stats['near_blank_count'], 'image')} {_are(stats['near_blank_count'])} blank or nearly "
            "blank (pixel standard deviation "
            f"below {BLANK_STD:g}): they hold no face; drop them."))
    files = stats.get("files")
    if files:
        if files["small_count"]:
            out.append(finding(
                "medium", "images",
                f"{_count(files['small_count'], 'image file')} {_are(files['small_count'])} smaller than "
                f"{SMALL_SIDE} pixels on the short side: too little detail for expressions."))
        if files.get("modes", {}).get("unreadable"):
            out.append(finding("high", "images",
                               f"{_count(files['modes']['unreadable'], 'image file')} cannot be read."))
        if files["distinct_sizes"] > 1:
            out.append(finding(
                "info", "images",
                f"Image files come in {_fmt(files['distinct_sizes'])} sizes (short side {files['short_side_min']} "
                f"to {files['short_side_max']} px); all are resized to {stats['delivered_size']}."))
    if stats["very_dark_count"] or stats["very_bright_count"]:
        dark = stats["very_dark_count"]
        out.append(finding(
            "info", "images", f"{_count(dark, 'image')} {_are(dark)} very dark and "
            f"{_fmt(stats['very_bright_count'])} very bright (mean grey level below {DARK_MEAN:g} / above "
            f"{BRIGHT_MEAN:g})."))
    return out


def regression_targets(result: dict[str, Any], ctx: Context) -> list[Finding]:
    """Valence or arousal that never changes within a split: nothing to learn."""
    out: list[Finding] = []
    for split, targets in (result["regression_targets"] or {}).items():
        for target, t in targets.items():
            if t["labelled"] > 1 and t["std"] is not None and t["std"] < 1e-6:
                out.append(finding(
                    "medium", "labels", f"{target.capitalize()} is constant ({t['mean']:g}) over the "
                    f"{_count(t['labelled'], 'labelled sample')}{f' of {split}' if ctx.multi else ''}: there is "
                    "nothing to learn from it."))
    return out


def unlabelled(result: dict[str, Any], ctx: Context) -> list[Finding]:
    """Samples without a class label in a dataset that has classes."""
    unl = sum(result["class_distribution"]["unlabelled"].values())
    if not (unl and ctx.class_names):
        return []
    return [finding("info", "labels", f"{_count(unl, 'sample')} without a class label (kept for valence/arousal or "
                    "ignored).")]


#: every rule, in the order their findings are listed within one severity
RULES: tuple[Rule, ...] = (
    labels_and_classes,
    skipped_files,
    imbalance,
    missing_classes,
    rare_evaluation_classes,
    split_shift,
    groups_and_leakage,
    exact_duplicates,
    near_duplicates,
    images,
    regression_targets,
    unlabelled,
)


def build_warnings(result: dict[str, Any]) -> list[Finding]:
    """Plain-language findings, most serious first; each names the numbers behind it.

    Runs every rule of :data:`RULES` and sorts by severity; the sort is stable, so findings of one
    severity keep the order of the rules (and within a rule, the order it found them in).
    """
    ctx = Context.of(result)
    warnings = [w for rule in RULES for w in rule(result, ctx)]
    warnings.sort(key=lambda w: SEVERITY_ORDER[w["severity"]])
    return warnings
