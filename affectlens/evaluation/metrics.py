"""Classification metrics for emotion models, returned as JSON-ready dicts.

Every number that ends up in a report comes from here, so the conventions are fixed in one place:

* Per-class rows and the confusion matrix always cover all ``K`` classes (``labels=range(K)``), so a
  class missing from a test split still shows up (with support 0) instead of silently vanishing.
* Macro averages (macro-F1) are taken over the classes that occur in ``y_true`` or in the
  predictions, like scikit-learn's default: a class that is neither present nor predicted has no
  defined F1 and would otherwise drag the average down for no reason. Balanced accuracy averages
  recall over the classes present in ``y_true``.
* ROC AUC is one-vs-rest; a class absent from ``y_true`` (or present in every sample) has no AUC and
  is listed under ``skipped`` rather than raising.
* Every model number has a majority-class baseline beside it, because on imbalanced emotion data
  (FER2013 is ~25 % "happy") accuracy alone is easy to misread.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

from affectlens.errors import AffectlensError
from affectlens.runtime.calibration import expected_calibration_error, reliability_bins

_PROB_SUM_TOL = 1e-3


def _as_labels(y: np.ndarray, num_classes: int, what: str = "y_true") -> np.ndarray:
    """Validate integer class indices in ``[0, num_classes)``; bad labels are a user error."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise AffectlensError(f"{what} must be a 1-D array of class indices, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise AffectlensError(f"{what} must hold integer class indices")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise AffectlensError(
            f"{what} holds class index {int(arr.min() if arr.min() < 0 else arr.max())}, "
            f"outside 0..{num_classes - 1}"
        )
    return arr


