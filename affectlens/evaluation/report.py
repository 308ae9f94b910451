"""Evaluation reports: ``metrics.json`` for machines, ``report.md`` + PNGs for people.

The Markdown report is written for someone who did not train the model: every model number sits
beside the majority-class baseline, and a short plain-language paragraph (derived from the
confusion matrix, not hand-written) says what the numbers mean and where the model goes wrong.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from affectlens.evaluation.metrics import top_confusions
from affectlens.evaluation.plots import plot_confusion_matrix, plot_reliability, plot_roc
from affectlens.utils.markdown import markdown_table

_MISSING = "—"


def _to_jsonable(obj: Any) -> Any:
    """json.dump fallback for NumPy scalars/arrays, paths and anything else (as str)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def _num(x: Any, digits: int = 3) -> str:
    """Format a metric; None/NaN (undefined) becomes a dash rather than 'nan'."""
    if x is None:
        return _MISSING
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    return _MISSING if not np.isfinite(v) else f"{v:.{digits}f}"


def _plain(x: Any) -> Any:
    """Containers as JSON (NumPy values included); the table helper escapes the text."""
    return json.dumps(x, default=_to_jsonable) if isinstance(x, dict | list | tuple) else x


def _table(header: list[str], rows: list[list[Any]], align: list[str] | None = None) -> list[str]:
    """A GitHub-flavoured Markdown table as lines; ``align`` entries ending in ':' are right-aligned."""
    right = {i for i, a in enumerate(align or []) if a.endswith(":")}
    return markdown_table(header, [[_plain(c) for c in row] for row in rows], right)


def _auc_average(metrics: dict[str, Any]) -> float | None:
    auc = metrics.get("roc_auc")
    return auc.get("average") if isinstance(auc, dict) else None


def _reading(metrics: dict[str, Any]) -> str:
    """One plain-language paragraph: baseline comparison, best/worst class, main confusions."""
    names = metrics["class_names"] if "class_names" in metrics else [r["class"] for r in metrics["per_class"]]
    base = metrics.get("majority_baseline", {})
    parts = [
        f"On {metrics['n']} samples the model is right {100 * metrics['accuracy']:.1f}% of the time "
        f"(macro-F1 {metrics['macro_f1']:.3f})."
    ]
    if base:
        gain = metrics["macro_f1"] - base["macro_f1"]
        parts.append(
            f"Always answering the most frequent class, '{base['class']}', would be right "
            f"{100 * base['accuracy']:.1f}% of the time with macro-F1 {base['macro_f1']:.3f}, "
            + (
                f"so the model beats that baseline by {gain:.3f} macro-F1."
                if gain > 0.02
                else "so the model has learnt little or nothing beyond the class frequencies."
            )
        )
    present = [r for r in metrics["per_class"] if r["support"] > 0]
    if len(present) >= 2:
        best = max(present, key=lambda r: r["recall"])
        worst = min(present, key=lambda r: r["recall"])
        parts.append(
            f"It recognises '{best['class']}' best (recall {best['recall']:.2f}) and "
            f"'{worst['class']}' worst (recall {worst['recall']:.2f})."
        )
    confusions = top_confusions(metrics["confusion_matrix"], names, k=3)
    if confusions:
        support = {r["class"]: r["support"] for r in metrics["per_class"]}
        described = [
            f"true '{c['true']}' predicted as '{c['predicted']}' "
            f"({c['count']} of {support[c['true']]}, {100 * c['rate']:.0f}%)"
            for c in confusions
        ]
        parts.append("The most frequent mistakes are " + "; ".join(described) + ".")
    else:
        parts.append("There are no misclassifications.")
    absent = metrics.get("absent_classes") or []
    if absent:
        parts.append(
            "There are no samples of "
            + ", ".join(f"'{a}'" for a in absent)
            + ": recall and ROC AUC are undefined there and left out of the averages."
        )
    auc = _auc_average(metrics)
    if auc is not None:
        parts.append(
            f"A ROC AUC of {auc:.2f} means that, for a given emotion, a sample showing it gets a higher "
            f"score for it than a sample not showing it {100 * auc:.0f}% of the time (0.5 is chance)."
        )
    return " ".join(parts)


