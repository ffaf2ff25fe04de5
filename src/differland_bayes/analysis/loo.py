"""PSIS-LOO of a run's DataTree (arviz-stats ``loo``, ``loo_pit``).

The observations that entered the fit's likelihood
(:func:`~.diagnostics.in_fit_mask`) are stacked into one observation dimension per
stream, entries without an observation dropped, and the SVI ``sample`` dimension is
recast as ``(chain=1, draw)`` (:func:`loo_datatree`), the layout arviz-stats needs. The
draws are the variational posterior's, used as if they were posterior draws (plain
PSIS-LOO with ``r_eff = 1``, no correction for the approximation; large Pareto k flag
where it fails). :func:`psis_weights` keeps Pareto smoothing from failing on
observations whose log likelihood does not vary over the draws.

When the DataTree has ``sample_stats/lp`` and ``sample_stats/log_q`` (the model's joint
log density and the guide's log density at every draw, :mod:`.draws`), :func:`loo`
with ``corrected=True`` and the ``*_vi`` columns of :func:`loo_table` give the
VI-corrected PSIS-LOO of arviz-stats ``loo_approximate_posterior``, which reweights the
guide's draws by ``p / q``.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .diagnostics import draw_axis_first, in_fit_mask, streams_of

__all__ = [
    "ALL",
    "arviz_warnings",
    "has_vi_densities",
    "loo",
    "loo_datatree",
    "loo_pit_values",
    "loo_table",
    "psis_weights",
]

log = logging.getLogger(__name__)

#: name of the all-streams variable of :func:`loo_datatree`
ALL = "all"


@contextlib.contextmanager
def arviz_warnings() -> Iterator[None]:
    """Log (once each) instead of raising the warnings of arviz-stats inside the block."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for message in dict.fromkeys(str(w.message).splitlines()[0] for w in caught):
        log.info("arviz-stats: %s", message)


def loo_datatree(
    dt: xr.DataTree, streams: Sequence[str] | None = None, *, combined: bool = True
) -> xr.DataTree:
    """Put the fit's observations in ArviZ's layout for PSIS-LOO.

    Keeps the observations of each stream that entered the likelihood
    (:func:`in_fit_mask`), stacked into ``obs_<stream>`` (coordinates ``site`` and
    ``time`` kept), with the draws as ``(chain=1, draw)``; a tree whose draws are
    already ``(chain, draw)`` (:func:`~.nuts_datatree.nuts_to_datatree`) keeps its
    chains. With ``combined`` the ``log_likelihood`` group also holds ``all``: every
    stream's pointwise values concatenated along ``obs_all``. ``sample_stats/lp`` and
    ``log_q`` (nat), where ``dt`` has them, are carried over the same way.

    Raises
    ------
    ValueError
        If no observation entered the likelihood.
    """
    ll_vars, pp_vars, obs_vars = {}, {}, {}
    n_chain = int(dt["log_likelihood"].sizes.get("chain", 1))  # MCMC (chain, draw) kept
    for s in streams or streams_of(dt):
        keep = in_fit_mask(dt, s)
        if not keep.any():
            continue
        ii, tt = np.nonzero(keep)
        obs = dt["observed_data"][s]
        dim = f"obs_{s}"
        coords = {dim: np.arange(ii.size), f"{dim}_site": (dim, obs["site"].values[ii]),
                  f"{dim}_time": (dim, obs["time"].values[tt])}  # fmt: skip
        obs_vars[s] = xr.DataArray(np.asarray(obs.values, float)[ii, tt], dims=dim, coords=coords)
        for target, group in ((ll_vars, "log_likelihood"), (pp_vars, "posterior_predictive")):
            da = draw_axis_first(dt[group][s]).transpose("sample", *obs.dims)
            vals = np.asarray(da.values, float)[:, ii, tt].reshape(n_chain, -1, ii.size)
            target[s] = xr.DataArray(vals, dims=("chain", "draw", dim), coords=coords)
    if not ll_vars:
        raise ValueError(
            "log_likelihood: expected observations that entered the fit's likelihood "
            "(constant_data/<stream>_in_fit), found none"
        )
    if combined:
        ll_vars[ALL] = xr.DataArray(
            np.concatenate([v.values for v in ll_vars.values()], axis=-1),
            dims=("chain", "draw", f"obs_{ALL}"),
        )
    n = next(iter(ll_vars.values())).sizes["draw"]
    post = {}
    if "posterior" in dt.children and "sigma" in dt["posterior"].data_vars:
        sig = draw_axis_first(dt["posterior"]["sigma"])
        sig_v = sig.values.reshape(n_chain, n, *sig.shape[1:])
        post["sigma"] = xr.DataArray(sig_v, dims=("chain", "draw", *sig.dims[1:]))
    else:
        idx = np.arange(n_chain * n, dtype=float).reshape(n_chain, n)
        post["draw_index"] = xr.DataArray(idx, dims=("chain", "draw"))
    sample = {"chain": np.arange(n_chain), "draw": np.arange(n)}
    groups = {
        "posterior": xr.Dataset(post, coords=sample),
        "log_likelihood": xr.Dataset(ll_vars, coords=sample),
        "posterior_predictive": xr.Dataset(pp_vars, coords=sample),
        "observed_data": xr.Dataset(obs_vars),
    }
    if has_vi_densities(dt):
        stats = {}
        for name in _VI_VARS:
            da = draw_axis_first(dt["sample_stats"][name])
            stats[name] = xr.DataArray(np.asarray(da.values, float).reshape(n_chain, n),
                                       dims=("chain", "draw"))  # fmt: skip
        groups["sample_stats"] = xr.Dataset(stats, coords=sample)
    return xr.DataTree.from_dict(groups)


