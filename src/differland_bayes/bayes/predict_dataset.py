"""Posterior predictive of a fitted run for the sites of a dataset, as a dataset.

:func:`predict_to_dataset` is the library behind ``differland predict``. It reads a run
directory (:func:`~.fit.restore_fit`), draws the global quantities of its posterior
once (network weights, ``sigma``, learned noise scales; the guide's residuals ``eps``
of every fitted site), and predicts each site of the dataset:

* a site the run was fitted on (same id as one of ``data_meta.json``'s ``sites``) with
  its own fitted residuals (:func:`~.predict.posterior_predictive`);
* any other site from its environment alone, with fresh residuals
  (:func:`~.predict.predict_new_sites`).

Both use the same posterior draws, so the two kinds of sites are comparable. Several
run directories (an ensemble, e.g. one configuration fitted with several seeds) are
pooled as an equal-weight mixture of their posteriors: each contributes its share of
the draws. The
result is in the canonical layout (``docs/data-format.md``): the dataset's ``site`` and
``time`` coordinates (and site-level coordinates such as ``lat``), plus

==============================  ===========================  ===============================
variable                        dims                         meaning
==============================  ===========================  ===============================
``<stream>``                    (site, time)                 posterior predictive mean, with
                                                             observation noise
``<stream>_quantile``           (quantile, site, time)       its quantiles
``<stream>_draws``              (sample, site, time)         the draws (``draws=True`` only)
``<stream>_obs``                (site, time)                 the observed values (NaN where
                                                             none)
``<stream>_mask``               (site, time)                 True where observed
``<stream>_unc``                (site, time)                 observation uncertainty (if the
                                                             dataset has it)
``parameters_quantile``         (quantile, site, parameter)  physical free parameters
==============================  ===========================  ===============================

Coordinates: ``fitted`` (site, bool: the site's own fitted residuals were used),
``quantile``, ``parameter`` (free parameters, with ``parameter_units``), ``sample``
(with ``draws``). Attributes: ``run_dir``, ``seed``, ``num_samples``, ``process``,
``data_source`` (and ``n_runs`` for an ensemble). ``pred.gpp - pred.gpp_obs`` is the
residual of every observation.

With ``[model] circular_phases`` the quantiles of a phase are circular: each site's
draws are unwrapped to within half a period of their circular mean before the
quantiles are taken (:func:`circular_quantiles`), so that a phase near the edge of its
one-year window gets a narrow interval, not one a year wide.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ..dataset import STREAMS, env_matrix
from .data import FitData, StreamData
from .discrepancy import calendar_month
from .fit import RestoredFit, restore_fit
from .fit_data import derive_configured
from .fit_problem import problem_guide
from .likelihood import needs_learned_noise
from .model import (
    LOCAL_SITES,
    ParameterLayout,
    initial_values,
)
from .predict import (
    NEW_SITE_POOLS,
    _new_site_uncertainty,
    encode_sites,
    posterior_draws,
    posterior_predictive,
    predict_new_sites,
)
from .run import env_spec
from .svi import SVIFit

__all__ = ["DEFAULT_QUANTILES", "check_compatible", "circular_quantiles", "predict_to_dataset"]

log = logging.getLogger(__name__)

#: quantiles written when none are asked for
DEFAULT_QUANTILES: tuple[float, ...] = (0.05, 0.5, 0.95)
#: time steps of the stand-in data on which the guide is traced (shapes only)
_GUIDE_STEPS = 12


def check_compatible(ds: xr.Dataset, meta: Mapping[str, Any]) -> None:
    """Check that a dataset has the streams and predictors of a run.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical dataset of the sites to predict.
    meta : mapping
        ``data_meta.json`` of the run.

    Raises
    ------
    ValueError
        If a stream of the run is absent from ``ds`` or the predictors differ (the
        message names what differs).
    """
    problems: list[str] = []
    missing = [s for s in meta["streams"] if s not in ds]
    if missing:
        have = [s for s in STREAMS if s in ds]
        problems.append(f"streams {missing} of the run are absent (the data have {have})")
    try:
        _, names = env_matrix(ds, classes=list(meta["classes"]), predictors=meta.get("predictors"))
    except (KeyError, ValueError) as e:
        problems.append(f"predictors cannot be read: {e}")
    else:
        if names != list(meta["features"]):
            lack = [n for n in meta["features"] if n not in names]
            extra = [n for n in names if n not in meta["features"]]
            what = []
            if lack:
                what.append(f"missing {lack}")
            if extra:
                what.append(f"extra {extra}")
            if not what:
                what.append(f"order {names} instead of {list(meta['features'])}")
            problems.append(f"predictors differ from the run's: {'; '.join(what)}")
    if problems:
        raise ValueError("the data do not match the run: " + "; ".join(problems))


def _guide_posterior(fit: RestoredFit) -> SVIFit:
    """Rebuild the run's guide (as :func:`~.fit.build_problem` does) around its params."""
    guide = problem_guide(fit.config, initial_values(fit.net, fit.model_config, fit.process))
    empty = np.zeros(0)
    return SVIFit(None, guide, fit.params, None, empty, fit.params, 0, False, empty, empty)


