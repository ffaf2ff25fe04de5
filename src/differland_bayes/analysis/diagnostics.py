"""Predictive diagnostics of a run's DataTree (:func:`~.datatree.to_datatree`).

* :func:`predictive_scores` / :func:`site_scores`: R², RMSE, bias, NSE
  (:mod:`.metrics`), coverage of the central 50 % and 90 % predictive intervals, the
  Kolmogorov–Smirnov distance of the PIT values from uniform and the mean log
  predictive density, per stream, site group (``fitted``, ``heldout`` for early
  stopping, ``unseen`` sites the run was not fitted on) and period (``assimilated``:
  ``split_time == 1``, ``withheld``: ``split_time == 2``, and ``held-out months``: the
  last assimilated steps of a fitted site that a ``data.holdout = 'months'`` run kept
  out of its likelihood for early stopping), or per site.
* :func:`pit_values`: probability integral transform ``P(y_rep <= y)`` of every
  observation under its posterior predictive draws.

PSIS-LOO is in :mod:`.loo`. The helpers here that read a DataTree (:func:`streams_of`,
:func:`site_groups`, :func:`split_labels`, :func:`in_fit_mask`) accept the sample
dimension ``sample`` (SVI) or ``(chain, draw)``.

The point prediction is the posterior predictive mean; intervals are equal-tailed
quantiles of the predictive draws (with observation noise). Scores ignore entries
without an observation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .metrics import coverage, nse, scores

__all__ = [
    "HELDOUT_MONTHS",
    "INTERVALS",
    "PERIODS",
    "SITE_GROUPS",
    "SPLITS",
    "draw_axis_first",
    "in_fit_mask",
    "pit",
    "pit_values",
    "predictive_scores",
    "site_groups",
    "site_scores",
    "split_labels",
    "streams_of",
]

log = logging.getLogger(__name__)

#: ``split_time`` value -> period label
SPLITS: dict[int, str] = {1: "assimilated", 2: "withheld"}
#: period label of the assimilated steps a run held out for early stopping
HELDOUT_MONTHS = "held-out months"
#: period labels of the score tables, in table order
PERIODS: tuple[str, ...] = (*SPLITS.values(), HELDOUT_MONTHS)
#: site groups, in table order
SITE_GROUPS: tuple[str, ...] = ("fitted", "heldout", "unseen")
#: central predictive interval probabilities scored as coverage
INTERVALS: tuple[float, ...] = (0.5, 0.9)


# --------------------------------------------------------------------------- arrays


def draw_axis_first(da: xr.DataArray) -> xr.DataArray:
    """Draws on one leading axis ``sample`` (from ``sample`` or ``(chain, draw)``)."""
    if "sample" in da.dims:
        return da.transpose("sample", ...)
    if "chain" in da.dims and "draw" in da.dims:
        return da.stack(sample=("chain", "draw")).transpose("sample", ...)
    raise ValueError(
        f"{da.name}: expected a sample dimension 'sample' or ('chain', 'draw'), found {da.dims}"
    )


def _stream(dt: xr.DataTree, stream: str) -> tuple[np.ndarray, np.ndarray]:
    """``(obs (site, time), draws (S, site, time))`` of one stream."""
    for group in ("observed_data", "posterior_predictive"):
        if group not in dt.children or stream not in dt[group].data_vars:
            raise KeyError(f"{group}: expected a variable {stream!r}, found none")
    obs = dt["observed_data"][stream]
    draws = draw_axis_first(dt["posterior_predictive"][stream]).transpose("sample", *obs.dims)
    return np.asarray(obs.values, float), np.asarray(draws.values, float)


def streams_of(dt: xr.DataTree) -> list[str]:
    """Streams present in both ``observed_data`` and ``posterior_predictive``."""
    pp = set(dt["posterior_predictive"].data_vars)
    return [str(s) for s in dt["observed_data"].data_vars if s in pp]


def site_groups(dt: xr.DataTree) -> np.ndarray:
    """Per site ``"fitted"``, ``"heldout"`` or ``"unseen"`` (all fitted without coords)."""
    obs = dt["observed_data"]
    n = obs.sizes["site"]
    fitted = np.asarray(obs["fitted"].values, bool) if "fitted" in obs.coords else np.ones(n, bool)
    held = np.asarray(obs["heldout"].values, bool) if "heldout" in obs.coords else np.zeros(n, bool)
    return np.where(~fitted, "unseen", np.where(held, "heldout", "fitted"))


def split_labels(dt: xr.DataTree, stream: str | None = None) -> np.ndarray:
    """Per ``(site, time)`` the period label of :data:`SPLITS` (``"unused"`` otherwise).

    Without a ``split_time`` coordinate every entry is ``"assimilated"``. With a
    ``stream`` whose ``constant_data/<stream>_in_fit`` is present, the observed
    assimilated entries of a fitted site that come after its last entry in the fit
    (the steps ``data.holdout = 'months'`` keeps for early stopping) are labelled
    :data:`HELDOUT_MONTHS`; the spin-up steps at the start keep their label.
    """
    obs = dt["observed_data"]
    shape = (obs.sizes["site"], obs.sizes["time"])
    if "split_time" not in obs.coords:
        out = np.full(shape, SPLITS[1], dtype=object)
    else:
        split = np.asarray(obs["split_time"].transpose("site", "time").values)
        out = np.full(shape, "unused", dtype=object)
        for value, label in SPLITS.items():
            out[split == value] = label
    name = f"{stream}_in_fit"
    if stream is None or name not in dt.get("constant_data", xr.Dataset()).data_vars:
        return out
    in_fit = np.asarray(dt["constant_data"][name].transpose("site", "time").values, bool)
    observed = np.isfinite(np.asarray(obs[stream].transpose("site", "time").values, float))
    steps = np.arange(shape[1])
    last = np.where(in_fit, steps, -1).max(axis=1)  # -1: nothing of the site in the fit
    after = (steps[None, :] > last[:, None]) & (last[:, None] >= 0)
    held = after & observed & ~in_fit & (out == SPLITS[1])
    held &= (site_groups(dt) == "fitted")[:, None]
    out[held] = HELDOUT_MONTHS
    return out


def in_fit_mask(dt: xr.DataTree, stream: str) -> np.ndarray:
    """``(site, time)``: observations that entered the fit's likelihood.

    From ``constant_data/<stream>_in_fit``; without it, observed entries of fitted,
    not held-out sites in the assimilated period.
    """
    obs = np.asarray(dt["observed_data"][stream].values, float)
    name = f"{stream}_in_fit"
    if "constant_data" in dt.children and name in dt["constant_data"].data_vars:
        return np.asarray(dt["constant_data"][name].values, bool) & np.isfinite(obs)
    keep = (site_groups(dt) == "fitted")[:, None] & (split_labels(dt) == SPLITS[1])
    return keep & np.isfinite(obs)


# --------------------------------------------------------------------------- PIT, scores


def pit(obs: Any, draws: Any) -> np.ndarray:
    """Probability integral transform of observations under predictive draws.

    Parameters
    ----------
    obs : array_like
        Observations, any shape; NaN where none.
    draws : array_like
        Predictive draws, the draw axis first, then the shape of ``obs`` (same units).

    Returns
    -------
    numpy.ndarray
        ``(#{y_rep < y} + #{y_rep == y} / 2) / S`` per observation, in ``[0, 1]``
        (uniform for calibrated continuous predictions); NaN where ``obs`` is NaN.
    """
    o = np.asarray(obs, float)
    d = np.asarray(draws, float)
    if d.shape[1:] != o.shape:
        raise ValueError(f"draws: expected shape (S, {o.shape}), found {d.shape}")
    below = np.mean(d < o, axis=0) + 0.5 * np.mean(d == o, axis=0)
    return np.where(np.isfinite(o), below, np.nan)


def pit_values(dt: xr.DataTree, stream: str) -> xr.DataArray:
    """PIT of every observation of a stream, ``(site, time)`` (NaN where not observed)."""
    obs, draws = _stream(dt, stream)
    like = dt["observed_data"][stream]
    return xr.DataArray(pit(obs, draws), coords=like.coords, dims=like.dims, name=f"{stream}_pit")


def _ks_uniform(u: np.ndarray) -> float:
    """Kolmogorov–Smirnov distance between the finite values of ``u`` and U(0, 1)."""
    u = np.sort(u[np.isfinite(u)])
    n = u.size
    if n == 0:
        return float("nan")
    i = np.arange(1, n + 1)
    return float(max(np.max(i / n - u), np.max(u - (i - 1) / n)))


def _log_mean_exp(ll: np.ndarray) -> np.ndarray:
    m = np.max(ll, axis=0)
    return m + np.log(np.mean(np.exp(ll - m), axis=0))


def _score_block(obs: np.ndarray, draws: np.ndarray, ll: np.ndarray | None) -> dict[str, float]:
    """Scores of ``obs (site, time)`` (NaN where excluded) against ``draws (S, site, time)``."""
    mean = draws.mean(axis=0)
    out = scores(obs, mean)
    out["nse"] = nse(obs, mean, axis=-1)
    for p in INTERVALS:
        lo, hi = np.quantile(draws, [(1 - p) / 2, (1 + p) / 2], axis=0)
        out[f"coverage_{round(100 * p)}"] = coverage(obs, lo, hi)
    del out["coverage"]
    out["pit_ks"] = _ks_uniform(pit(obs, draws))
    lpd = np.nan
    if ll is not None:
        ok = np.isfinite(obs) & np.all(np.isfinite(ll), axis=0)
        if ok.any():
            lpd = float(np.mean(_log_mean_exp(ll[:, ok])))
    out["lpd"] = lpd
    return out


def _log_lik(dt: xr.DataTree, stream: str, like: xr.DataArray) -> np.ndarray | None:
    if "log_likelihood" not in dt.children or stream not in dt["log_likelihood"].data_vars:
        return None
    da = draw_axis_first(dt["log_likelihood"][stream]).transpose("sample", *like.dims)
    return np.asarray(da.values, float)


def predictive_scores(dt: xr.DataTree, streams: Sequence[str] | None = None) -> pd.DataFrame:
    """Scores per stream, site group and period, with ``all`` rows pooling them.

    Parameters
    ----------
    dt : xarray.DataTree
        With ``observed_data`` and ``posterior_predictive`` (and ``log_likelihood`` for
        ``lpd``); optional coordinates ``split_time``, ``fitted``, ``heldout``.
    streams : sequence of str, optional
        Default every stream.

    Returns
    -------
    pandas.DataFrame
        Columns ``stream, sites, period, n, r2, rmse, bias, nse, coverage_50,
        coverage_90, pit_ks, lpd`` (``rmse``/``bias`` in the stream's units, ``lpd``
        mean log predictive density per observation in nat); combinations without
        observations are left out.
    """
    rows = []
    groups = site_groups(dt)
    for s in streams or streams_of(dt):
        obs, draws = _stream(dt, s)
        ll = _log_lik(dt, s, dt["observed_data"][s])
        labels = split_labels(dt, s)
        for g in (*SITE_GROUPS, "all"):
            gm = np.ones(len(groups), bool) if g == "all" else groups == g
            for period in (*PERIODS, "all"):
                pm = np.ones(labels.shape, bool) if period == "all" else labels == period
                sel = gm[:, None] & pm & np.isfinite(obs)
                if not sel.any():
                    continue
                o = np.where(sel, obs, np.nan)
                rows.append({"stream": s, "sites": g, "period": period,
                             **_score_block(o, draws, ll)})  # fmt: skip
    return pd.DataFrame(rows)


def site_scores(dt: xr.DataTree, streams: Sequence[str] | None = None) -> pd.DataFrame:
    """Scores per stream, site and period (``all`` pooling the periods).

    Returns
    -------
    pandas.DataFrame
        Columns ``stream, site, sites, period`` then those of :func:`predictive_scores`
        (``nse`` is the site's own Nash–Sutcliffe efficiency).
    """
    rows = []
    groups = site_groups(dt)
    sites = np.asarray(dt["observed_data"]["site"].values).astype(str)
    for s in streams or streams_of(dt):
        obs, draws = _stream(dt, s)
        ll = _log_lik(dt, s, dt["observed_data"][s])
        labels = split_labels(dt, s)
        for i, site in enumerate(sites):
            for period in (*PERIODS, "all"):
                pm = np.ones(labels.shape[1], bool) if period == "all" else labels[i] == period
                sel = pm & np.isfinite(obs[i])
                if not sel.any():
                    continue
                o = np.where(sel, obs[i], np.nan)[None]
                ll_i = None if ll is None else ll[:, i : i + 1]
                block = _score_block(o, draws[:, i : i + 1], ll_i)
                rows.append({"stream": s, "site": site, "sites": groups[i], "period": period,
                             **block})  # fmt: skip
    return pd.DataFrame(rows)
