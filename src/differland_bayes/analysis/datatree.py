"""A fitted run as an ArviZ-style :class:`xarray.DataTree` (layout: ``docs/analysis.md``).

:func:`to_datatree` evaluates a run at the sites of a dataset (:mod:`.draws`) and
assembles the groups ``posterior``, ``prior``, ``posterior_predictive``,
``observed_data``, ``log_likelihood``, ``constant_data``, ``loss``, ``network`` and,
for a proper (non-``delta``) guide, ``sample_stats`` (``lp`` and ``log_q`` of every
draw, for the VI-corrected PSIS-LOO of :mod:`.loo`).
SVI runs (the only kind ``differland fit`` writes) have the sample dimension
``sample``; :func:`~.diagnostics.loo_datatree` turns it into ArviZ's
``(chain, draw)`` where ArviZ needs it. :func:`write_datatree` / :func:`read_datatree`
(:mod:`.datatree_io`) store it as netCDF (h5netcdf) or Zarr.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import numpy as np
import xarray as xr

from .._version import __version__
from ..bayes.discrepancy import MONTHS, harmonic_names, stream_months
from ..bayes.fit_restore import RestoredFit
from ..bayes.likelihood import NOISE_PREFIX, RELATIVE_NOISE_PREFIX
from ..dataset import STREAMS
from ..forcing import FORCING_VARIABLES
from .datatree_io import read_datatree, run_fingerprint, write_datatree
from .draws import RunDraws, run_draws

__all__ = ["GROUPS", "read_datatree", "run_fingerprint", "to_datatree", "write_datatree"]

log = logging.getLogger(__name__)

#: groups of :func:`to_datatree`, in order (``sample_stats`` only with ``lp`` / ``log_q``)
GROUPS: tuple[str, ...] = (
    "posterior",
    "sample_stats",
    "prior",
    "posterior_predictive",
    "observed_data",
    "log_likelihood",
    "constant_data",
    "loss",
    "network",
)
PRIOR_SOURCE = (
    "z = f(x) + (sigma + sigma_floor) * m(x) * eps, eps ~ N(0, 1) fresh; network weights "
    "and sigma from the posterior draws (the learned population prior of a site)"
)


def _units(stream: str, ds: xr.Dataset | None) -> str:
    """Units of a stream: the dataset's attribute, else the stream table's."""
    info = STREAMS.get(stream)
    default = info.units if info else ""
    if ds is not None and stream in ds:
        return str(ds[stream].attrs.get("units", default))
    return default


def _long(stream: str) -> str:
    info = STREAMS.get(stream)
    return info.long_name if info else stream


def _noise_attrs(name: str, ds: xr.Dataset | None) -> dict[str, str] | None:
    """Attributes of a noise site's variable (``noise_<s>``, ``relnoise_<s>``); else None."""
    if name.startswith(NOISE_PREFIX):
        s = name.removeprefix(NOISE_PREFIX)
        return {"units": _units(s, ds), "long_name": f"learned observation noise sd of {s}"}
    if name.startswith(RELATIVE_NOISE_PREFIX):
        s = name.removeprefix(RELATIVE_NOISE_PREFIX)
        return {"units": "1", "long_name": f"noise sd of {s} per |{s}|"}
    return None


def _safe_name(path: str) -> str:
    """Return a netCDF-safe name for a NumPyro site such as ``prior_net/trunk[0].weight``."""
    return "net_" + re.sub(r"[^A-Za-z0-9_]+", "_", path.split("/", 1)[-1]).strip("_")


def _attr(value: Any) -> Any:
    """Convert an attribute to what netCDF can store (str, number, or list of them)."""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, int | float | str | np.integer | np.floating):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, int | float | str) for v in value):
        return list(value) if value else ""
    return str(value)


