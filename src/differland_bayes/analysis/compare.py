"""Compare runs by their expected log predictive density (arviz-stats ``compare``).

:func:`compare_runs` ranks runs by PSIS-LOO ELPD over the observations that entered
their likelihoods (:func:`~.loo.loo`, all streams together), with standard
errors of the ELPDs and of their differences and stacking weights, and adds each run's
log predictive density of the observations it did **not** fit (withheld period,
early-stopping and unseen sites), a direct out-of-sample score. ELPDs are comparable
only between runs evaluated on the same observations; :func:`compare_runs` checks that.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..io.atomic import atomic_path
from .diagnostics import in_fit_mask, streams_of
from .loo import ALL, arviz_warnings, loo, loo_datatree

__all__ = ["COMPARE_COLUMNS", "compare_runs", "out_of_fit_lpd", "write_table"]

log = logging.getLogger(__name__)

#: columns of :func:`compare_runs`, in order
COMPARE_COLUMNS: tuple[str, ...] = (
    "rank", "elpd", "se", "elpd_diff", "dse", "p", "weight", "n", "k_max", "n_k_bad",
    "lpd_out_of_fit", "n_out_of_fit",
)  # fmt: skip


def _log_mean_exp(ll: np.ndarray) -> np.ndarray:
    m = np.max(ll, axis=0)
    return m + np.log(np.mean(np.exp(ll - m), axis=0))


def out_of_fit_lpd(dt: xr.DataTree) -> tuple[float, int]:
    """Log predictive density of the observations a run did not fit (all streams).

    ``sum_i log mean_s p(y_i | theta_s)`` over observed entries outside the fit's
    likelihood (withheld period, early-stopping and unseen sites), in nat.

    Returns
    -------
    tuple
        ``(lpd, n)``; ``(nan, 0)`` without such observations.
    """
    total, n = 0.0, 0
    for s in streams_of(dt):
        obs = np.asarray(dt["observed_data"][s].values, float)
        keep = np.isfinite(obs) & ~in_fit_mask(dt, s)
        if not keep.any():
            continue
        da = dt["log_likelihood"][s]
        da = da.transpose("sample", *dt["observed_data"][s].dims) if "sample" in da.dims else (
            da.stack(sample=("chain", "draw")).transpose("sample", ...))  # fmt: skip
        ll = np.asarray(da.values, float)[:, keep]
        total += float(np.sum(_log_mean_exp(ll)))
        n += int(keep.sum())
    return (total, n) if n else (float("nan"), 0)


def _observation_keys(dt: xr.DataTree) -> set[tuple[str, str, str]]:
    ldt = loo_datatree(dt, combined=False)
    keys = set()
    for s, da in ldt["observed_data"].data_vars.items():
        dim = da.dims[0]
        sites = np.asarray(da[f"{dim}_site"].values).astype(str)
        times = np.asarray(da[f"{dim}_time"].values).astype(str)
        keys.update((str(s), a, b) for a, b in zip(sites, times, strict=True))
    return keys


def compare_runs(runs: Mapping[str, xr.DataTree]) -> pd.DataFrame:
    """Rank runs by PSIS-LOO ELPD (arviz-stats ``compare``, stacking weights).

    Parameters
    ----------
    runs : mapping of str to xarray.DataTree
        Run name -> its DataTree (:func:`~.datatree.to_datatree`); at least two.

    Returns
    -------
    pandas.DataFrame
        Index ``run`` (best first), columns :data:`COMPARE_COLUMNS`: ``elpd`` and ``se``
        (nat, all streams), ``elpd_diff`` and ``dse`` (difference to the best and its
        standard error), ``p`` (effective number of parameters), ``weight`` (stacking),
        ``n`` (observations), ``k_max`` / ``n_k_bad`` (Pareto k), ``lpd_out_of_fit`` /
        ``n_out_of_fit`` (:func:`out_of_fit_lpd`).

    Raises
    ------
    ValueError
        With fewer than two runs, or when the runs' fitted observations differ (ELPDs
        of different data are not comparable).
    """
    import arviz_stats as azs

    if len(runs) < 2:
        raise ValueError(f"runs: expected at least 2 runs to compare, found {len(runs)}")
    names = list(runs)
    keys = {name: _observation_keys(dt) for name, dt in runs.items()}
    ref = keys[names[0]]
    for name in names[1:]:
        if keys[name] != ref:
            raise ValueError(
                f"runs {names[0]!r} and {name!r} were fitted on different observations "
                f"({len(ref)} vs {len(keys[name])}, {len(ref ^ keys[name])} differ); "
                "ELPDs are comparable only on the same data"
            )
    elpds = {name: loo(dt, ALL) for name, dt in runs.items()}
    with arviz_warnings():
        table = azs.compare(elpds, round_to="none")
    table.index.name = "run"
    for name, res in elpds.items():
        k = np.asarray(res.pareto_k.values, float)
        table.loc[name, "n"] = int(res.n_data_points)
        table.loc[name, "k_max"] = float(np.nanmax(k))
        table.loc[name, "n_k_bad"] = int(np.sum(k > res.good_k))
        lpd, n_out = out_of_fit_lpd(runs[name])
        table.loc[name, "lpd_out_of_fit"] = lpd
        table.loc[name, "n_out_of_fit"] = n_out
    for col in ("n", "n_k_bad", "n_out_of_fit"):
        table[col] = table[col].astype(int)
    cols = [c for c in COMPARE_COLUMNS if c in table.columns]
    return table[cols + [c for c in table.columns if c not in cols]]


def write_table(table: pd.DataFrame, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a table as CSV atomically (index written when it is named)."""
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        table.to_csv(tmp, index=table.index.name is not None)
    log.info("wrote %s", path)
    return path
