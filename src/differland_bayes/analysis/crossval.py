"""Cross-validation of a fit over time and over sites, scored next to climatologies.

Two questions are asked of a fitted model (the CARDAMOM-FluxVal protocol):

* **withheld months** — fitted on the assimilation months of every site, how well does
  the posterior predictive reproduce each site's withheld months? Baseline: the site's
  own mean seasonal cycle from its assimilation months
  (:func:`~.baselines.site_seasonal_cycle`).
* **left-out sites** — fitted on the other sites (k folds over sites), how well does the
  model predict a site from its environment alone? Baseline: the mean seasonal cycle of
  the site's vegetation class over the training sites, southern-hemisphere months shifted
  by six (:func:`~.baselines.class_climatology`).

:func:`site_folds` splits sites into folds (stratified by class); :func:`score_predictions`
scores a prediction (``differland predict`` layout) and a baseline on the same entries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .metrics import scores

__all__ = ["SCORE_COLUMNS", "score_predictions", "site_folds"]

#: columns of :func:`score_predictions`
SCORE_COLUMNS = ("evaluation", "stream", "predictor", "n", "r2", "rmse", "bias", "coverage")


def site_folds(
    sites: Sequence[str], k: int, *, seed: int = 0, strata: Sequence[str] | None = None
) -> list[np.ndarray]:
    """Split sites into ``k`` folds of near-equal size, stratified by ``strata``.

    Sites of each stratum (e.g. vegetation class) are shuffled and dealt round-robin,
    continuing where the previous stratum stopped, so every fold gets a share of every
    class and the fold sizes differ by at most one.

    Parameters
    ----------
    sites : sequence of str
        Site ids.
    k : int
        Number of folds, 2 <= k <= number of sites.
    seed : int
        Seed of the shuffle.
    strata : sequence of str, optional
        Stratum of each site (default: one stratum).

    Returns
    -------
    list of numpy.ndarray
        For each fold, the sorted indices of its (left-out) sites.

    Raises
    ------
    ValueError
        If ``k`` is out of range or ``strata`` has the wrong length.
    """
    n = len(sites)
    if not 2 <= k <= n:
        raise ValueError(f"k: expected 2 <= k <= {n} (the number of sites), found {k}")
    groups = np.asarray(strata if strata is not None else [""] * n).astype(str)
    if groups.shape != (n,):
        raise ValueError(f"strata: expected {n} entries (one per site), found {groups.shape}")
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    nxt = 0
    for g in sorted(set(groups)):
        members = rng.permutation(np.flatnonzero(groups == g))
        for i in members:
            folds[nxt % k].append(int(i))
            nxt += 1
    return [np.sort(np.asarray(f, dtype=int)) for f in folds]


def _observed(ds: xr.Dataset, stream: str) -> np.ndarray:
    v = np.asarray(ds[stream].transpose("site", "time").values, dtype=float)
    m = f"{stream}_mask"
    if m in ds:
        v = np.where(np.asarray(ds[m].transpose("site", "time").values), v, np.nan)
    return v


def score_predictions(
    evaluation: str,
    ds: xr.Dataset,
    where: Any,
    predictions: Mapping[str, xr.Dataset],
    baselines: Mapping[str, Mapping[str, xr.DataArray]],
    streams: Sequence[str],
    *,
    interval: tuple[float, float] = (0.05, 0.95),
) -> pd.DataFrame:
    """Score model predictions and baselines on the same observations.

    Parameters
    ----------
    evaluation : str
        Name of the evaluation (e.g. ``"withheld months"``), the first column.
    ds : xarray.Dataset
        The observations (canonical layout, ``<stream>`` and ``<stream>_mask``).
    where : array_like of bool, shape (site, time)
        The entries to score (e.g. ``split_time == 2``).
    predictions : mapping of str to xarray.Dataset
        Name -> prediction in the ``differland predict`` layout (``<stream>`` posterior
        predictive mean and ``<stream>_quantile`` with a ``quantile`` coordinate), on
        the sites and times of ``ds``.
    baselines : mapping of str to mapping of str to xarray.DataArray
        Name -> stream -> point prediction (site, time).
    streams : sequence of str
        The streams to score.
    interval : (float, float)
        Quantiles bounding the predictive interval whose coverage is reported (model
        predictions only).

    Returns
    -------
    pandas.DataFrame
        One row per stream and predictor, columns :data:`SCORE_COLUMNS`; every predictor
        of a stream is scored on the entries where all of them are finite.
    """
    w = np.asarray(where, dtype=bool)
    rows = []
    for s in streams:
        obs = np.where(w, _observed(ds, s), np.nan)
        points: dict[str, np.ndarray] = {}
        bands: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, pred in predictions.items():
            points[name] = np.asarray(pred[s].transpose("site", "time").values, dtype=float)
            q = pred[f"{s}_quantile"]
            bands[name] = tuple(
                np.asarray(q.sel(quantile=p, method="nearest").transpose("site", "time"))
                for p in interval
            )  # type: ignore[assignment]
        for name, by_stream in baselines.items():
            if s in by_stream:
                points[name] = np.asarray(by_stream[s].transpose("site", "time").values, float)
        common = np.isfinite(obs)
        for v in points.values():
            common &= np.isfinite(v)
        o = np.where(common, obs, np.nan)
        for name, v in points.items():
            lo, hi = bands.get(name, (None, None))
            sc = scores(o, v, lo, hi)
            rows.append({"evaluation": evaluation, "stream": s, "predictor": name, **sc})
    df = pd.DataFrame(rows, columns=list(SCORE_COLUMNS))
    df["n"] = df["n"].astype(int)
    return df