def _coords(d: RunDraws) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Site, parameter and time coordinates."""
    ds = d.ds
    site: dict[str, Any] = {"site": ("site", np.asarray(ds["site"].values).astype(str))}
    for name, c in ds.coords.items():
        if name != "site" and c.dims == ("site",):
            site[name] = ("site", np.asarray(c.values), dict(c.attrs))
    site["fitted"] = ("site", d.fitted, {"long_name": "the run was fitted on the site"})
    site["heldout"] = (
        "site",
        d.heldout,
        {"long_name": "held out for early stopping (observations not in the likelihood)"},
    )
    table = d.fit.process.table
    rows = [table[n] for n in d.free_names]
    param = {
        "parameter": ("parameter", np.array(d.free_names)),
        "parameter_units": ("parameter", np.array([r.units for r in rows])),
        "parameter_lower": ("parameter", np.array([r.lower for r in rows])),
        "parameter_upper": ("parameter", np.array([r.upper for r in rows])),
        "parameter_group": ("parameter", np.array([r.group for r in rows])),
    }
    time = {"time": ("time", _ns(d.obs_time))}
    return site, param, time


def _ns(t: np.ndarray) -> np.ndarray:
    """Return times as ``datetime64[ns]`` (what netCDF and Zarr give back)."""
    t = np.asarray(t)
    return t.astype("datetime64[ns]") if np.issubdtype(t.dtype, np.datetime64) else t


def _sample(n: int) -> dict[str, Any]:
    return {"sample": ("sample", np.arange(n))}


def _posterior(d: RunDraws, site: dict, param: dict) -> xr.Dataset:
    post = d.posterior
    sp = ("sample", "site", "parameter")
    out = xr.Dataset(coords={**_sample(d.num_samples), **site, **param})
    out["parameters"] = (
        sp,
        post["parameters"],
        {"units": "see parameter_units", "long_name": "site parameters (physical units)"},
    )
    out["z"] = (sp, post["z"], {"units": "1", "long_name": "unconstrained site parameters"})
    out["z_loc"] = (sp, post["z_loc"], {"units": "1", "long_name": "network location f(x) of z"})
    out["sigma"] = (
        ("sample", "parameter"),
        post["sigma"],
        {"units": "1", "long_name": "residual sd of z around f(x) (before sigma_floor)"},
    )
    for k, v in post.items():
        if (attrs := _noise_attrs(k, d.ds)) is not None:
            out[k] = (("sample",), v, attrs)
        elif "/" in k:  # Bayesian network weights
            name = _safe_name(k)
            dims = ("sample", *(f"{name}_dim_{i}" for i in range(v.ndim - 1)))
            out[name] = (dims, v, {"units": "1", "numpyro_site": k})
    _add_discrepancy(out, d)
    return out  # fmt: skip


def _add_discrepancy(out: xr.Dataset, d: RunDraws) -> None:
    """Seasonal discrepancy of each listed stream: sd, rho, site values, mean coefficients."""
    post = d.posterior
    lik = d.fit.model_config.likelihood
    streams = list(lik.discrepancy)
    if not streams or "discrepancy_sd" not in post:
        return
    out.coords["month"] = ("month", np.arange(1, MONTHS + 1), {"long_name": "calendar month"})
    delta = post.get("discrepancy")
    coef = post.get("discrepancy_coef")
    if coef is not None:
        out.coords["harmonic"] = ("harmonic", harmonic_names(lik.discrepancy_harmonics))
        out.coords["predictor"] = ("predictor", ["intercept", *d.fit.meta["features"]])
    for i, s in enumerate(streams):
        units = _units(s, d.ds)
        out[f"discrepancy_sd_{s}"] = (
            ("sample",),
            post["discrepancy_sd"][:, i],
            {"units": units, "long_name": f"sd of the seasonal discrepancy of {s}"},
        )
        out[f"discrepancy_rho_{s}"] = (
            ("sample",),
            post["discrepancy_rho"][:, i],
            {"units": "1", "long_name": f"share of the model's interannual anomaly of {s} kept"},
        )
        if delta is not None:
            per_site = stream_months(delta, len(streams))[:, :, i]
            out[f"discrepancy_{s}"] = (
                ("sample", "site", "month"), per_site,
                {"units": units, "long_name": f"seasonal discrepancy of {s} per calendar month"},
            )  # fmt: skip
        if coef is not None:
            out[f"discrepancy_coef_{s}"] = (
                ("sample", "harmonic", "predictor"), coef[:, i],
                {"units": units, "long_name": f"coefficients of the environment mean of the "
                 f"discrepancy of {s} (per standardised predictor)"},
            )  # fmt: skip


def _prior(d: RunDraws, site: dict, param: dict) -> xr.Dataset:
    sp = ("sample", "site", "parameter")
    out = xr.Dataset(coords={**_sample(d.num_samples), **site, **param})
    out["parameters"] = (
        sp,
        d.prior["parameters"],
        {"units": "see parameter_units", "long_name": "prior site parameters (physical units)"},
    )
    out["z"] = (sp, d.prior["z"], {"units": "1", "long_name": "prior unconstrained parameters"})
    out.attrs["prior_source"] = PRIOR_SOURCE
    return out  # fmt: skip


def _per_stream(d: RunDraws, site: dict, time: dict, values: dict, what: str) -> xr.Dataset:
    draws = next(iter(values.values())).ndim == 3
    dims = ("sample", "site", "time") if draws else ("site", "time")
    coords = {**(_sample(d.num_samples) if draws else {}), **site, **time}
    out = xr.Dataset(coords=coords)
    for s in d.streams:
        units = "1" if what == "log_likelihood" else _units(s, d.ds)
        out[s] = (dims, values[s], {"units": units, "long_name": f"{_long(s)}: {what}"})
    return out


def _observed(d: RunDraws, site: dict, time: dict) -> xr.Dataset:
    out = _per_stream(d, site, time, d.obs, "observed (NaN where not observed)")
    if d.split_time is not None:
        out = out.assign_coords(
            split_time=(
                ("site", "time"),
                d.split_time,
                {"long_name": "1: assimilated (training) period, 2: withheld period, 0: unused"},
            )
        )
    return out  # fmt: skip


def _constant(d: RunDraws, site: dict, time: dict) -> xr.Dataset:
    ds = d.ds
    out = xr.Dataset(coords={**site, **time})
    if "env" in ds:
        env = ds["env"].transpose("site", "feature")
        out["env"] = (("site", "feature"), np.asarray(env.values, float), dict(env.attrs))
        out = out.assign_coords(feature=np.asarray(env["feature"].values).astype(str))
        if "feature_units" in ds.coords:
            out = out.assign_coords(
                feature_units=("feature", np.asarray(ds["feature_units"].values).astype(str))
            )
    inputs = [str(f) for f in d.fit.meta["features"]]
    out["network_input"] = (
        ("site", "input"),
        d.env_inputs,
        {"units": "1", "long_name": "standardised environment (network input)"},
    )
    out = out.assign_coords(input=np.array(inputs))
    same_time = len(ds["time"]) == len(d.obs_time) and np.all(ds["time"].values == d.obs_time)
    tdim = "time" if same_time else "model_time"
    if not same_time:
        out = out.assign_coords(model_time=("model_time", _ns(ds["time"].values)))
    for name in FORCING_VARIABLES:
        if name in ds:
            v = ds[name].transpose("site", "time")
            out[name] = (("site", tdim), np.asarray(v.values), dict(v.attrs))
    for s in d.streams:
        out[f"{s}_unc"] = (
            ("site", "time"),
            d.unc[s],
            {"units": _units(s, ds), "long_name": f"{_long(s)}: observation uncertainty (1 sd)"},
        )
        out[f"{s}_in_fit"] = (
            ("site", "time"),
            d.in_fit[s],
            {"long_name": f"{s} observation was in the fit's likelihood"},
        )
    fixed = dict(d.fit.model_config.fixed_parameters)
    table = d.fit.process.table
    out["fixed_value"] = (
        "fixed_parameter",
        np.array(list(fixed.values()), float),
        {"units": "see fixed_parameter_units", "long_name": "parameters held fixed"},
    )
    return out.assign_coords(
        fixed_parameter=np.array(list(fixed), dtype=str),
        fixed_parameter_units=("fixed_parameter", np.array([table[n].units for n in fixed])),
    )  # fmt: skip


def _loss(fit: RestoredFit) -> xr.Dataset:
    from ..bayes.run import read_losses, read_summary

    lt = fit.losses
    out = xr.Dataset(
        {
            "loss": ("step", np.asarray(lt.loss, float), {"units": "nat", "long_name": "-ELBO"}),
            "heldout_loss": ("heldout_step", np.asarray(lt.heldout_loss, float), {
                "units": "nat", "long_name": "-ELBO of the early-stopping sites"}),
        },
        coords={"step": np.arange(1, len(lt.loss) + 1), "heldout_step": lt.heldout_steps},
    )  # fmt: skip
    map_file = fit.run_dir / "map_losses.csv"
    if map_file.is_file():
        steps, loss = read_losses(map_file)
        out["map_loss"] = ("map_step", loss, {"units": "nat", "long_name": "MAP warm start"})
        out = out.assign_coords(map_step=steps)
    try:
        summary = read_summary(fit.run_dir)
    except FileNotFoundError:
        summary = {}
    out.attrs.update({k: _attr(v) for k, v in summary.items() if not isinstance(v, dict)})
    return out


def _sample_stats(d: RunDraws) -> xr.Dataset | None:
    """``lp`` and ``log_q`` of every draw (None without them: ``delta`` guide)."""
    if d.log_p is None or d.log_q is None:
        return None
    return xr.Dataset(
        {
            "lp": ("sample", np.asarray(d.log_p, float), {"units": "nat", "long_name":
                   "joint log density of the fit's model at the draw (log p)"}),
            "log_q": ("sample", np.asarray(d.log_q, float), {"units": "nat", "long_name":
                      "log density of the guide at the draw (log q)"}),
        },
        coords=_sample(d.num_samples),
    )  # fmt: skip


def _network(d: RunDraws) -> xr.Dataset:
    """Point-mode weights as arrays, or posterior means of Bayesian weights."""
    import equinox as eqx
    import jax

    bayesian = bool(d.fit.model_config.network.bayesian_weights)
    out = xr.Dataset(attrs={"mode": "bayesian (posterior means)" if bayesian else "point"})
    params = eqx.filter(d.net, eqx.is_inexact_array)
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        key = f"prior_net/{jax.tree_util.keystr(path)[1:]}"
        value = d.posterior[key].mean(axis=0) if bayesian and key in d.posterior else leaf
        value = np.asarray(value, float)
        name = _safe_name(key)
        dims = tuple(f"{name}_dim_{i}" for i in range(value.ndim))
        rms = float(np.sqrt(np.mean(value**2))) if value.size else 0.0
        out[name] = (dims, value, {"units": "1", "numpyro_site": key, "rms": rms})
    return out


def to_datatree(
    run: str | os.PathLike | RestoredFit,
    *,
    data: xr.Dataset | None = None,
    num_samples: int = 200,
    seed: int = 0,
    progress_bar: bool | None = None,
) -> xr.DataTree:
    """Evaluate a run at the sites of a dataset and return everything as a DataTree.

    Parameters
    ----------
    run : path-like or RestoredFit
        Run directory of ``differland fit``, or the run already read.
    data : xarray.Dataset, optional
        Canonical dataset of the sites to evaluate (sites not in the run are predicted
        from their environment alone). Default: the data the run was fitted on,
        reloaded as its configuration says (its fitted sites).
    num_samples : int
        Posterior draws (dimension ``sample``).
    seed : int
        PRNG seed.
    progress_bar : bool or None
        Progress bar over the draws (None: only on a terminal).

    Returns
    -------
    xarray.DataTree
        Groups :data:`GROUPS` (``sample_stats`` only for a non-``delta`` guide whose
        sites are all in ``data``); layout in ``docs/analysis.md``.

    Raises
    ------
    FileNotFoundError
        If the run directory is missing or incomplete, or its data source is gone.
    ValueError
        If the data do not match the run.
    """
    from ..bayes.fit import load_dataset, restore_fit

    fit = run if isinstance(run, RestoredFit) else restore_fit(run)
    source = "training data"
    if data is None:
        data, where = load_dataset(fit.config, fit.process)
        source = f"training data ({where})"
    else:
        source = str(data.attrs.get("source", data.attrs.get("title", "given dataset")))
    d = run_draws(fit, data, num_samples=num_samples, seed=seed, progress_bar=progress_bar)
    site, param, time = _coords(d)
    groups = {
        "posterior": _posterior(d, site, param),
        "prior": _prior(d, site, param),
        "posterior_predictive": _per_stream(d, site, time, d.predictive, "posterior predictive"),
        "observed_data": _observed(d, site, time),
        "log_likelihood": _per_stream(d, site, time, d.log_lik, "log_likelihood"),
        "constant_data": _constant(d, site, time),
        "loss": _loss(fit),
        "network": _network(d),
    }
    stats = _sample_stats(d)
    if stats is not None:
        groups = {"posterior": groups["posterior"], "sample_stats": stats, **groups}
    root = xr.Dataset(attrs={
        "title": "differland run analysis",
        "run_dir": str(fit.run_dir),
        "run_fingerprint": run_fingerprint(fit.run_dir),
        "process": fit.process.name,
        "guide": str(fit.config.svi.guide),
        "inference": "svi",
        "sample_dims": "sample",
        "num_samples": int(num_samples),
        "seed": int(seed),
        "split": _attr(fit.meta.get("split")),
        "data_source": source,
        "prior_source": PRIOR_SOURCE,
        "differland_bayes_version": __version__,
    })  # fmt: skip
    return xr.DataTree.from_dict({"/": root, **groups})
