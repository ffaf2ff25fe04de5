"""Structure of the dataset: the site dimension and ids, the time axis, coordinates.

Also the global ``step`` attribute (it must agree with the time axis) and notices for
data variables the canonical layout does not know (they are ignored).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..dataset import STREAMS
from .checker import MAX_LISTED, Checker, fmt
from .record import SITE_TIME_VALID
from .unit_rules import unit_status

__all__ = [
    "DAILY",
    "LAT_NAMES",
    "MONTHLY",
    "check_latitude",
    "check_longitude",
    "check_sites",
    "check_time",
    "check_unknown",
]

DAILY = "daily"
MONTHLY = "monthly"
LAT_NAMES = ("lat", "latitude", "LAT")  #: accepted latitude names, canonical first


def check_sites(c: Checker) -> None:
    """Check the ``site`` dimension: present (else a single site), non-empty, unique ids."""
    ds = c.ds
    if not c.has_site:
        c.notice(
            "site",
            "a 'site' dimension",
            "none; the dataset is treated as a single site",
            rule="single-site",
        )
        return
    if c.n_sites == 0:
        c.error("site", "at least one site", "an empty 'site' dimension", rule="empty")
    if "site" not in ds.coords:
        c.error(
            "site",
            "a 'site' coordinate with the site identifiers",
            "a 'site' dimension without coordinate values",
            rule="missing-coordinate",
        )
        return
    ids = pd.Index([str(s) for s in ds["site"].values])
    for k, s in enumerate(sorted(set(ids[ids.duplicated()]))):
        if k == MAX_LISTED:
            c.error("site", "unique site identifiers", "more duplicates", rule="duplicate-site")
            break
        c.error(
            "site",
            "unique site identifiers",
            f"{s!r} {int((ids == s).sum())} times",
            rule="duplicate-site",
            site=s,
        )
    for i, s in enumerate(ids):
        if s.strip() in ("", "nan", "None"):
            c.error("site", "a non-empty identifier", repr(s), rule="site-id", site=f"#{i}")


def check_time(c: Checker) -> None:
    """Check the time axis: datetime64, increasing, unique, evenly daily or monthly."""
    ds = c.ds
    if "time" not in ds.dims and "time" not in ds.coords:
        c.error(
            "time",
            "a 'time' dimension and coordinate (datetime64)",
            "none",
            rule="missing-coordinate",
        )
        return
    if "time" not in ds.coords:
        c.error(
            "time",
            "a 'time' coordinate (datetime64)",
            "a 'time' dimension without coordinate values",
            rule="missing-coordinate",
        )
        return
    t = ds["time"].values
    if t.ndim != 1:
        c.error("time", "a 1-d time coordinate", f"{t.ndim} dimensions", rule="dims")
        return
    if not np.issubdtype(t.dtype, np.datetime64):
        c.error(
            "time",
            "datetime64 values (CF-encoded, e.g. units 'days since 2001-01-01')",
            f"dtype {t.dtype}",
            rule="time-dtype",
        )
        return
    nat = np.isnat(t)
    if nat.any():
        j = int(np.flatnonzero(nat)[0])
        c.error("time", "valid time stamps", f"{int(nat.sum())} NaT", rule="time-nat", time=f"#{j}")
        return
    if len(t) < 2:
        c.error("time", "at least 2 time steps", f"{len(t)}", rule="time-length")
        return
    idx = pd.DatetimeIndex(t)
    d = np.diff(t).astype("timedelta64[s]").astype(float) / 86400.0
    order_ok = True
    back = np.flatnonzero(d < 0)
    for k, j in enumerate(back):
        if k == MAX_LISTED:
            c.error(
                "time",
                "increasing time stamps",
                f"{len(back) - k} more steps backwards",
                rule="time-order",
            )
            break
        c.error(
            "time",
            "increasing time stamps",
            f"{c.time_label(j + 1)} after {c.time_label(j)}",
            rule="time-order",
            time=c.time_label(j + 1),
        )
        order_ok = False
    dupes = idx[idx.duplicated()].unique()
    for k, v in enumerate(dupes):
        if k == MAX_LISTED:
            c.error(
                "time",
                "unique time stamps",
                f"{len(dupes) - k} more duplicates",
                rule="time-duplicate",
            )
            break
        j = int(np.flatnonzero(idx == v)[0])
        c.error(
            "time",
            "unique time stamps",
            f"{c.time_label(j)} {int((idx == v).sum())} times",
            rule="time-duplicate",
            time=c.time_label(j),
        )
        order_ok = False
    if not order_ok:
        return
    median = float(np.median(d))
    if median == 1.0:
        kind = DAILY
        breaks = np.flatnonzero(d != 1.0)
        expected = "daily steps of 1 d"
    elif 28.0 <= median <= 31.0:
        kind = MONTHLY
        month = idx.year * 12 + idx.month
        breaks = np.flatnonzero(np.diff(np.asarray(month)) != 1)
        expected = "consecutive calendar months"
    else:
        c.error(
            "time",
            "daily (1 d) or calendar-monthly steps",
            f"a typical step of {median:g} d",
            rule="time-step",
        )
        return
    for k, j in enumerate(breaks):
        if k == MAX_LISTED:
            c.error("time", expected, f"{len(breaks) - k} more uneven steps", rule="time-step")
            break
        c.error(
            "time",
            expected,
            f"a step of {d[j]:g} d from {c.time_label(j)} to {c.time_label(j + 1)}",
            rule="time-step",
            time=c.time_label(j + 1),
        )
    if kind == MONTHLY and not (idx.day == 1).all():
        j = int(np.flatnonzero(idx.day != 1)[0])
        c.notice(
            "time",
            "monthly time stamps on the first day of each month",
            f"day {idx.day[j]} of the month",
            rule="time-stamp",
            time=c.time_label(j),
        )
    if len(breaks) == 0:
        c.step = kind
    attr = ds.attrs.get("step")
    if attr is not None and str(attr) != kind:
        c.error(
            "step (global attribute)",
            f"{kind!r}, as the time axis shows",
            repr(attr),
            rule="step-attribute",
        )


def check_latitude(c: Checker) -> None:
    """Check the latitude per site: present, named ``lat``, degrees_north, in [-90, 90]."""
    ds = c.ds
    name = next((n for n in LAT_NAMES if n in ds.variables), None)
    if name is None:
        c.error(
            "lat",
            "a 'lat' coordinate (per site, degrees_north)",
            "none",
            rule="missing-coordinate",
        )
        return
    if name != "lat":
        c.notice("lat", "the name 'lat'", f"latitude as {name!r}", rule="name")
    da = ds[name]
    if not c.check_dims(name, da, ("site",)):
        return
    status, _ = unit_status(da.attrs.get("units"), "latitude")
    if status == "missing":
        c.notice(
            name, "units 'degrees_north'", "no units attribute (assumed)", rule="missing-units"
        )
    elif status != "ok":
        c.error(name, "units 'degrees_north'", repr(da.attrs.get("units")), rule="unknown-units")
        return
    values = c.numeric(name, da)
    if values is None:
        return
    bad = ~np.isfinite(values) | (np.abs(values) > 90)
    c.report(
        "lat-range",
        name,
        bad,
        c.dims_of(da),
        "finite values in [-90, 90]",
        lambda i: fmt(values[i]),
    )


def check_longitude(c: Checker) -> None:
    """Check the longitude per site, if present: finite, in [-180, 360]."""
    ds = c.ds
    if "lon" not in ds.variables:
        return
    da = ds["lon"]
    if not c.check_dims("lon", da, ("site",)):
        return
    values = c.numeric("lon", da)
    if values is None:
        return
    bad = ~np.isfinite(values) | (values < -180) | (values > 360)
    c.report(
        "lon-range",
        "lon",
        bad,
        c.dims_of(da),
        "finite values in [-180, 360]",
        lambda i: fmt(values[i]),
    )


#: variables of synthetic worlds that store the known truth (docs/data-format.md)
TRUTH_PREFIXES = ("true_", "relationship_", "baseline_z")


def check_unknown(c: Checker, forcing_variables: dict[str, tuple[str, bool, str]]) -> None:
    """Notices for data variables the canonical layout does not know (they are ignored)."""
    known = set(forcing_variables) | {"env", "split_time", "split_site", "lon", "feature_units"}
    known |= set(LAT_NAMES) | {"vegetation_class", SITE_TIME_VALID}
    for s in STREAMS:
        known |= {s, f"{s}_mask", f"{s}_unc"}
    lower = {k.lower(): k for k in known}
    for name in map(str, c.ds.data_vars):
        if name in known or name.startswith(TRUTH_PREFIXES):
            continue
        hint = lower.get(name.lower())
        found = f"{name!r}" + (f" (did you mean {hint!r}?)" if hint else "") + ", ignored"
        c.notice(name, "a variable of the canonical layout", found, rule="unknown-variable")