def _markdown(
    metrics: dict[str, Any], title: str, extra: dict[str, Any] | None, files: dict[str, str]
) -> str:
    """Assemble report.md from a metrics dict produced by ``classification_metrics``."""
    names = metrics["class_names"] if "class_names" in metrics else [r["class"] for r in metrics["per_class"]]
    base = metrics.get("majority_baseline", {})
    auc = metrics.get("roc_auc") or {}
    lines = [f"# {title}", ""]

    if extra:
        lines += ["## Setup", ""]
        lines += _table(["Field", "Value"], [[k, v] for k, v in extra.items()])
        lines.append("")

    base_label = f"Majority baseline (always '{base['class']}')" if base else "Majority baseline"
    base_bal = base.get("balanced_accuracy") if base else None
    auc_name = "ROC AUC" + (" (one-vs-rest macro)" if auc.get("kind") == "ovr_macro" else "")
    if auc.get("kind") == "binary":
        auc_name += f" (positive: {auc.get('positive_class')})"
    headline = [
        ["Accuracy", _num(metrics["accuracy"]), _num(base.get("accuracy"))],
        ["Macro-F1", _num(metrics["macro_f1"]), _num(base.get("macro_f1"))],
        ["Weighted F1", _num(metrics.get("weighted_f1")), _MISSING],
        ["Balanced accuracy", _num(metrics.get("balanced_accuracy")), _num(base_bal)],
        [auc_name, _num(auc.get("average")), "0.500" if base else _MISSING],
    ]
    if metrics.get("log_loss") is not None:
        headline.append(["Log loss (lower is better)", _num(metrics["log_loss"]), _MISSING])
    if metrics.get("ece") is not None:
        headline.append(["Expected calibration error, 15 bins (lower is better)", _num(metrics["ece"]), _MISSING])
    lines += [f"## Headline ({metrics['n']} samples, {len(names)} classes)", ""]
    lines += _table(["Metric", "Model", base_label], headline, ["---", "---:", "---:"])
    lines += ["", "## Per-class results", ""]
    per_auc = auc.get("per_class", {})
    rows = [
        [
            r["class"],
            _num(r["precision"]),
            _num(r["recall"]) if r["support"] > 0 else _MISSING,  # recall needs true samples
            _num(r["f1"]),
            r["support"],
            _num(per_auc.get(r["class"])),
        ]
        for r in metrics["per_class"]
    ]
    lines += _table(
        ["Class", "Precision", "Recall", "F1", "Support", "ROC AUC"],
        rows,
        ["---", "---:", "---:", "---:", "---:", "---:"],
    )
    lines += [
        "",
        "Precision: of the faces predicted as this class, the share that really were. "
        "Recall: of the faces of this class, the share the model found. F1: their harmonic mean. "
        "Support: number of samples of this class.",
    ]
    if auc.get("skipped"):
        lines += [
            "",
            "ROC AUC not defined (class absent or the only class) for: " + ", ".join(auc["skipped"]) + ".",
        ]

    lines += [
        "",
        "## Confusion matrix (counts)",
        "",
        "Rows are the true class, columns the predicted class.",
        "",
    ]
    cm = metrics["confusion_matrix"]
    lines += _table(
        ["true \\ predicted", *names, "total"],
        [[names[i], *row, sum(row)] for i, row in enumerate(cm)],
        ["---"] + ["---:"] * (len(names) + 1),
    )

    lines += ["", "## Plots", ""]
    for label, fname in files.items():
        lines.append(f"- [{label}]({fname})")
    lines += ["", f"![Normalised confusion matrix]({files['Normalised confusion matrix']})", ""]
    lines += ["## Reading the results", "", _reading(metrics), ""]
    return "\n".join(lines)


