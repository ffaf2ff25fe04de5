"""A NUTS posterior as an ArviZ-style :class:`xarray.DataTree` (``(chain, draw)`` dims).

:func:`nuts_to_datatree` converts a :class:`~differland_bayes.bayes.mcmc.NUTSFit` on a
:class:`~differland_bayes.bayes.data.FitData` into the group / variable layout of
:func:`~.datatree.to_datatree` (``docs/analysis.md``) where it applies, with ArviZ's MCMC
sample dimensions ``(chain, draw)`` instead of ``sample``, so that arviz-stats
(``summary``, ``ess``, ``rhat``, ``loo``) and :func:`~.loo.loo` take it as it is.

Every draw runs the NumPyro program once (:func:`~.draws._trace_draws`, the same code as
the SVI tree): ``z``, ``z_loc`` and the site parameters come from its trace, the
posterior predictive is drawn from the observation distribution of every ``obs_<stream>``
site (noise included) and the pointwise log likelihood is that distribution's log
density at the observation (NaN where masked). Point-mode network weights are those of
:attr:`NUTSFit.net` (:func:`~differland_bayes.bayes.mcmc.condition_on_network`).
"""

from __future__ import annotations

import types
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .._version import __version__
from ..bayes.config import ModelConfig
from ..bayes.data import FitData, StreamData
from ..bayes.mcmc import NUTSFit
from ..bayes.model import NET_NAME, ParameterLayout
from ..bayes.predict import _model_for, posterior_draws
from .datatree import _long, _noise_attrs, _ns, _safe_name, _units
from .draws import _fill_unc, _trace_draws

__all__ = ["NUTS_GROUPS", "nuts_to_datatree"]

#: groups of :func:`nuts_to_datatree`, in order
NUTS_GROUPS: tuple[str, ...] = (
    "posterior",
    "sample_stats",
    "posterior_predictive",
    "observed_data",
    "log_likelihood",
    "constant_data",
)


