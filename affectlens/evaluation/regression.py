"""Metrics for continuous affect (valence/arousal) regression.

CCC is the headline number in the affective-computing literature (AffectNet, AFEW-VA, Aff-Wild)
because, unlike Pearson r, it also penalises a biased or wrongly scaled prediction. Missing labels
(NaN targets, common when a dataset annotates only some dimensions) are ignored per dimension.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from affectlens.errors import AffectlensError


def _finite_pairs(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flatten to 1-D and drop pairs where either side is NaN/inf."""
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise AffectlensError(f"targets have {t.size} values but predictions have {p.size}")
    keep = np.isfinite(t) & np.isfinite(p)
    return t[keep], p[keep]


def ccc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Lin's concordance correlation coefficient with population (1/N) variances.

    ``2 cov / (var_t + var_p + (mean_t - mean_p)^2)``. NaN pairs are ignored. Returns NaN with fewer
    than 2 valid pairs, and 1.0 when both sides are the same constant (perfect, if degenerate,
    agreement).
    """
    t, p = _finite_pairs(y_true, y_pred)
    if t.size < 2:
        return float("nan")
    mt, mp = t.mean(), p.mean()
    cov = np.mean((t - mt) * (p - mp))
    denom = t.var() + p.var() + (mt - mp) ** 2
    if denom == 0:
        return 1.0
    return float(2 * cov / denom)


def _pearson(t: np.ndarray, p: np.ndarray) -> float:
    """Pearson r, NaN when either side is constant (correlation undefined)."""
    st, sp = t.std(), p.std()
    if t.size < 2 or st == 0 or sp == 0:
        return float("nan")
    return float(np.mean((t - t.mean()) * (p - p.mean())) / (st * sp))


def _json_float(x: float) -> float | None:
    """NaN is not valid JSON; report undefined values as None."""
    return None if not np.isfinite(x) else float(x)


def regression_metrics(
    true: np.ndarray, pred: np.ndarray, names: Sequence[str] = ("valence", "arousal")
) -> dict[str, Any]:
    """Per-dimension CCC, Pearson r, MSE, RMSE and MAE for (N, D) targets, plus their means over dimensions.

    Rows with a NaN target (or prediction) are ignored for that dimension only. Returns
    ``{"n", "dimensions": {name: {n, ccc, pearson_r, mse, rmse, mae}}, "mean_ccc", "mean_mse",
    "mean_pearson_r"}``; undefined values (e.g. a dimension with no labels) are None.
    """
    t = np.asarray(true, dtype=np.float64)
    p = np.asarray(pred, dtype=np.float64)
    if t.ndim == 1:
        t = t[:, None]
    if p.ndim == 1:
        p = p[:, None]
    if t.shape != p.shape or t.ndim != 2:
        raise AffectlensError(f"targets {t.shape} and predictions {p.shape} must both be (N, D)")
    if t.shape[1] != len(names):
        raise AffectlensError(f"got {t.shape[1]} target columns but {len(names)} names: {list(names)}")
    dims: dict[str, dict[str, Any]] = {}
    cccs = []
    for j, name in enumerate(names):
        tj, pj = _finite_pairs(t[:, j], p[:, j])
        c = ccc(tj, pj)
        if np.isfinite(c):
            cccs.append(c)
        err = pj - tj
        dims[str(name)] = {
            "n": int(tj.size),
            "ccc": _json_float(c),
            "pearson_r": _json_float(_pearson(tj, pj)),
            "mse": _json_float(float(np.mean(err**2))) if tj.size else None,
            "rmse": _json_float(float(np.sqrt(np.mean(err**2)))) if tj.size else None,
            "mae": _json_float(float(np.mean(np.abs(err)))) if tj.size else None,
        }
    return {
        "n": int(t.shape[0]),
        "dimensions": dims,
        "mean_ccc": float(np.mean(cccs)) if cccs else None,
        "mean_mse": _mean_of(dims, "mse"),
        "mean_pearson_r": _mean_of(dims, "pearson_r"),
    }


def _mean_of(dims: dict[str, dict[str, Any]], key: str) -> float | None:
    """Mean of one metric over the dimensions where it is defined (None where none is)."""
    values = [d[key] for d in dims.values() if d[key] is not None]
    return float(np.mean(values)) if values else None
