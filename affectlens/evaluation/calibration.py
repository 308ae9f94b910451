"""Fit a model's temperature on validation data and record it in its card.

The fit runs on the model's raw probabilities (no temperature, no prior correction) of a split
the model was not trained on, normally the validation split that selected it; the test split is
then scored with the fitted temperature by a separate ``evaluate`` run. The temperature is fitted
by likelihood (Guo et al.) and adopted only when it also lowers the validation ECE; otherwise the
record keeps temperature 1 beside the fitted value. What is recorded says
where it came from: the temperature, the data and split, the number of faces and the expected
calibration error and log-likelihood before and after.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from affectlens.errors import AffectlensError
from affectlens.runtime.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
)


def fit_from_report(report_dir: str | Path, fitted_on: str) -> dict[str, Any]:
    """The calibration record of an uncalibrated evaluation report (its probabilities and labels)."""
    report_dir = Path(report_dir)
    probs = np.load(report_dir / "probabilities.npy").astype(np.float64)
    labels = np.load(report_dir / "labels.npy")
    if len(labels) < 100:
        raise AffectlensError(f"a temperature fitted on {len(labels)} faces would fit noise; use a validation split "
                              "of at least 100 labelled faces")
    fitted = fit_temperature(labels, probs)
    ece_before = expected_calibration_error(labels, probs)
    ece_fitted = expected_calibration_error(labels, apply_temperature(probs, fitted))
    # The fit minimises the log-likelihood; a model already close to calibrated can gain likelihood
    # and still lose ECE. Then it keeps its probabilities: a temperature is adopted only if it lowers
    # the validation ECE (the number users read as "how far to trust the percentage").
    temperature = fitted if ece_fitted < ece_before else 1.0
    return {
        "temperature": temperature,
        "fitted_temperature": fitted,
        "fitted_on": fitted_on,
        "samples": int(len(labels)),
        "ece_before": round(ece_before, 4),
        "ece_after": round(ece_fitted if temperature != 1.0 else ece_before, 4),
        "nll_before": round(negative_log_likelihood(labels, probs, 1.0), 4),
        "nll_after": round(negative_log_likelihood(labels, probs, temperature), 4),
    }
