"""Evaluation: classification/regression metrics, Markdown+JSON reports and PNG plots.

Pure NumPy / scikit-learn / matplotlib (headless Agg), no model code, so it can score predictions
from any source.
"""

from __future__ import annotations

from affectlens.evaluation.metrics import (
    classification_metrics,
    majority_baseline,
    quick_metrics,
    top_confusions,
)
from affectlens.evaluation.plots import (
    plot_class_distribution,
    plot_confusion_matrix,
    plot_roc,
    plot_training_curves,
)
from affectlens.evaluation.regression import ccc, regression_metrics
from affectlens.evaluation.report import format_metrics_line, write_evaluation_report

__all__ = [
    "ccc",
    "classification_metrics",
    "format_metrics_line",
    "majority_baseline",
    "plot_class_distribution",
    "plot_confusion_matrix",
    "plot_roc",
    "plot_training_curves",
    "quick_metrics",
    "regression_metrics",
    "top_confusions",
    "write_evaluation_report",
]