#: ``sample_stats`` variables of the VI correction: model and guide log densities (nat)
_VI_VARS: tuple[str, str] = ("lp", "log_q")


def has_vi_densities(dt: xr.DataTree) -> bool:
    """Whether ``dt`` has ``sample_stats/lp`` and ``log_q`` (VI-corrected LOO possible)."""
    return "sample_stats" in dt.children and all(
        v in dt["sample_stats"].data_vars for v in _VI_VARS
    )


def _loo_vi(ldt: xr.DataTree, var_name: str) -> Any:
    """``loo_approximate_posterior`` of one variable of a :func:`loo_datatree` tree.

    Observations whose corrected log ratios are the same over the whole tail make its
    Pareto smoothing fail; then the same estimate is computed with the weights of
    :func:`psis_weights` (``log_ratio_offset = lp - log_q``; such observations get their
    raw importance weights and ``k = 0``).
    """
    import arviz_stats as azs

    stats = ldt["sample_stats"]
    try:
        return azs.loo_approximate_posterior(
            ldt, stats["lp"], stats["log_q"], pointwise=True, var_name=var_name
        )
    except ValueError as err:
        if "tail values are the same" not in str(err):
            raise
    sub = xr.DataTree.from_dict({
        "posterior": ldt["posterior"].to_dataset(),
        "log_likelihood": ldt["log_likelihood"].to_dataset()[[var_name]],
    })  # fmt: skip
    lw, k = psis_weights(sub, stats["lp"] - stats["log_q"])
    return azs.loo(ldt, var_name=var_name, pointwise=True, reff=1.0,
                   log_weights=lw[var_name], pareto_k=k[var_name])  # fmt: skip


def _tail_size(n: int, r_eff: float = 1.0) -> int:
    """Draws in the PSIS tail: ``ceil(min(0.2 S, 3 sqrt(S / r_eff)))``."""
    return int(np.ceil(min(0.2 * n, 3.0 * np.sqrt(n / r_eff))))


