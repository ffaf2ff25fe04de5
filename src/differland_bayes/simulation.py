"""Run a process model on an xarray forcing dataset and return a labelled dataset.

:func:`simulate_dataset` is the dataset-in, dataset-out front end of
:func:`differland_bayes.process.simulate`: it builds the forcing, checks the parameters
against the table bounds, runs one site or many (``jax.vmap`` over ``site``) and labels
every output with its units.
"""

from __future__ import annotations

import logging
from typing import Literal

import jax
import numpy as np
import xarray as xr
from jax.typing import ArrayLike

from ._version import __version__
from .defaults import default_theta
from .forcing import build_forcing
from .io.atomic import write_netcdf_atomic
from .process.base import AbstractDalec
from .process.metadata import output_info
from .process.registry import WATER_STRESS, get_model
from .process.simulate import simulate

__all__ = ["simulate_dataset", "water_stress_option", "write_netcdf_atomic"]

log = logging.getLogger(__name__)

SITE_DIM = "site"
TIME_DIM = "time"
PARAMETER_DIM = "parameter"


def water_stress_option(model: AbstractDalec) -> str:
    """Return the published option name of the model's water stress (e.g. ``"default"``).

    Returns the class name when the strategy is not one of the registered options.
    """
    stress = _water_stress(model)
    for option, cls in WATER_STRESS.get(model.name, {}).items():
        if type(stress) is cls:
            return option
    return type(stress).__name__


def _water_stress(model: AbstractDalec) -> object:
    """Return the model's water-stress strategy (``None`` if its canopy has none)."""
    return getattr(getattr(model, "canopy", None), "water_stress", None)


def _site_theta(model: AbstractDalec, theta: ArrayLike, n_sites: int | None) -> np.ndarray:
    """Check ``theta`` against the table and broadcast it to ``(site, P)`` if needed."""
    table = model.table
    arr = np.asarray(theta, dtype=np.float64)
    n_par = len(table)
    if n_sites is None:
        if arr.shape != (n_par,):
            raise ValueError(
                f"{model.name}: theta must have shape ({n_par},) for a dataset without a "
                f"'{SITE_DIM}' dimension, found {arr.shape}"
            )
    elif arr.shape == (n_par,):
        arr = np.broadcast_to(arr, (n_sites, n_par))
    elif arr.shape != (n_sites, n_par):
        raise ValueError(
            f"{model.name}: theta must have shape ({n_par},) or ({n_sites}, {n_par}) for "
            f"{n_sites} sites, found {arr.shape}"
        )
    table.check_physical(arr, what=f"{model.name} parameters")
    return arr


def _parameters_variable(model: AbstractDalec, theta: np.ndarray, has_sites: bool) -> xr.Dataset:
    """Label the physical parameters with per-parameter units, bounds and groups."""
    table = model.table
    dims = (SITE_DIM, PARAMETER_DIM) if has_sites else (PARAMETER_DIM,)
    coords = {
        PARAMETER_DIM: (PARAMETER_DIM, list(table.names)),
        "parameter_units": (PARAMETER_DIM, list(table.units), {"long_name": "parameter units"}),
        "parameter_lower": (PARAMETER_DIM, table.lower, {"long_name": "lower bound"}),
        "parameter_upper": (PARAMETER_DIM, table.upper, {"long_name": "upper bound"}),
        "parameter_group": (
            PARAMETER_DIM,
            [r.group for r in table.rows],
            {"long_name": "parameter group (process, phenology, initial_pool)"},
        ),
    }
    attrs = {
        "long_name": "physical parameters and initial pools",
        "comment": "units, bounds and groups per parameter are in the parameter_* coordinates",
    }
    return xr.Dataset({"parameters": (dims, np.asarray(theta), attrs)}, coords=coords)


