"""Forcing variables: presence, units, finiteness and physical range.

Every variable of :data:`differland_bayes.forcing.FORCING_VARIABLES` is checked in the
units the process models use: a missing or unknown unit is an error, a convertible one
(K, W m-2, kPa, kg m-2 s-1) a notice, and the range checks run on converted values.
With ``site_time_valid`` only the steps of each site's record are checked: the forcing
may be NaN (or anything else) outside it.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..units import QUANTITIES
from .checker import SITE_TIME, Checker, fmt
from .unit_rules import unit_status

__all__ = [
    "ROUNDOFF",
    "SENTINEL",
    "SWRAD_MAX",
    "TEMPERATURE_RANGE",
    "check_forcing",
    "check_physical",
]

SENTINEL = -9999.0  #: fill value that must have become NaN
TEMPERATURE_RANGE = (-100.0, 70.0)  #: degC, beyond any surface air temperature on Earth
SWRAD_MAX = 50.0  #: MJ m-2 d-1, above the top-of-atmosphere daily maximum (~47)
ROUNDOFF = 1e-6  #: negatives this small are flagged as likely round-off (readers clip them)


def check_forcing(c: Checker, forcing_variables: dict[str, tuple[str, bool, str]]) -> None:
    """Check each forcing variable: present if required, units, finite, no fill values, range."""
    ds = c.ds
    converted: dict[str, tuple[np.ndarray, tuple[str, ...]]] = {}
    for name, (quantity, required, description) in forcing_variables.items():
        canonical = QUANTITIES[quantity].canonical
        if name not in ds.data_vars:
            if required:
                c.error(
                    name,
                    f"required forcing variable ({description}, {canonical})",
                    "none",
                    rule="missing-variable",
                )
            continue
        da = ds[name]
        if not c.check_dims(name, da, SITE_TIME, required=("time",)):
            continue
        units = da.attrs.get("units")
        status, to_canonical = unit_status(units, quantity)
        accepted = QUANTITIES[quantity].accepted()
        if status == "missing":
            c.error(name, f"a units attribute ({canonical!r})", "none", rule="missing-units")
        elif status == "unknown":
            c.error(
                name,
                f"units {canonical!r} or one of {accepted[1:]}",
                f"{units!r}, which cannot be converted",
                rule="unknown-units",
            )
        elif status == "convert":
            c.notice(
                name,
                f"units {canonical!r}",
                f"{units!r} (will be converted to {canonical!r})",
                rule="convertible-units",
            )
        values = c.numeric(name, da)
        if values is None:
            continue
        dims = c.dims_of(da)
        raw = values
        finite = np.isfinite(raw)
        record = c.in_record(dims)  # outside a site's record anything goes (not used)
        inside = np.ones(raw.shape, bool) if record is None else record
        gaps = "forcing has no gaps" + ("" if record is None else " within a site's record")
        c.report(
            "non-finite",
            name,
            ~finite & inside,
            dims,
            f"finite values ({gaps})",
            lambda i, v=raw: fmt(v[i]),
        )
        sentinel = raw == SENTINEL
        c.report(
            "sentinel",
            name,
            sentinel & inside,
            dims,
            f"no fill values ({gaps})",
            lambda i: f"the fill value {SENTINEL:g}",
        )
        if status in ("missing", "unknown"):
            continue  # physical checks need known units
        valid = finite & ~sentinel & inside
        v = np.where(valid, to_canonical(raw), np.nan)
        converted[name] = (v, dims)
        check_physical(c, name, quantity, v, valid, dims)
    if "t_min" in converted and "t_max" in converted:
        (tmin, dmin), (tmax, dmax) = converted["t_min"], converted["t_max"]
        a = xr.DataArray(tmin, dims=dmin)
        b = xr.DataArray(tmax, dims=dmax)
        a, b = xr.broadcast(a, b)
        dims = c.dims_of(a)
        av = np.asarray(a.transpose(*dims).values)
        bv = np.asarray(b.transpose(*dims).values)
        with np.errstate(invalid="ignore"):
            bad = av > bv
        c.report(
            "t_min>t_max",
            "t_min",
            bad,
            dims,
            "t_min <= t_max",
            lambda i: f"t_min {fmt(av[i])} > t_max {fmt(bv[i])} degC",
        )


def check_physical(
    c: Checker,
    name: str,
    quantity: str,
    v: np.ndarray,
    valid: np.ndarray,
    dims: tuple[str, ...],
) -> None:
    """Impossible values of one forcing variable (``v`` in canonical units, NaN if invalid)."""
    unit = QUANTITIES[quantity].canonical
    with np.errstate(invalid="ignore"):
        if quantity == "temperature":
            lo, hi = TEMPERATURE_RANGE
            rule, bad = "impossible-value", valid & ((v < lo) | (v > hi))
            expected = f"air temperatures in [{lo:g}, {hi:g}] degC (check the units)"
        elif quantity == "radiation":
            rule, bad = "impossible-value", valid & ((v < 0) | (v > SWRAD_MAX))
            expected = f"radiation in [0, {SWRAD_MAX:g}] {unit} (check the units)"
        elif quantity in ("precipitation", "vpd"):
            rule, bad = "impossible-value", valid & (v < 0)
            expected = f"values >= 0 {unit}"
        elif quantity == "co2":
            rule, bad = "impossible-value", valid & (v <= 0)
            expected = f"values > 0 {unit}"
        elif quantity == "fraction":
            rule, bad = "impossible-value", valid & ((v < 0) | (v > 1))
            expected = "a fraction in [0, 1]"
        else:  # pragma: no cover - every forcing quantity is listed above
            return

    def found(i: tuple[int, ...]) -> str:
        text = f"{fmt(v[i])} {unit}"
        if -ROUNDOFF <= v[i] < 0:
            text += f" (round-off? values in [-{ROUNDOFF:g}, 0) can be set to 0 before use)"
        return text

    c.report(rule, name, bad, dims, expected, found)
