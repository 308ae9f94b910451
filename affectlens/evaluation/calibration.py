"""Fit a model's calibration on validation data and record it in its card: a temperature, then a
top-label confidence map where it helps.

The fit runs on the model's raw probabilities (no temperature, no prior correction) of a split
the model was not trained on, normally the validation split that selected it; the test split is
then scored with the fitted temperature by a separate ``evaluate`` run. The temperature is fitted
by likelihood (Guo et al.) and adopted only when it also lowers the validation ECE; otherwise the
record keeps temperature 1 beside the fitted value. What is recorded says
where it came from: the temperature, the data and split, the number of faces and the expected
calibration error and log-likelihood before and after.

A temperature cannot fix a model that is over-confident in the middle and under-confident at the
top; a top-label confidence map (a regression of "was the answer right" on the winning probability,
:mod:`affectlens.runtime.confidence_map`) can. Fitted and scored on the same faces a flexible map
always looks better than it is, so a map is adopted only when it lowers the ECE, without raising the
log-loss, under 5-fold cross-validation within the validation split (fitted on four folds, scored on
the fifth); the record keeps every candidate's cross-validated figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from affectlens.errors import AffectlensError, unknown_name_error
from affectlens.runtime.calibration import (
    apply_calibration,
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
)
from affectlens.runtime.confidence_map import ConfidenceMap

#: a map fitted on fewer faces follows their noise; below this only a temperature is fitted
MIN_FACES_FOR_MAP = 1000
#: folds of the cross-validation that decides whether a confidence map is adopted
MAP_FOLDS = 5
#: the confidence map methods, tried in this order (:func:`fit_confidence_map`)
MAP_METHODS = ("logistic", "isotonic")
#: grid on which a logistic map is stored (a smooth curve: 1/200 apart, linear in between)
LOGISTIC_KNOTS = 201


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
    record = {
        "temperature": temperature,
        "fitted_temperature": fitted,
        "fitted_on": fitted_on,
        "samples": int(len(labels)),
        "ece_before": round(ece_before, 4),
        "ece_after": round(ece_fitted if temperature != 1.0 else ece_before, 4),
        "nll_before": round(negative_log_likelihood(labels, probs, 1.0), 4),
        "nll_after": round(negative_log_likelihood(labels, probs, temperature), 4),
    }
    return record | confidence_map_record(labels, apply_temperature(probs, temperature))


def fit_confidence_map(labels: np.ndarray, probs: np.ndarray, method: str = "logistic") -> ConfidenceMap:
    """A top-label map fitted on whether each answer was right, given its top probability.

    ``logistic``: Platt scaling of the top probability's log-odds (two numbers, a smooth map, stored
    as knots on a fine grid); ``isotonic``: isotonic regression (any monotone shape, a step at each
    change of the fitted accuracy).
    """
    probs = np.asarray(probs, np.float64)
    top = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == np.asarray(labels)).astype(np.int64)
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(top, correct)
        knots_x, knots_y = fitted.X_thresholds_, fitted.y_thresholds_
        if len(knots_x) < 2:  # every face at one confidence: a flat map through that point
            knots_x, knots_y = np.array([0.0, 1.0]), np.repeat(knots_y[:1], 2)
    elif method == "logistic":
        from sklearn.linear_model import LogisticRegression

        if correct.min() == correct.max():
            raise AffectlensError("a logistic confidence map needs both right and wrong answers to fit")
        fitted = LogisticRegression(C=1e6).fit(_log_odds(top)[:, None], correct)  # C: next to no penalty
        knots_x = np.linspace(0.0, 1.0, LOGISTIC_KNOTS)
        knots_y = np.maximum.accumulate(fitted.predict_proba(_log_odds(knots_x)[:, None])[:, 1])
    else:
        raise unknown_name_error("confidence map method", method, MAP_METHODS)
    return ConfidenceMap(tuple(float(v) for v in np.round(knots_x, 6)), tuple(float(v) for v in np.round(knots_y, 6)),
                         method)


def _log_odds(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1.0 - 1e-6)
    return np.log(p / (1.0 - p))


def cross_validated_map(labels: np.ndarray, probs: np.ndarray, method: str, folds: int = MAP_FOLDS,
                        seed: int = 0) -> dict[str, float]:
    """ECE and log-likelihood of ``probs`` after a map fitted on the other folds, every face scored once."""
    labels, probs = np.asarray(labels), np.asarray(probs, np.float64)
    fold = np.random.default_rng(seed).permutation(len(labels)) % folds
    mapped = np.empty_like(probs)
    for k in range(folds):
        held = fold == k
        mapped[held] = fit_confidence_map(labels[~held], probs[~held], method)(probs[held])
    return {"cv_ece": round(expected_calibration_error(labels, mapped), 4),
            "cv_nll": round(negative_log_likelihood(labels, mapped, 1.0), 4)}


def confidence_map_record(labels: np.ndarray, scaled: np.ndarray) -> dict[str, Any]:
    """The map's part of the record for temperature-scaled validation probabilities.

    Each method is cross-validated; the adopted map is the one with the lowest cross-validated ECE
    among those that lower the ECE without raising the log-loss (a map that buys ECE by making the
    probabilities a worse forecast is not calibration). The record keeps every candidate's scores.
    """
    if len(labels) < MIN_FACES_FOR_MAP:
        return {"confidence_map_note": f"not fitted: {len(labels)} faces, a map needs {MIN_FACES_FOR_MAP}"}
    base = {"ece": round(expected_calibration_error(labels, scaled), 4),
            "nll": round(negative_log_likelihood(labels, scaled, 1.0), 4)}
    candidates = {method: cross_validated_map(labels, scaled, method) for method in MAP_METHODS}
    record: dict[str, Any] = {"temperature_only": base, "confidence_map_candidates": candidates}
    better = [m for m, score in candidates.items() if score["cv_ece"] < base["ece"] and score["cv_nll"] <= base["nll"]]
    if better:
        method = min(better, key=lambda m: candidates[m]["cv_ece"])
        confidence_map = fit_confidence_map(labels, scaled, method)
        record["confidence_map"] = confidence_map.to_record()
        record["ece_after"] = round(expected_calibration_error(labels, confidence_map(scaled)), 4)
        record["nll_after"] = round(negative_log_likelihood(labels, confidence_map(scaled), 1.0), 4)
    return record


def calibrate_with_record(probs: np.ndarray, record: dict[str, Any]) -> np.ndarray:
    """``probs`` as raw probabilities, calibrated as a card holding ``record`` answers."""
    confidence_map = record.get("confidence_map")
    return apply_calibration(probs, float(record.get("temperature", 1.0)),
                             ConfidenceMap.from_record(confidence_map) if confidence_map else None)