def psis_weights(
    ldt: xr.DataTree, log_ratio_offset: xr.DataArray | None = None
) -> tuple[xr.Dataset, xr.Dataset]:
    """PSIS log weights and Pareto k of every ``log_likelihood`` variable of ``ldt``.

    Observations whose log likelihood is the same over the whole tail of the draws
    (e.g. a dormant month whose GPP every draw predicts as 0, or float32 ties) make
    Pareto smoothing fail ("All tail values are the same"); they are uninformative about
    the parameters, so they get their raw importance weights and ``k = 0``.

    Parameters
    ----------
    ldt : xarray.DataTree
        From :func:`loo_datatree` (``log_likelihood`` over ``(chain, draw, obs)``).
    log_ratio_offset : xarray.DataArray, optional
        ``(chain, draw)`` term added to every importance log ratio ``-log_lik`` (nat);
        ``log p - log q`` gives the VI correction of ``loo_approximate_posterior``.

    Returns
    -------
    tuple of xarray.Dataset
        ``(log_weights, pareto_k)``, variables as in ``log_likelihood``.
    """
    lws, ks = {}, {}
    for name, ll in ldt["log_likelihood"].data_vars.items():
        ll = ll.astype(float)
        if log_ratio_offset is not None:  # -ll + offset are the log ratios
            off = log_ratio_offset.astype(float)
            ll = ll - (off - off.max())
        obs_dim = next(d for d in ll.dims if d not in ("chain", "draw"))
        flat = -ll.stack(sample=("chain", "draw")).transpose(obs_dim, "sample").values
        m = _tail_size(flat.shape[1])
        top = -np.sort(-flat, axis=1)[:, :m]
        flat_tail = (top[:, 0] - top[:, -1]) < np.finfo(float).tiny if m >= 5 else np.zeros(
            flat.shape[0], bool)  # fmt: skip
        raw = -ll - (-ll).max(dim=("chain", "draw"))
        raw = raw - np.log(np.exp(raw).sum(dim=("chain", "draw")))  # normalised
        k = xr.zeros_like(ll.isel(chain=0, draw=0, drop=True))
        lw = raw.copy()
        good = np.flatnonzero(~flat_tail)
        if good.size:
            sub = ll.isel({obs_dim: good})
            lw_g, k_g = sub.azstats.psislw(r_eff=1.0, dim=["chain", "draw"])
            lw[{obs_dim: good}] = lw_g.transpose(*ll.dims).values
            k[{obs_dim: good}] = k_g.values
        lws[name], ks[name] = lw, k.astype(float)
    return xr.Dataset(lws), xr.Dataset(ks)


def loo(dt: xr.DataTree, var_name: str = ALL, *, corrected: bool = False) -> Any:
    """PSIS-LOO of one stream (or ``"all"``) of a run's DataTree (arviz-stats ``loo``).

    Parameters
    ----------
    dt : xarray.DataTree
        A run's DataTree (:func:`~.datatree.to_datatree`) or its :func:`loo_datatree`.
    var_name : str
        A stream, or ``"all"`` for every stream together.
    corrected : bool
        Correct for the variational approximation (arviz-stats
        ``loo_approximate_posterior`` with ``sample_stats/lp`` and ``log_q``).

    Returns
    -------
    arviz_stats.utils.ELPDData
        ``elpd`` (nat), ``se``, ``p``, pointwise ``elpd_i`` and ``pareto_k`` (plain:
        weights from :func:`psis_weights`; the draws are independent, ``r_eff = 1``).

    Raises
    ------
    KeyError
        If ``var_name`` is not a stream of the tree (or ``"all"``).
    ValueError
        If ``corrected`` and the tree has no ``sample_stats/lp`` and ``log_q``.
    """
    import arviz_stats as azs

    ll_dims = dt["log_likelihood"].dims
    ldt = dt if "chain" in ll_dims and "site" not in ll_dims else loo_datatree(dt)
    if var_name not in ldt["log_likelihood"].data_vars:
        raise KeyError(
            f"var_name: expected one of {list(ldt['log_likelihood'].data_vars)}, found {var_name!r}"
        )
    if corrected:
        if not has_vi_densities(ldt):
            raise ValueError(
                "corrected: expected sample_stats/lp and sample_stats/log_q in the DataTree "
                "(an SVI run with a non-delta guide), found none"
            )
        with arviz_warnings():
            return _loo_vi(ldt, var_name)
    with arviz_warnings():
        lw, k = psis_weights(ldt)
        return azs.loo(ldt, var_name=var_name, pointwise=True, reff=1.0,
                       log_weights=lw[var_name], pareto_k=k[var_name])  # fmt: skip