def write_evaluation_report(
    metrics: dict[str, Any],
    out_dir: str | Path,
    title: str,
    y_true: np.ndarray,
    probs: np.ndarray,
    class_names: list[str],
    extra: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write metrics.json, report.md and the three PNGs into ``out_dir``; return their paths.

    ``extra`` (model name, checkpoint, dataset, split...) goes into the report's setup table and
    under ``info`` in metrics.json, so either file alone says what was evaluated. Returned keys:
    ``metrics_json, report_md, confusion_matrix_png, confusion_matrix_normalized_png, roc_png``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cm = metrics["confusion_matrix"]
    paths = {
        "confusion_matrix_png": plot_confusion_matrix(
            cm,
            class_names,
            out / "confusion_matrix.png",
            normalized=False,
            title=f"{title}: confusion matrix",
        ),
        "confusion_matrix_normalized_png": plot_confusion_matrix(
            cm,
            class_names,
            out / "confusion_matrix_normalized.png",
            normalized=True,
            title=f"{title}: confusion matrix (row-normalised)",
        ),
        "roc_png": plot_roc(y_true, probs, class_names, out / "roc.png", title=f"{title}: ROC"),
    }
    if "reliability" in metrics:
        paths["reliability_png"] = plot_reliability(metrics["reliability"], out / "reliability.png", metrics["ece"],
                                                    title=f"{title}: reliability")
    metrics_path = out / "metrics.json"
    payload = {"title": title, "info": extra or {}, **metrics}
    metrics_path.write_text(json.dumps(payload, indent=2, default=_to_jsonable) + "\n", encoding="utf-8")
    files = {
        "Confusion matrix (counts)": "confusion_matrix.png",
        "Normalised confusion matrix": "confusion_matrix_normalized.png",
        "ROC curves": "roc.png",
        **({"Reliability diagram (calibration)": "reliability.png"} if "reliability" in metrics else {}),
        "All metrics (JSON)": "metrics.json",
    }
    report_path = out / "report.md"
    report_path.write_text(_markdown(metrics, title, extra, files), encoding="utf-8")
    return {"metrics_json": metrics_path, "report_md": report_path, **paths}


def format_metrics_line(metrics: dict[str, Any]) -> str:
    """One console line, e.g. ``n=500 acc=0.712 (majority 0.251) macro-F1=0.654 (0.057) bal-acc=...``.

    Tolerates partial dicts (e.g. from ``quick_metrics``): missing keys are simply left out.
    """
    base = metrics.get("majority_baseline") or {}
    parts = []
    if "n" in metrics:
        parts.append(f"n={metrics['n']}")
    if "accuracy" in metrics:
        s = f"acc={_num(metrics['accuracy'])}"
        if "accuracy" in base:
            s += f" (majority {_num(base['accuracy'])})"
        parts.append(s)
    if "macro_f1" in metrics:
        s = f"macro-F1={_num(metrics['macro_f1'])}"
        if "macro_f1" in base:
            s += f" (majority {_num(base['macro_f1'])})"
        parts.append(s)
    if "balanced_accuracy" in metrics:
        parts.append(f"bal-acc={_num(metrics['balanced_accuracy'])}")
    auc = _auc_average(metrics)
    if auc is not None:
        parts.append(f"AUC={_num(auc)}")
    if metrics.get("log_loss") is not None:
        parts.append(f"log-loss={_num(metrics['log_loss'])}")
    if metrics.get("ece") is not None:
        parts.append(f"ECE={_num(metrics['ece'])}")
    va = metrics.get("valence_arousal")
    if va:
        dims = va["dimensions"]
        parts.append(f"frames={va['n']} CCC valence={_num(dims['valence']['ccc'])} "
                     f"arousal={_num(dims['arousal']['ccc'])} mean={_num(va['mean_ccc'])} "
                     f"MSE={_num(va['mean_mse'])} r={_num(va['mean_pearson_r'])}")
    return " ".join(parts)
