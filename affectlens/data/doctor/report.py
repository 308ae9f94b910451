"""Write an inspection (see :mod:`affectlens.data.doctor`) as Markdown, JSON, CSV and PNG files.

The Markdown is written for someone who has never seen the tool: findings in plain language
first, then what to do about them, then the tables with a sentence each on how to read them.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from affectlens.data.dataset import EmotionDataset
from affectlens.data.doctor.plots import (
    near_order,
    plot_class_shares,
    plot_duplicate_examples,
    plot_groups,
    plot_valence_arousal,
)
from affectlens.utils.figures import plot_class_distribution
from affectlens.utils.markdown import markdown_table

REPORT_MD, REPORT_JSON, DUPLICATES_CSV = "report.md", "report.json", "duplicates.csv"
#: rows shown in the Markdown tables of duplicates / blank images (the CSV and JSON hold them all)
MD_ROWS = 15
SEVERITY_LABEL = {"high": "High", "medium": "Medium", "info": "Info"}


def write_inspection_report(result: dict[str, Any], out_dir: str | Path,
                            dataset: EmotionDataset | None = None) -> dict[str, Path]:
    """Write report.md, report.json, duplicates.csv and the PNG charts into ``out_dir``.

    With ``dataset`` (the one inspected) the report also shows example duplicate and blank images.
    Returns the paths written, by kind.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    dist = result["class_distribution"]
    if dist["class_names"]:
        written["class_distribution"] = plot_class_distribution(
            dist["counts"], dist["class_names"], out / "class_distribution.png",
            title=f"{result['dataset']['name']}: images per class and split")
        if len(dist["splits"]) > 1:
            written["class_shares"] = plot_class_shares(dist, out / "class_shares.png")
    if result["groups"]:
        written["groups"] = plot_groups(result, out / "groups_per_class.png")
    if dataset is not None:
        examples = plot_duplicate_examples(result, dataset, out / "duplicate_examples.png")
        if examples is not None:
            written["duplicate_examples"] = examples
        if result["regression_targets"] is not None:
            written["valence_arousal"] = plot_valence_arousal(dataset, out / "valence_arousal.png")
    written["duplicates_csv"] = write_duplicates_csv(result, out / DUPLICATES_CSV)
    written["json"] = out / REPORT_JSON
    written["json"].write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
    written["markdown"] = out / REPORT_MD
    written["markdown"].write_text(render_markdown(result, {k: p.name for k, p in written.items()}))
    return written


# -------------------------------------------------------------------------------------------- markdown
def _n(value: Any) -> str:
    return f"{int(value):,}" if value is not None else "-"


