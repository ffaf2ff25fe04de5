"""Scores of predictions against observations, ignoring missing values.

Every function takes array-likes of the same shape (any dims) and pools the entries
where the observation and the prediction are both finite. ``r2`` is the coefficient of
determination ``1 - SSE / SST`` around the mean of the pooled observations (so a
biased prediction is penalised; it equals the Nash–Sutcliffe efficiency of the pooled
series); :func:`nse` averages the Nash–Sutcliffe efficiency over sites instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["bias", "coverage", "nse", "r2", "rmse", "scores"]


def _pair(obs: Any, pred: Any) -> tuple[np.ndarray, np.ndarray]:
    o = np.asarray(obs, dtype=float)
    p = np.asarray(pred, dtype=float)
    if o.shape != p.shape:
        raise ValueError(f"pred: expected the shape of obs {o.shape}, found {p.shape}")
    ok = np.isfinite(o) & np.isfinite(p)
    return o[ok], p[ok]


def r2(obs: Any, pred: Any) -> float:
    """Coefficient of determination ``1 - sum((p - o)^2) / sum((o - mean(o))^2)``.

    Parameters
    ----------
    obs, pred : array_like
        Observations and predictions (same shape and units).

    Returns
    -------
    float
        1 for a perfect prediction, 0 for predicting the observed mean, negative when
        worse; NaN with fewer than two pairs or constant observations.
    """
    o, p = _pair(obs, pred)
    if o.size < 2:
        return float("nan")
    sst = float(np.sum((o - o.mean()) ** 2))
    if sst == 0.0:
        return float("nan")
    return 1.0 - float(np.sum((p - o) ** 2)) / sst


def rmse(obs: Any, pred: Any) -> float:
    """Root-mean-square error, in the units of the observations (NaN if no pairs)."""
    o, p = _pair(obs, pred)
    return float(np.sqrt(np.mean((p - o) ** 2))) if o.size else float("nan")


def bias(obs: Any, pred: Any) -> float:
    """Mean error ``mean(pred - obs)`` in the units of the observations (NaN if no pairs)."""
    o, p = _pair(obs, pred)
    return float(np.mean(p - o)) if o.size else float("nan")


def nse(obs: Any, pred: Any, *, axis: int = -1) -> float:
    """Mean over series of the Nash–Sutcliffe efficiency of each series.

    Parameters
    ----------
    obs, pred : array_like
        Arrays of the same shape; the series run along ``axis`` (time), the other axes
        index series (sites).
    axis : int
        The time axis.

    Returns
    -------
    float
        The mean NSE of the series with at least two observations and non-constant
        values (NaN if there are none).
    """
    o = np.moveaxis(np.asarray(obs, dtype=float), axis, -1)
    p = np.moveaxis(np.asarray(pred, dtype=float), axis, -1)
    if o.shape != p.shape:
        raise ValueError(f"pred: expected the shape of obs {o.shape}, found {p.shape}")
    o2 = o.reshape(-1, o.shape[-1])
    p2 = p.reshape(-1, p.shape[-1])
    values = [r2(a, b) for a, b in zip(o2, p2, strict=True)]
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def coverage(obs: Any, lower: Any, upper: Any) -> float:
    """Fraction of observations inside ``[lower, upper]`` (NaN if none is finite).

    Parameters
    ----------
    obs, lower, upper : array_like
        Observations and the bounds of a predictive interval (same shape and units).
    """
    o = np.asarray(obs, dtype=float)
    lo = np.asarray(lower, dtype=float)
    hi = np.asarray(upper, dtype=float)
    if lo.shape != o.shape or hi.shape != o.shape:
        raise ValueError(
            f"lower/upper: expected the shape of obs {o.shape}, found {lo.shape} / {hi.shape}"
        )
    ok = np.isfinite(o) & np.isfinite(lo) & np.isfinite(hi)
    if not ok.any():
        return float("nan")
    inside = (o[ok] >= lo[ok]) & (o[ok] <= hi[ok])
    return float(np.mean(inside))


def scores(
    obs: Any, pred: Any, lower: Any | None = None, upper: Any | None = None
) -> dict[str, float]:
    """All scores of one prediction: ``n``, ``r2``, ``rmse``, ``bias`` and ``coverage``.

    ``coverage`` (of the interval ``[lower, upper]``) is NaN when no interval is given.
    Only entries where the observation and the prediction are finite count.
    """
    o, _ = _pair(obs, pred)
    out = {
        "n": float(o.size),
        "r2": r2(obs, pred),
        "rmse": rmse(obs, pred),
        "bias": bias(obs, pred),
        "coverage": float("nan"),
    }
    if lower is not None and upper is not None:
        p = np.asarray(pred, dtype=float)
        o_all = np.where(np.isfinite(p), np.asarray(obs, dtype=float), np.nan)
        out["coverage"] = coverage(o_all, lower, upper)
    return out