def _chains(x: np.ndarray, num_chains: int) -> np.ndarray:
    """Reshape ``(chain * draw, ...)`` (chains concatenated) to ``(chain, draw, ...)``."""
    x = np.asarray(x)
    return x.reshape(num_chains, x.shape[0] // num_chains, *x.shape[1:])


def _axis_coords(
    ds: xr.Dataset | None, n_sites: int, n_time: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Site and time coordinates: from ``ds`` where its sizes match, else indices."""
    site: dict[str, Any] = {"site": ("site", np.arange(n_sites))}
    time: dict[str, Any] = {"time": ("time", np.arange(n_time))}
    if ds is None:
        return site, time
    if "site" in ds.coords and ds.sizes.get("site") == n_sites:
        site = {"site": ("site", np.asarray(ds["site"].values).astype(str))}
        for name, c in ds.coords.items():
            if name != "site" and c.dims == ("site",):
                site[str(name)] = ("site", np.asarray(c.values), dict(c.attrs))
    if "time" in ds.coords and ds.sizes.get("time") == n_time:
        time = {"time": ("time", _ns(ds["time"].values))}
    return site, time


def _param_coords(process: Any, names: list[str]) -> dict[str, Any]:
    rows = [process.table[n] for n in names]
    return {
        "parameter": ("parameter", np.array(names)),
        "parameter_units": ("parameter", np.array([r.units for r in rows])),
        "parameter_lower": ("parameter", np.array([r.lower for r in rows])),
        "parameter_upper": ("parameter", np.array([r.upper for r in rows])),
        "parameter_group": ("parameter", np.array([r.group for r in rows])),
    }


def _predictive_data(data: FitData) -> FitData:
    """Return ``data`` with every entry unmasked (draws everywhere), uncertainties filled."""
    packed = {}
    for s, sd in data.streams.items():
        raw = np.asarray(sd.unc, float)
        filled = _fill_unc(raw) if data.has_unc[s] else np.ones_like(raw)
        packed[s] = StreamData(
            value=sd.value, mask=jnp.ones(jnp.shape(sd.mask), bool), unc=jnp.asarray(filled)
        )
    return data._replace(streams=packed)


def nuts_to_datatree(
    fit: NUTSFit,
    data: FitData,
    *,
    process: Any,
    net: Any,
    config: ModelConfig,
    ds: xr.Dataset | None = None,
    key: jax.Array,
) -> xr.DataTree:
    """Convert a NUTS posterior into an ArviZ-style DataTree with dims ``(chain, draw)``.

    Parameters
    ----------
    fit : NUTSFit
        The NUTS fit (:func:`~differland_bayes.bayes.mcmc.fit_nuts`); all its draws are
        used, chains in order.
    data : FitData
        The data it was fitted on (its sites, in order).
    process : AbstractDalec
        The process model of the fit.
    net : EnvPriorNet
        The network passed to the fit (point mode: :attr:`NUTSFit.net` replaces it).
    config : ModelConfig
        The model configuration of the fit.
    ds : xarray.Dataset, optional
        The canonical dataset ``data`` was packed from: site / time coordinates, stream
        units and ``constant_data/env``. Without it sites and times are integer indices.
    key : jax.Array
        PRNG key of the predictive draws (observation noise).

    Returns
    -------
    xarray.DataTree
        Groups :data:`NUTS_GROUPS`: ``posterior`` (``parameters`` in physical units
        with coordinates ``parameter_units``, ``parameter_lower``, ``parameter_upper``;
        ``z``, ``z_loc``, ``sigma`` (1); ``noise_<stream>`` and ``net_<path>`` where
        sampled), ``sample_stats`` (``diverging``), ``posterior_predictive``
        (``<stream>``, with observation noise, units of the stream),
        ``observed_data`` (NaN where masked), ``log_likelihood`` (``<stream>``,
        pointwise, nat, NaN where masked) and ``constant_data`` (``env`` if ``ds``
        has it, ``network_input``, ``<stream>_unc``, ``<stream>_in_fit``). Draw
        dimensions are ``(chain, draw)``.

    Raises
    ------
    ValueError
        If the draws do not match the data's sites.
    """
    num_chains = int(getattr(fit.mcmc, "num_chains", 1))
    draws, net = posterior_draws(
        fit, data=data, process=process, net=net, config=config, key=key, num_samples=None
    )
    n_total = int(jnp.shape(draws["eps"])[0])
    n_sites = int(data.env.shape[0])
    if jnp.shape(draws["eps"])[1] != n_sites or n_total % num_chains:
        raise ValueError(
            f"fit: expected eps draws of shape (chain * draw, {n_sites}, P), found "
            f"{tuple(jnp.shape(draws['eps']))} with {num_chains} chain(s)"
        )
    streams = list(data.streams)
    ctx = types.SimpleNamespace(process=process, model_config=config)
    traced = _trace_draws(
        _model_for(net, config), _predictive_data(data), draws, key,
        fit=ctx, net=net, streams=streams, progress_bar=False,
    )  # fmt: skip

    layout = ParameterLayout.for_config(process.table, config)
    free = list(layout.free_names)
    free_idx = [process.table.names.index(n) for n in free]
    n_time = int(np.shape(next(iter(data.streams.values())).value)[1])
    site, time = _axis_coords(ds, n_sites, n_time)
    sample = {"chain": np.arange(num_chains), "draw": np.arange(n_total // num_chains)}
    cdp = ("chain", "draw", "site", "parameter")

    post = xr.Dataset(coords={**sample, **site, **_param_coords(process, free)})
    post["parameters"] = (
        cdp,
        _chains(traced["theta"][..., free_idx], num_chains),
        {"units": "see parameter_units", "long_name": "site parameters (physical units)"},
    )
    post["z"] = (
        cdp,
        _chains(traced["z"], num_chains),
        {"units": "1", "long_name": "unconstrained site parameters"},
    )
    post["z_loc"] = (
        cdp,
        _chains(traced["z_loc"], num_chains),
        {"units": "1", "long_name": "network location f(x) of z"},
    )
    post["sigma"] = (
        ("chain", "draw", "parameter"),
        _chains(draws["sigma"], num_chains),
        {"units": "1", "long_name": "residual sd of z around f(x) (before sigma_floor)"},
    )
    for k, v in draws.items():
        if (attrs := _noise_attrs(k, ds)) is not None:
            post[k] = (("chain", "draw"), _chains(v, num_chains), attrs)
        elif k.startswith(f"{NET_NAME}/"):
            name = _safe_name(k)
            dims = ("chain", "draw", *(f"{name}_dim_{i}" for i in range(jnp.ndim(v) - 1)))
            post[name] = (dims, _chains(v, num_chains), {"units": "1", "numpyro_site": k})

    extra = fit.mcmc.get_extra_fields(group_by_chain=True)
    stats = xr.Dataset(coords=sample)
    if "diverging" in extra:
        stats["diverging"] = (("chain", "draw"), np.asarray(extra["diverging"], bool),
                              {"long_name": "divergent transition"})  # fmt: skip

    masks = {s: np.asarray(data.streams[s].mask, bool) for s in streams}
    cdst = ("chain", "draw", "site", "time")
    pp = xr.Dataset(coords={**sample, **site, **time})
    ll = xr.Dataset(coords={**sample, **site, **time})
    obs = xr.Dataset(coords={**site, **time})
    const = xr.Dataset(coords={**site, **time})
    for s in streams:
        units, name = _units(s, ds), _long(s)
        value = np.asarray(data.streams[s].value, float)
        pp[s] = (
            cdst,
            _chains(traced[f"predictive/{s}"], num_chains),
            {"units": units, "long_name": f"{name}: posterior predictive"},
        )
        lls = np.where(masks[s], np.asarray(traced[f"log_lik/{s}"], float), np.nan)
        ll[s] = (
            cdst,
            _chains(lls, num_chains),
            {"units": "1", "long_name": f"{name}: log_likelihood (nat)"},
        )
        obs[s] = (
            ("site", "time"),
            np.where(masks[s], value, np.nan),
            {"units": units, "long_name": f"{name}: observed (NaN where not observed)"},
        )
        unc = np.asarray(data.streams[s].unc, float)
        const[f"{s}_unc"] = (
            ("site", "time"),
            np.where(masks[s] & (unc > 0), unc, np.nan),
            {"units": units, "long_name": f"{name}: observation uncertainty (1 sd)"},
        )
        const[f"{s}_in_fit"] = (
            ("site", "time"),
            masks[s],
            {"long_name": f"{s} observation was in the fit's likelihood"},
        )
    const["network_input"] = (
        ("site", "input"),
        np.asarray(data.env, float),
        {"units": "1", "long_name": "standardised environment (network input)"},
    )
    if ds is not None and "env" in ds and ds.sizes.get("site") == n_sites:
        env = ds["env"].transpose("site", "feature")
        const["env"] = (("site", "feature"), np.asarray(env.values, float), dict(env.attrs))
        const = const.assign_coords(feature=np.asarray(env["feature"].values).astype(str))
        if "feature_units" in ds.coords:
            const = const.assign_coords(
                feature_units=("feature", np.asarray(ds["feature_units"].values).astype(str))
            )

    root = xr.Dataset(attrs={
        "title": "differland NUTS posterior",
        "process": str(getattr(process, "name", type(process).__name__)),
        "inference": "nuts",
        "sample_dims": "chain, draw",
        "num_chains": num_chains,
        "num_draws": n_total // num_chains,
        "divergences": int(fit.diagnostics.divergences),
        "sampling_seconds": float(fit.diagnostics.seconds),
        "bayesian_weights": int(bool(config.network.bayesian_weights)),
        "differland_bayes_version": __version__,
    })  # fmt: skip
    groups = {"posterior": post, "sample_stats": stats, "posterior_predictive": pp,
              "observed_data": obs, "log_likelihood": ll, "constant_data": const}  # fmt: skip
    return xr.DataTree.from_dict({"/": root, **groups})