def _validate(y_true: np.ndarray, probs: np.ndarray, class_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes/values once so the metric code below can assume clean inputs."""
    k = len(class_names)
    if k < 2:
        raise AffectlensError(f"need at least 2 classes to evaluate, got {k}")
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != k:
        raise AffectlensError(f"probs must have shape (N, {k}) to match {k} class names, got {p.shape}")
    y = _as_labels(y_true, k)
    if y.shape[0] != p.shape[0]:
        raise AffectlensError(f"y_true has {y.shape[0]} samples but probs has {p.shape[0]} rows")
    if y.shape[0] == 0:
        raise AffectlensError("no samples to evaluate (y_true is empty)")
    if not np.all(np.isfinite(p)):
        raise AffectlensError("probs contains NaN or infinite values")
    if np.any(p < 0):
        raise AffectlensError("probs contains negative values; pass softmax probabilities, not logits")
    return y, p


def _row_normalize(cm: np.ndarray) -> np.ndarray:
    """Row-normalise a confusion matrix; rows without samples become zeros instead of NaN."""
    cm = np.asarray(cm, dtype=np.float64)
    sums = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, sums, out=np.zeros_like(cm), where=sums > 0)


def _macro_over_seen(values: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, k: int) -> float:
    """Average per-class values over classes that occur in y_true or y_pred (sklearn's default)."""
    seen = (np.bincount(y_true, minlength=k) + np.bincount(y_pred, minlength=k)) > 0
    return float(values[seen].mean()) if seen.any() else 0.0


def _binary_auc(is_pos: np.ndarray, scores: np.ndarray) -> float | None:
    """AUC of one class vs the rest, or None when only one side is present (AUC undefined)."""
    if is_pos.all() or not is_pos.any():
        return None
    return float(roc_auc_score(is_pos.astype(np.int64), scores))


def _roc_auc(y: np.ndarray, p: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Binary AUC of class 1, or one-vs-rest AUC per class plus their macro mean."""
    k = len(class_names)
    if k == 2:
        auc = _binary_auc(y == 1, p[:, 1])
        skipped = [] if auc is not None else [class_names[c] for c in range(2) if not np.any(y == c)]
        return {
            "kind": "binary",
            "positive_class": class_names[1],
            "average": auc,
            "per_class": {class_names[1]: auc} if auc is not None else {},
            "skipped": skipped,
        }
    per_class: dict[str, float] = {}
    skipped = []
    for c, name in enumerate(class_names):
        auc = _binary_auc(y == c, p[:, c])
        if auc is None:
            skipped.append(name)
        else:
            per_class[name] = auc
    average = float(np.mean(list(per_class.values()))) if per_class else None
    return {"kind": "ovr_macro", "average": average, "per_class": per_class, "skipped": skipped}


def _log_loss(y: np.ndarray, p: np.ndarray) -> float | None:
    """Mean negative log-likelihood; None if rows are not probability distributions."""
    if not np.allclose(p.sum(axis=1), 1.0, atol=_PROB_SUM_TOL):
        return None
    picked = np.clip(p[np.arange(y.shape[0]), y], 1e-15, 1.0)
    return float(-np.mean(np.log(picked)))


def majority_baseline(y_true: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Scores of always predicting the most frequent true class (ties: lowest index).

    This is the number a model must beat to have learnt anything beyond the class prior.
    """
    k = len(class_names)
    y = _as_labels(y_true, k)
    if y.size == 0:
        raise AffectlensError("no samples to evaluate (y_true is empty)")
    counts = np.bincount(y, minlength=k)
    majority = int(np.argmax(counts))
    pred = np.full_like(y, majority)
    _, _, f1, _ = precision_recall_fscore_support(
        y, pred, labels=list(range(k)), average=None, zero_division=0
    )
    present = counts > 0
    return {
        "class": class_names[majority],
        "accuracy": float(counts[majority] / y.size),
        "macro_f1": _macro_over_seen(np.asarray(f1), y, pred, k),
        "balanced_accuracy": float(1.0 / present.sum()),
    }


def top_confusions(
    cm: np.ndarray | list[list[int]], class_names: list[str], k: int = 3
) -> list[dict[str, Any]]:
    """The ``k`` largest off-diagonal cells: which true class is most often predicted as which.

    ``rate`` is the share of that true class's samples that went to the wrong class, which is what a
    reader means by "sad is mostly confused with neutral".
    """
    m = np.asarray(cm, dtype=np.float64)
    norm = _row_normalize(m)
    cells = [
        (int(m[i, j]), float(norm[i, j]), i, j)
        for i in range(m.shape[0])
        for j in range(m.shape[1])
        if i != j and m[i, j] > 0
    ]
    cells.sort(key=lambda c: (-c[0], -c[1], c[2], c[3]))
    return [
        {"true": class_names[i], "predicted": class_names[j], "count": n, "rate": r}
        for n, r, i, j in cells[:k]
    ]


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Full evaluation of (N, K) class probabilities against integer labels, as a JSON-ready dict.

    Keys: ``n, num_classes, class_names, accuracy, macro_f1, weighted_f1, balanced_accuracy,
    per_class`` (list of ``{class, precision, recall, f1, support}``), ``confusion_matrix`` (rows =
    true class), ``confusion_matrix_normalized`` (row-normalised, empty rows are zeros),
    ``roc_auc`` (``{kind, average, per_class, skipped[, positive_class]}``), ``majority_baseline``,
    ``absent_classes`` (names with no sample in y_true), ``top_confusions``, ``log_loss``
    (None when rows of probs do not sum to 1), ``ece`` (expected calibration error, 15 bins) and
    ``reliability`` (its bins: range, count, mean confidence, accuracy).
    """
    class_names = [str(c) for c in class_names]
    y, p = _validate(y_true, probs, class_names)
    k = len(class_names)
    labels = list(range(k))
    pred = p.argmax(axis=1)

    precision, recall, f1, support = precision_recall_fscore_support(
        y, pred, labels=labels, average=None, zero_division=0
    )
    cm = confusion_matrix(y, pred, labels=labels)
    present = support > 0
    n = int(y.shape[0])

    return {
        "n": n,
        "num_classes": k,
        "class_names": class_names,
        "accuracy": float(np.mean(pred == y)),
        "macro_f1": _macro_over_seen(np.asarray(f1), y, pred, k),
        "weighted_f1": float(np.sum(f1 * support) / n),
        "balanced_accuracy": float(np.mean(recall[present])),
        "per_class": [
            {
                "class": name,
                "precision": float(precision[c]),
                "recall": float(recall[c]),
                "f1": float(f1[c]),
                "support": int(support[c]),
            }
            for c, name in enumerate(class_names)
        ],
        "confusion_matrix": cm.astype(int).tolist(),
        "confusion_matrix_normalized": _row_normalize(cm).tolist(),
        "roc_auc": _roc_auc(y, p, class_names),
        "majority_baseline": majority_baseline(y, class_names),
        "absent_classes": [name for c, name in enumerate(class_names) if not present[c]],
        "top_confusions": top_confusions(cm, class_names),
        "log_loss": _log_loss(y, p),
        "ece": expected_calibration_error(y, p),
        "reliability": reliability_bins(y, p),
    }


def quick_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class recall from hard predictions, cheap enough for every epoch.

    Pure NumPy (one bincount); same conventions as :func:`classification_metrics`, so the epoch log
    and the final report agree. Recall of a class absent from y_true is reported as 0.0.
    """
    y = _as_labels(y_true, num_classes)
    pred = _as_labels(y_pred, num_classes, "y_pred")
    if y.shape != pred.shape:
        raise AffectlensError(f"y_true has {y.shape[0]} samples but y_pred has {pred.shape[0]}")
    if y.size == 0:
        return {"accuracy": 0.0, "macro_f1": 0.0, "per_class_recall": [0.0] * num_classes}
    cm = np.bincount(y * num_classes + pred, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {
        "accuracy": float(tp.sum() / y.size),
        "macro_f1": _macro_over_seen(f1, y, pred, num_classes),
        "per_class_recall": [float(r) for r in recall],
    }