def loo_table(dt: xr.DataTree) -> pd.DataFrame:
    """PSIS-LOO per stream and for all streams together, plain and VI-corrected.

    Returns
    -------
    pandas.DataFrame
        Columns ``stream, n, elpd, se, p, elpd_per_obs, k_threshold, k_max, n_k_bad``
        (``elpd`` in nat; ``n_k_bad`` observations above the Pareto-k threshold
        ``min(1 - 1/log10(S), 0.7)``, where the estimate is unreliable), then
        ``elpd_vi, se_vi, p_vi, k_max_vi, n_k_bad_vi``: the same of the VI-corrected
        PSIS-LOO (``loo_approximate_posterior``), NaN where the tree has no
        ``sample_stats/lp`` and ``log_q`` or the correction fails.
    """
    import arviz_stats as azs

    ldt = loo_datatree(dt)
    rows = []
    with arviz_warnings():
        lw, ks = psis_weights(ldt)
        results = {
            str(v): azs.loo(ldt, var_name=str(v), pointwise=True, reff=1.0,
                            log_weights=lw[v], pareto_k=ks[v])
            for v in ldt["log_likelihood"].data_vars
        }  # fmt: skip
        corrected = {v: _try_loo_vi(ldt, v) for v in results}
    for var, res in results.items():
        k = np.asarray(res.pareto_k.values, float)
        row = {
            "stream": str(var), "n": int(res.n_data_points), "elpd": float(res.elpd),
            "se": float(res.se), "p": float(res.p),
            "elpd_per_obs": float(res.elpd) / max(int(res.n_data_points), 1),
            "k_threshold": float(res.good_k), "k_max": float(np.nanmax(k)),
            "n_k_bad": int(np.sum(k > res.good_k)),
        }  # fmt: skip
        vi = corrected[var]
        k_vi = np.asarray(vi.pareto_k.values, float) if vi is not None else np.full(1, np.nan)
        row.update({
            "elpd_vi": float(vi.elpd) if vi is not None else np.nan,
            "se_vi": float(vi.se) if vi is not None else np.nan,
            "p_vi": float(vi.p) if vi is not None else np.nan,
            "k_max_vi": float(np.nanmax(k_vi)) if vi is not None else np.nan,
            "n_k_bad_vi": int(np.sum(k_vi > vi.good_k)) if vi is not None else np.nan,
        })  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def _try_loo_vi(ldt: xr.DataTree, var_name: str) -> Any:
    """:func:`_loo_vi`, or None without the densities or when it fails (logged)."""
    if not has_vi_densities(ldt):
        return None
    try:
        return _loo_vi(ldt, var_name)
    except (ValueError, FloatingPointError) as err:
        log.warning("VI-corrected PSIS-LOO of %s failed: %s", var_name, err)
        return None


def loo_pit_values(dt: xr.DataTree) -> dict[str, np.ndarray]:
    """LOO-PIT (arviz-stats ``loo_pit``) of the fit's observations, per stream."""
    import arviz_stats as azs

    ldt = loo_datatree(dt, combined=False)
    with arviz_warnings():
        lw, k = psis_weights(ldt)
        values = azs.loo_pit(ldt, log_weights=lw, pareto_k=k)
    return {str(k): np.asarray(v.values, float) for k, v in values.data_vars.items()}