def simulate_dataset(
    model: AbstractDalec | str,
    forcing_ds: xr.Dataset,
    theta: ArrayLike | None = None,
    *,
    step_length: Literal["published", "calendar"] | None = None,
) -> xr.Dataset:
    """Simulate a model over a forcing dataset; one site, or every site of a ``site`` dim.

    Parameters
    ----------
    model : AbstractDalec or str
        The process model, or a model name (built with its default options).
    forcing_ds : xarray.Dataset
        Forcing as accepted by :func:`~differland_bayes.forcing.build_forcing` (``time``,
        optional ``site`` dimension, latitude, unit-tagged variables).
    theta : array_like, optional
        Physical parameters then initial pools, ordered as ``model.table``: shape
        ``(P,)`` (the same for every site) or ``(site, P)``. Defaults to
        :func:`~differland_bayes.defaults.default_theta`.
    step_length : {"published", "calendar"}, optional
        Monthly step length, passed to :func:`~differland_bayes.forcing.build_forcing`.

    Returns
    -------
    xarray.Dataset
        One variable per model output on ``time`` (``(site, time)`` with sites), with
        ``units`` and ``long_name``; the step length ``delta_t`` (d) as a coordinate on
        ``time``; ``parameters`` on ``parameter`` (or ``(site, parameter)``) with the
        coordinates ``parameter_units``, ``parameter_lower``, ``parameter_upper`` and
        ``parameter_group``; global attributes ``model``, ``mode``, ``water_stress``,
        ``water_stress_class`` and ``differland_bayes_version``.

    Raises
    ------
    ForcingError
        If the forcing dataset is unusable (every problem listed).
    ValueError
        If ``theta`` has the wrong shape or values outside the table bounds (the message
        names each offending parameter).
    """
    if isinstance(model, str):
        model = get_model(model)
    n_sites = forcing_ds.sizes.get(SITE_DIM)
    theta = default_theta(model) if theta is None else theta
    theta_arr = _site_theta(model, theta, n_sites)
    forcing = build_forcing(forcing_ds, model, step_length=step_length)

    dtype = forcing.t_min.dtype
    params, pools0 = model.split(np.asarray(theta_arr, dtype=dtype))

    def run(p, p0, f):
        return simulate(model, p, p0, f)

    if n_sites is not None:
        run = jax.vmap(run)
    log.info(
        "simulating %s (%s, water stress %s) over %d steps%s",
        model.name,
        model.mode,
        water_stress_option(model),
        forcing_ds.sizes[TIME_DIM],
        f" at {n_sites} sites" if n_sites is not None else "",
    )
    outputs = jax.jit(run)(params, pools0, forcing)

    dims = (SITE_DIM, TIME_DIM) if n_sites is not None else (TIME_DIM,)
    info = output_info(model)
    data_vars = {}
    for name, values in zip(outputs._fields, outputs, strict=True):
        units, long_name = info[name]
        data_vars[name] = (dims, np.asarray(values), {"units": units, "long_name": long_name})
    bad = [k for k, (_, v, _) in data_vars.items() if not np.all(np.isfinite(v))]
    if bad:
        log.warning("non-finite values in the simulated outputs: %s", ", ".join(bad))

    coords = {TIME_DIM: forcing_ds[TIME_DIM]}
    if n_sites is not None and SITE_DIM in forcing_ds.coords:
        coords[SITE_DIM] = forcing_ds[SITE_DIM]
    for name in ("lat", "lon"):
        if name in forcing_ds.coords and TIME_DIM not in forcing_ds[name].dims:
            coords[name] = forcing_ds[name]
    delta_t = np.asarray(forcing.delta_t).reshape(-1, forcing_ds.sizes[TIME_DIM])[0]
    coords["delta_t"] = (TIME_DIM, delta_t, {"units": "d", "long_name": "step length"})

    ds = xr.Dataset(data_vars, coords=coords)
    ds = ds.merge(_parameters_variable(model, theta_arr, n_sites is not None))
    ds.attrs.update(
        title=f"{model.name} simulation",
        model=model.name,
        mode=model.mode,
        water_stress=water_stress_option(model),
        water_stress_class=type(_water_stress(model)).__name__,
        differland_bayes_version=__version__,
    )
    if "title" in forcing_ds.attrs:
        ds.attrs["forcing_title"] = str(forcing_ds.attrs["title"])
    return ds