def _stream_data(
    ds: xr.Dataset, streams: Sequence[str], fit: RestoredFit, draw_names: set[str]
) -> tuple[dict[str, StreamData], dict[str, bool]]:
    """Stand-in observations for prediction: zeros, every entry, the data's noise."""
    n_sites, n_time = int(ds.sizes["site"]), int(ds.sizes["time"])
    packed: dict[str, StreamData] = {}
    flags: dict[str, bool] = {}
    for s in streams:
        unc = _new_site_uncertainty(ds, s, (n_sites, n_time), None)
        flags[s] = unc is not None
        if needs_learned_noise(flags[s], fit.model_config.likelihood) and (
            f"noise_{s}" not in draw_names
        ):
            raise ValueError(
                f"stream {s!r}: no observation noise: the run took it from the data's "
                f"uncertainty, but the data have no {s}_unc"
            )
        packed[s] = StreamData(
            value=jnp.zeros((n_sites, n_time)),
            mask=jnp.ones((n_sites, n_time), bool),
            unc=jnp.asarray(np.zeros((n_sites, n_time)) if unc is None else unc),
        )
    return packed, flags


def _guide_data(ds: xr.Dataset, fit: RestoredFit) -> FitData:
    """Build data with the fitted sites' shapes for the guide to draw on (values unused).

    The guide's draws depend only on its parameters; the model is traced once to learn
    the shapes of its sites, which need as many sites as the fit and the run's streams
    and uncertainty flags.
    """
    meta = fit.meta
    n_fit = len(meta["sites"])
    small = ds.isel(site=[0] * n_fit, time=slice(0, min(_GUIDE_STEPS, int(ds.sizes["time"]))))
    forcing, _ = encode_sites(small, fit.process, env_spec(meta))
    n_time = int(small.sizes["time"])
    streams = {
        s: StreamData(
            value=jnp.zeros((n_fit, n_time)),
            mask=jnp.zeros((n_fit, n_time), bool),
            unc=jnp.ones((n_fit, n_time)),
        )
        for s in meta["streams"]
    }
    has_unc = {s: bool(meta["has_uncertainty"][s]) for s in meta["streams"]}
    env = jnp.zeros((n_fit, len(meta["features"])))
    month = jnp.asarray(calendar_month(small["time"].values))
    return FitData(forcing=forcing, env=env, streams=streams, has_unc=has_unc, month=month)


def _check_quantiles(quantiles: Sequence[float]) -> np.ndarray:
    q = np.asarray(list(quantiles), dtype=np.float64)
    if q.ndim != 1 or q.size == 0 or not np.all((q >= 0) & (q <= 1)):
        raise ValueError(f"quantiles: expected numbers in [0, 1], found {list(quantiles)}")
    if np.any(np.diff(q) <= 0):
        raise ValueError(f"quantiles: expected increasing values, found {list(quantiles)}")
    return q