def _p(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def _table(header: list[str], rows: list[list[Any]], right: set[int] | None = None) -> list[str]:
    """A Markdown table and a blank line; ``right`` defaults to every column but the first (numbers)."""
    right = set(range(1, len(header))) if right is None else right
    return markdown_table(header, rows, right) + [""]


def render_markdown(result: dict[str, Any], files: dict[str, str] | None = None) -> str:
    """The whole report as Markdown (``files``: names of the PNG/CSV files written beside it)."""
    files = files or {}
    ds = result["dataset"]
    lines: list[str] = [f"# Dataset report: {ds['name']}", ""]
    lines += [_overview(result), ""]
    lines += _findings(result)
    lines += _remedies(result)
    lines += _class_section(result, files)
    lines += _divergence_section(result)
    lines += _groups_section(result, files)
    lines += _duplicates_section(result, files)
    lines += _images_section(result)
    lines += _regression_section(result, files)
    lines += _about(result)
    return "\n".join(lines).rstrip() + "\n"


def _overview(result: dict[str, Any]) -> str:
    ds = result["dataset"]
    kind = "grey" if ds["channels"] == 1 else "colour"
    splits = ds["splits"]
    split_text = (f"in {len(splits)} splits ({', '.join(f'{k} {_n(v)}' for k, v in splits.items())})"
                  if ds["has_split_column"] else "with no split column (one pool of samples)")
    classes = f"{len(ds['classes'])} classes ({', '.join(ds['classes'])})" if ds["classes"] else "no class labels"
    extras = []
    if "subjects" in ds["columns"]:
        extras.append("subject ids")
    if "videos" in ds["columns"]:
        extras.append("video ids")
    if "valence" in ds["columns"]:
        extras.append("valence/arousal")
    if "soft_labels" in ds["columns"]:
        extras.append("soft (vote) labels")
    text = (f"**{_n(ds['samples'])} images** {split_text}, {classes}, delivered as {ds['image_size']} {kind} "
            f"images" + (f"; with {', '.join(extras)}" if extras else "") + ".")
    if ds["source"]:
        text += f"  \nSource: `{ds['source']}`. Inspected by `affectlens inspect` on {result['created'][:10]}."
    return text


def _findings(result: dict[str, Any]) -> list[str]:
    lines = ["## Findings", ""]
    warnings = result["warnings"]
    if not warnings:
        return lines + ["No problems found: balanced classes, no duplicates, no leakage between splits.", ""]
    lines += ["Most serious first. **High**: likely to distort training or make validation scores lie. "
              "**Medium**: worth fixing. **Info**: good to know.", ""]
    for i, w in enumerate(warnings, 1):
        lines.append(f"{i}. **{SEVERITY_LABEL[w['severity']]}** ({w['topic'].replace('_', ' ')}): {w['message']}")
    return lines + [""]


def _remedies(result: dict[str, Any]) -> list[str]:
    if not result["remedies"]:
        return []
    lines = ["## What you can do", ""]
    lines += [f"- **{r['title']}**: {r['advice']}" for r in result["remedies"]]
    return lines + [""]


def _class_section(result: dict[str, Any], files: dict[str, str]) -> list[str]:
    dist = result["class_distribution"]
    if not dist["class_names"]:
        return []
    splits = dist["splits"]
    lines = ["## Class distribution", "",
             "Images per class in each split, and each class's share of that split's labelled images.", ""]
    header = ["class"]
    for s in splits:
        header += [s, "share"]
    if len(splits) > 1:
        header.append("all")
    rows = []
    for c, name in enumerate(dist["class_names"]):
        row: list[Any] = [name]
        for s in splits:
            row += [_n(dist["counts"][s][c]), _p(dist["shares"][s][c])]
        if len(splits) > 1:
            row.append(_n(dist["all"][c]))
        rows.append(row)
    total: list[Any] = ["**total**"]
    for s in splits:
        total += [f"**{_n(sum(dist['counts'][s]))}**", ""]
    if len(splits) > 1:
        total.append(f"**{_n(sum(dist['all']))}**")
    rows.append(total)
    lines += _table(header, rows)
    unl = {s: n for s, n in dist["unlabelled"].items() if n}
    if unl:
        lines += ["Samples without a class label (not counted above): "
                  + ", ".join(f"{s} {_n(n)}" for s, n in unl.items()) + ".", ""]
    ratios = [f"{s} {info['ratio']:.1f}x ({info['largest']} / {info['smallest']})" if info["ratio"] is not None
              else f"{s}: {', '.join(info['missing_classes'])} missing"
              for s, info in dist["imbalance"].items()]
    if ratios:
        lines += ["Largest to smallest class: " + "; ".join(ratios) + ".", ""]
    if "class_distribution" in files:
        lines += [f"![Images per class and split]({files['class_distribution']})", ""]
    if "class_shares" in files:
        lines += [f"![Share of each class per split]({files['class_shares']})", ""]
    return lines


def _divergence_section(result: dict[str, Any]) -> list[str]:
    div = result["split_divergence"]
    if not div["comparisons"]:
        return []
    lines = ["## Do the splits have the same class mix?", "",
             f"Each split is compared with **{div['reference']}**. The measure is the {div['measure']}; below "
             "0.01 the mixes are practically the same.", ""]
    rows = []
    for comp in div["comparisons"]:
        diffs = ", ".join(f"{d['class']} {_p(d['reference_share'])} → {_p(d['share'])}"
                          for d in comp["most_different"])
        rows.append([comp["split"], f"{comp['js_divergence']:.4f}", diffs or "-"])
    lines += _table(["split", "JS divergence", f"classes that differ most ({div['reference']} → split)"], rows,
                    right={1})
    return lines


def _groups_section(result: dict[str, Any], files: dict[str, str]) -> list[str]:
    groups = result["groups"]
    lines = ["## Subjects and videos behind each class", ""]
    if not groups:
        return lines + ["The dataset has no subject or video ids, so identity leakage between splits cannot be "
                        "checked here. If you know them, add `subject` / `video` columns to a manifest CSV "
                        "and inspect that.", ""]
    lines += ["Frames of one video, or photos of one person, look alike. A class backed by few of them lets a "
              "model memorise those people or videos instead of the expression, and the same person or video "
              "in two splits makes validation scores too optimistic.", ""]
    ref = result["dataset"]["reference_split"]
    for kind, info in groups.items():
        plural = info["plural"]
        lines += [f"### {plural.capitalize()}", "",
                  f"{_n(info['distinct'])} distinct {plural} over {_n(info['samples_with_id'])} samples.", ""]
        split_rows = [[s, _n(st["samples"]), _n(st["distinct"]), f"{st['samples_per_id_median']:g}",
                       _n(st["samples_per_id_max"]), f"{st['largest_id']} ({_p(st['largest_share'])})"]
                      for s, st in info["per_split"].items()]
        lines += _table(["split", "samples", plural, f"median per {kind}", f"most per {kind}",
                         f"largest {kind} (share)"], split_rows, right={1, 2, 3, 4})
        stats = info["per_split"].get(ref) or next(iter(info["per_split"].values()))
        which = ref if ref in info["per_split"] else next(iter(info["per_split"]))
        if stats["per_class"]:
            lines += [f"Per class in {which}:", ""]
            rows = [[r["class"], _n(r["samples"]), _n(r["distinct"]), r["largest_id"] or "-",
                     _p(r["largest_share"])] for r in stats["per_class"]]
            lines += _table(["class", "samples", f"distinct {plural}", f"largest {kind}", "its share of the class"],
                            rows, right={1, 2, 4})
        if info["overlaps"]:
            lines += [f"{plural.capitalize()} found in two splits (leakage):", ""]
            rows = [[o["split"], o["other_split"], _n(o["shared_ids"]), _n(o["samples_in_shared"]),
                     _p(o["share_of_split"]), ", ".join(o["examples"])] for o in info["overlaps"]]
            lines += _table(["split", "also in", f"shared {plural}", "samples affected", "share of split",
                             "examples"], rows, right={2, 3, 4})
        elif len(result["class_distribution"]["splits"]) > 1:
            lines += [f"No {kind} appears in two splits.", ""]
    if "groups" in files:
        lines += [f"![Distinct subjects/videos per class]({files['groups']})", ""]
    return lines


def _duplicates_section(result: dict[str, Any], files: dict[str, str]) -> list[str]:
    dup = result["duplicates"]
    ex = dup["exact"]
    ref = dup["reference_split"]
    lines = ["## Duplicates", "",
             "*Exact* duplicates have identical pixels (as delivered to the model). *Near* duplicates are the "
             "same photo re-encoded, slightly shifted or watermarked: their perceptual hashes differ in only a "
             "few bits. A copy of a training image in a validation or test split is a question the model has "
             "already seen the answer to.", ""]
    multi = len(result["class_distribution"]["splits"]) > 1
    rows = [["groups of identical images", _n(ex["groups"])],
            ["images in those groups", _n(ex["images_in_groups"])],
            ["extra copies (all but one image per group)", _n(ex["extra_copies"])]]
    if multi:
        rows += [["... of which within one split", _n(ex["extra_copies_within_splits"])],
                 ["groups spread over several splits", _n(ex["groups_across_splits"])]]
    rows.append(["groups whose labels disagree", _n(ex["label_conflict_groups"])])
    rows += [[f"{s} images identical to a {ref} image", _n(n)] for s, n in ex["copies_of_reference_in"].items()]
    near = dup.get("near")
    if near:
        rows.append([f"near-identical pairs (hash within {near['threshold_bits']} bits, not pixel-identical)",
                     _n(near["pairs"])])
        if multi:
            rows += [["... within one split", _n(near["pairs_within_split"])],
                     ["... across splits", _n(near["pairs_across_splits"])]]
        rows += [[f"... two images of one {kind}", _n(n)] for kind, n in near.get("pairs_same_id", {}).items()]
        rows.append(["... whose labels disagree", _n(near["label_conflict_pairs"])])
        rows += [[f"{s} images near-identical to a {ref} image", _n(n)]
                 for s, n in near["near_copies_of_reference_in"].items()]
    else:
        rows.append(["near duplicates", "not searched"])
    lines += _table(["", "count"], rows)
    listed = ex["listed"]
    if listed:
        # groups that cross splits or disagree on labels first: they matter most
        shown = sorted(listed, key=lambda g: (len(g["splits"]) == 1, not g["labels_differ"]))[:MD_ROWS]
        lines += [f"Identical groups (first {len(shown)} of {_n(ex['groups'])}; cross-split and label conflicts "
                  f"first; all are in `{files.get('duplicates_csv', DUPLICATES_CSV)}`):", ""]
        rows = [[g["size"], ", ".join(g["splits"]), "yes" if g["labels_differ"] else "",
                 "; ".join(f"{m['id']} ({m['split']}, {m['label']})" for m in g["members"][:4])
                 + (" ..." if g["size"] > 4 else "")] for g in shown]
        lines += _table(["size", "splits", "labels differ", "members (id, split, label)"], rows, right={0})
    if near and near["listed"]:
        shown = sorted(near["listed"], key=near_order)[:MD_ROWS]
        lines += [f"Near-identical pairs (first {len(shown)} of {_n(near['pairs'])}; cross-split and label "
                  "conflicts first):", ""]
        rows = [[p["distance"], f"{p['a']['id']} ({p['a']['split']}, {p['a']['label']})",
                 f"{p['b']['id']} ({p['b']['split']}, {p['b']['label']})", "yes" if p["labels_differ"] else ""]
                for p in shown]
        lines += _table(["bits apart", "image", "near-identical image", "labels differ"], rows, right={0})
    if "duplicate_examples" in files:
        lines += [f"![Examples of duplicates]({files['duplicate_examples']})", ""]
    return lines


def _images_section(result: dict[str, Any]) -> list[str]:
    im = result["images"]
    lines = ["## Image statistics", "",
             f"- Delivered to the model as {im['delivered_size']} with {im['delivered_channels']} channel(s)."]
    files = im.get("files")
    if files:
        if files["distinct_sizes"] == 1:
            lines.append(f"- Image files: all {next(iter(files['most_common_sizes']))} pixels.")
        elif files["distinct_sizes"] > 1:
            sizes = ", ".join(f"{k} ({_n(v)})" for k, v in list(files["most_common_sizes"].items())[:5])
            lines.append(f"- Image files: {_n(files['distinct_sizes'])} distinct sizes; most common {sizes}; short "
                         f"side {files['short_side_min']} to {files['short_side_max']} px (median "
                         f"{files['short_side_median']:g}).")
        lines.append("- Colour modes: " + ", ".join(f"{k} {_n(v)}" for k, v in files["modes"].items()) + ".")
        if files["small_count"]:
            lines.append(f"- {_n(files['small_count'])} files are smaller than 32 px on the short side.")
    if im["grey_stored_as_rgb"]:
        lines.append(f"- {_n(im['grey_stored_as_rgb'])} colour images are grey (three equal channels).")
    pct = im["brightness_percentiles"]
    if pct:
        lines.append(f"- Mean grey level {im['brightness_mean']:.0f} of 255 (1st-99th percentile of image means: "
                     f"{pct['1']:.0f}-{pct['99']:.0f}); median contrast (pixel std) {im['contrast_median_std']:.0f}.")
    lines.append(f"- Near-blank images: {_n(im['near_blank_count'])}; very dark: {_n(im['very_dark_count'])}; "
                 f"very bright: {_n(im['very_bright_count'])}.")
    lines.append("")
    if im["near_blank"]:
        rows = [[b["id"], b["split"], b["label"], f"{b['mean']:.0f}", f"{b['std']:.2f}"]
                for b in im["near_blank"][:MD_ROWS]]
        lines += [f"Near-blank images (first {len(rows)} of {_n(im['near_blank_count'])}):", ""]
        lines += _table(["id", "split", "label", "mean", "std"], rows, right={3, 4})
    return lines


def _regression_section(result: dict[str, Any], files: dict[str, str]) -> list[str]:
    reg = result["regression_targets"]
    if not reg:
        return []
    lines = ["## Valence and arousal", ""]
    rows = []
    for split, targets in reg.items():
        for name, t in targets.items():
            fmt = (lambda v: "-" if v is None else f"{v:.3f}")  # noqa: E731
            rows.append([split, name, _n(t["labelled"]), _n(t["unlabelled"]), fmt(t["mean"]), fmt(t["std"]),
                         fmt(t["min"]), fmt(t["max"])])
    lines += _table(["split", "target", "labelled", "unlabelled", "mean", "std", "min", "max"], rows,
                    right=set(range(2, 8)))
    if "valence_arousal" in files:
        lines += [f"![Valence/arousal distribution]({files['valence_arousal']})", ""]
    return lines


def _about(result: dict[str, Any]) -> list[str]:
    s = result["settings"]
    return ["## How these numbers were made", "",
            f"- Exact duplicates: identical pixel bytes after the loader's resize to "
            f"{result['images']['delivered_size']}.",
            f"- Near duplicates: 64-bit DCT perceptual hash (`imagehash.phash`); pairs at most "
            f"{s['near_threshold_bits']} bits apart, near-blank images left out, each group of identical images "
            "counted once." if s["near_duplicates"] else "- Near duplicates: not searched (`--no-near`).",
            f"- Near-blank: pixel standard deviation below {s['blank_std']:g} (0-255 scale).",
            f"- Flagged: class ratio from {s['imbalance_ratio_flagged'][0]:g}x (high from "
            f"{s['imbalance_ratio_flagged'][1]:g}x); JS divergence from {s['js_flagged'][0]:g} bits (high from "
            f"{s['js_flagged'][1]:g}); fewer than {s['few_groups']} subjects/videos per class, or one supplying "
            f"{_p(s['dominant_group_share'], 0)} or more.",
            f"- Machine-readable: `{REPORT_JSON}` (everything above, lists capped at {s['max_listed']:,}); "
            f"`{DUPLICATES_CSV}` (one row per duplicate pair).", ""]


# -------------------------------------------------------------------------------------------------- csv
def write_duplicates_csv(result: dict[str, Any], path: Path) -> Path:
    """One row per pair: exact pairs (each group's first member against every other) and near pairs."""
    def side(s: dict[str, Any]) -> list[Any]:
        return [s["index"], s["id"], s["split"], s["label"] or ""]

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["kind", "bits_apart", "labels_differ", "index_a", "id_a", "split_a", "label_a",
                         "index_b", "id_b", "split_b", "label_b"])
        for group in result["duplicates"]["exact"]["listed"]:
            first = group["members"][0]
            for other in group["members"][1:]:
                writer.writerow(["exact", 0, int(first["label"] != other["label"]), *side(first), *side(other)])
        near = result["duplicates"].get("near")
        for pair in (near or {}).get("listed", []):
            writer.writerow(["near", pair["distance"], int(pair["labels_differ"]), *side(pair["a"]),
                             *side(pair["b"])])
    return path