def _run_draws(
    fit: RestoredFit,
    ds: xr.Dataset,
    *,
    num_samples: int,
    key: jax.Array,
    new_site_pools: str,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Draws of one run for every site of ``ds``: ``(obs, parameters, fitted)``."""
    meta = fit.meta
    streams = list(meta["streams"])
    process, config, net = fit.process, fit.model_config, fit.net
    spec = env_spec(meta)
    site_ids = np.asarray(ds["site"].values).astype(str)
    index = {str(s): i for i, s in enumerate(meta["sites"])}
    fitted = np.array([s in index for s in site_ids], dtype=bool)

    k_draw, k_fit, k_new = jax.random.split(key, 3)
    global_draws, net = posterior_draws(
        _guide_posterior(fit),
        data=_guide_data(ds, fit),
        process=process,
        net=net,
        config=config,
        key=k_draw,
        num_samples=num_samples,
    )
    global_draws = {k: jnp.asarray(v) for k, v in global_draws.items()}
    log.info(
        "%s: predicting %d site(s) (%d fitted, %d new) x %d step(s) from %d draw(s)",
        fit.run_dir, len(site_ids), int(fitted.sum()), int((~fitted).sum()),
        int(ds.sizes["time"]), num_samples,
    )  # fmt: skip

    parts: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
    if fitted.any():
        sel = np.flatnonzero(fitted)
        sub = ds.isel(site=sel)
        forcing, env = encode_sites(sub, process, spec)
        packed, has_unc = _stream_data(sub, streams, fit, set(global_draws))
        month = jnp.asarray(calendar_month(sub["time"].values))
        data = FitData(forcing=forcing, env=env, streams=packed, has_unc=has_unc, month=month)
        rows = jnp.asarray([index[s] for s in site_ids[sel]])
        posterior = {k: v[:, rows] if k in LOCAL_SITES else v for k, v in global_draws.items()}
        out = posterior_predictive(
            data,
            process=process,
            net=net,
            config=config,
            posterior=posterior,
            key=k_fit,
            return_outputs=(),
        )
        parts.append((sel, out))
    if (~fitted).any():
        sel = np.flatnonzero(~fitted)
        posterior = {k: v for k, v in global_draws.items() if k not in LOCAL_SITES}
        out = predict_new_sites(
            ds.isel(site=sel),
            spec,
            process=process,
            net=net,
            config=config,
            posterior=posterior,
            key=k_new,
            streams=streams,
            return_outputs=(),
            initial_pools=new_site_pools,
        )
        parts.append((sel, out))

    def gather(name: str) -> np.ndarray:
        first = parts[0][1][name]
        full = np.empty((first.shape[0], len(site_ids), *first.shape[2:]), first.dtype)
        for sel, out in parts:
            full[:, sel] = out[name]
        return full

    return {s: gather(f"obs_{s}") for s in streams}, gather("parameters"), fitted


def _check_ensemble(fits: Sequence[RestoredFit]) -> None:
    """Check that runs pooled into one prediction share streams, model and parameters."""
    first = fits[0]

    def signature(f: RestoredFit) -> dict[str, Any]:
        layout = ParameterLayout.for_config(f.process.table, f.model_config)
        return {
            "streams": list(f.meta["streams"]),
            "process": f.process.name,
            "free parameters": list(layout.free_names),
            "predictors": list(f.meta["features"]),
        }

    ref = signature(first)
    for f in fits[1:]:
        sig = signature(f)
        diff = [k for k in ref if sig[k] != ref[k]]
        if diff:
            raise ValueError(
                f"runs: {f.run_dir} cannot be pooled with {first.run_dir}: their "
                + "; ".join(f"{k} differ ({sig[k]} vs {ref[k]})" for k in diff)
            )


def predict_to_dataset(
    run_dir: str | os.PathLike | Sequence[str | os.PathLike],
    ds: xr.Dataset,
    *,
    num_samples: int = 200,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    draws: bool = False,
    key: jax.Array | int = 0,
    fit: RestoredFit | Sequence[RestoredFit] | None = None,
    new_site_pools: str = NEW_SITE_POOLS[0],
) -> xr.Dataset:
    """Posterior predictive of a run (or an ensemble of runs) for every site of a dataset.

    Parameters
    ----------
    run_dir : path-like or sequence of path-like
        Run directory of ``differland fit``, or several: an **ensemble** (e.g. the same
        configuration fitted with different seeds) whose posteriors are pooled as an
        equal-weight mixture: ``num_samples`` is split as evenly as possible between
        the runs and their draws are concatenated before the means and quantiles are
        taken. The runs must share streams, process model, free parameters and
        predictors.
    ds : xarray.Dataset
        Canonical dataset (validated by the caller) on the run's time step: forcing and
        ``env`` of every site, observations optional. Sites are matched to the fitted
        ones by id. Predictors the run derives from the forcing (``[data] derive``)
        are computed from ``ds``'s forcing.
    num_samples : int
        Posterior draws (in all; at least one per run).
    quantiles : sequence of float
        Increasing probabilities in ``[0, 1]`` for ``<stream>_quantile`` and
        ``parameters_quantile``.
    draws : bool
        Also return every draw as ``<stream>_draws``.
    key : jax.Array or int
        PRNG key (or an integer seed); the only randomness. With several runs, run
        ``i`` uses ``jax.random.fold_in(key, i)`` (one run, also in a list, uses ``key``).
    fit : RestoredFit or sequence of RestoredFit, optional
        The run(s) already read with :func:`~.fit.restore_fit` (read from ``run_dir``
        otherwise), in the order of ``run_dir``.
    new_site_pools : {"network", "equilibrium"}
        Initial carbon pools of sites the run did not fit (``initial_pools`` of
        :func:`~.predict.predict_new_sites`).

    Returns
    -------
    xarray.Dataset
        The layout of the module docstring. With an ensemble, ``fitted`` is True for a
        site that at least one run was fitted on (that run uses the site's own
        residuals, the others predict it from its environment), and the attributes
        ``run_dir`` (the runs, joined by ``"; "``) and ``n_runs`` say what was pooled.

    Raises
    ------
    FileNotFoundError
        If a run directory is missing or incomplete.
    ValueError
        If the data do not match the run(s) (streams, predictors, observation noise),
        the runs cannot be pooled, or for bad ``num_samples`` / ``quantiles``.
    """
    one = isinstance(run_dir, (str, os.PathLike))
    run_dirs = [Path(run_dir)] if one else [Path(r) for r in run_dir]
    single = len(run_dirs) == 1  # a list of one run is that run, same key
    if not run_dirs:
        raise ValueError("run_dir: expected at least one run directory, found none")
    if num_samples < len(run_dirs):
        raise ValueError(
            f"num_samples: expected an integer >= the number of runs ({len(run_dirs)}), "
            f"found {num_samples}"
        )
    q = _check_quantiles(quantiles)
    seed = int(key) if isinstance(key, int) else None
    if isinstance(key, int):
        key = jax.random.key(key)
    if fit is None:
        fits = [restore_fit(r) for r in run_dirs]
    else:
        fits = [fit] if isinstance(fit, RestoredFit) else list(fit)
        if len(fits) != len(run_dirs):
            raise ValueError(
                f"fit: expected {len(run_dirs)} restored run(s) (one per run_dir), "
                f"found {len(fits)}"
            )
    # predictors the runs derive from the forcing ([data] derive), computed for these
    # sites once per distinct setting (the runs of an ensemble usually share it)
    derived: dict[tuple[str, ...], xr.Dataset] = {}
    for f in fits:
        if f.config.data.derive not in derived:
            derived[f.config.data.derive] = derive_configured(ds, f.config)
    data = [derived[f.config.data.derive] for f in fits]
    for f, d in zip(fits, data, strict=True):
        check_compatible(d, f.meta)
    _check_ensemble(fits)
    first = fits[0]
    streams = list(first.meta["streams"])

    n_runs = len(fits)
    counts = [num_samples // n_runs + (i < num_samples % n_runs) for i in range(n_runs)]
    results = [
        _run_draws(
            f,
            d,
            num_samples=n,
            key=key if single else jax.random.fold_in(key, i),
            new_site_pools=new_site_pools,
        )
        for i, (f, d, n) in enumerate(zip(fits, data, counts, strict=True))
    ]
    obs = {s: np.concatenate([r[0][s] for r in results]) for s in streams}
    fitted = np.logical_or.reduce([r[2] for r in results])
    attrs: dict[str, Any] = {
        "run_dir": "; ".join(str(r) for r in run_dirs),
        "seed": seed if seed is not None else "jax key",
        "num_samples": int(num_samples),
        "process": first.process.name,
    }
    if not single:
        attrs["n_runs"] = n_runs
    return _assemble(
        ds,
        first,
        streams=streams,
        obs=obs,
        parameters=np.concatenate([r[1] for r in results]),
        fitted=fitted,
        quantiles=q,
        draws=draws,
        attrs=attrs,
    )


def circular_quantiles(
    values: np.ndarray, quantiles: np.ndarray, period: float, center: float
) -> np.ndarray:
    """Quantiles over axis 0 of a periodic quantity, taken around its circular mean.

    Parameters
    ----------
    values : numpy.ndarray, shape (sample, ...)
        Draws of a quantity defined modulo ``period`` (e.g. a phase, d).
    quantiles : numpy.ndarray
        Quantile levels in [0, 1].
    period : float
        The period, in the units of ``values``.
    center : float
        Where the circle is cut for the circular mean: the mean is placed within half a
        period of ``center``.

    Returns
    -------
    numpy.ndarray, shape (len(quantiles), ...)
        Quantiles of the draws unwrapped to within half a period of their circular mean
        (so within a period of ``center``).
    """
    angle = 2.0 * np.pi * (np.asarray(values, np.float64) - center) / period
    mean = np.arctan2(np.sin(angle).mean(axis=0), np.cos(angle).mean(axis=0))
    delta = np.mod(angle - mean + np.pi, 2.0 * np.pi) - np.pi
    return center + period * (mean + np.quantile(delta, quantiles, axis=0)) / (2.0 * np.pi)


def _parameter_quantiles(
    parameters: np.ndarray, quantiles: np.ndarray, free_table: Any
) -> np.ndarray:
    """Quantiles of the free parameters' draws, circular for periodic rows."""
    out = np.quantile(parameters, quantiles, axis=0)
    for j in np.flatnonzero(free_table.periodic):
        row = free_table.rows[j]
        out[..., j] = circular_quantiles(parameters[..., j], quantiles, row.period, row.default)
    return out


def _assemble(
    ds: xr.Dataset,
    fit: RestoredFit,
    *,
    streams: Sequence[str],
    obs: Mapping[str, np.ndarray],
    parameters: np.ndarray,
    fitted: np.ndarray,
    quantiles: np.ndarray,
    draws: bool,
    attrs: Mapping[str, Any],
) -> xr.Dataset:
    """Build the output dataset from the draws (layout: module docstring)."""
    layout = ParameterLayout.for_config(fit.process.table, fit.model_config)
    free = list(layout.free_names)
    table = fit.process.table
    units = [str(table.units[table.names.index(n)]) for n in free]
    site_coords = {
        name: c
        for name, c in ds.coords.items()
        if name not in ("site", "time") and c.dims == ("site",)
    }
    coords: dict[str, Any] = {
        "site": ds["site"],
        "time": ds["time"],
        **site_coords,
        "fitted": (
            "site",
            fitted,
            {"long_name": "site was fitted by the run, or by a run of the ensemble"},
        ),
        "quantile": ("quantile", quantiles, {"long_name": "posterior predictive quantile"}),
        "parameter": ("parameter", np.array(free), {"long_name": "free parameter"}),
        "parameter_units": ("parameter", np.array(units), {"long_name": "units"}),
    }
    out = xr.Dataset(coords=coords)
    for s in streams:
        d = np.asarray(obs[s], np.float64)
        info = STREAMS.get(s)
        unit = str(ds[s].attrs.get("units", info.units if info else ""))
        long = info.long_name if info else s
        out[s] = (
            ("site", "time"),
            d.mean(axis=0),
            {"units": unit, "long_name": f"{long}: posterior predictive mean (with noise)"},
        )
        out[f"{s}_quantile"] = (
            ("quantile", "site", "time"),
            np.quantile(d, quantiles, axis=0),
            {"units": unit, "long_name": f"{long}: posterior predictive quantiles"},
        )
        if draws:
            out[f"{s}_draws"] = (
                ("sample", "site", "time"),
                d,
                {"units": unit, "long_name": f"{long}: posterior predictive draws"},
            )
        value = np.asarray(ds[s].transpose("site", "time").values, np.float64)
        mask = np.isfinite(value)
        if f"{s}_mask" in ds:
            mask &= np.asarray(ds[f"{s}_mask"].transpose("site", "time").values, bool)
        out[f"{s}_obs"] = (
            ("site", "time"),
            np.where(mask, value, np.nan),
            {"units": unit, "long_name": f"{long}: observed"},
        )
        out[f"{s}_mask"] = (("site", "time"), mask, {"long_name": f"{s}_obs observed"})
        if f"{s}_unc" in ds:
            out[f"{s}_unc"] = (
                ("site", "time"),
                np.asarray(ds[f"{s}_unc"].transpose("site", "time").values, np.float64),
                {"units": unit, "long_name": f"{long}: observation uncertainty (1 sd)"},
            )
    out["parameters_quantile"] = (
        ("quantile", "site", "parameter"),
        _parameter_quantiles(np.asarray(parameters, np.float64), quantiles, layout.free_table),
        {
            "units": "see parameter_units",
            "long_name": "physical free parameters: posterior quantiles",
        },
    )
    if draws:
        out = out.assign_coords(sample=np.arange(parameters.shape[0]))
    out.attrs.update(
        {
            "title": "differland posterior predictive",
            "data_source": str(ds.attrs.get("source", ds.attrs.get("title", ""))),
            **attrs,
        }
    )
    return out
