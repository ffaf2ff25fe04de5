"""Check a canonical multi-site dataset (``docs/data-format.md``) before any work is done.

:func:`validate_dataset` looks at everything at once (structure, coordinates, time axis,
forcing, observation streams with their masks and uncertainties, predictors, splits) and
returns a :class:`ValidationReport` listing every :class:`Problem`. A problem is an
``"error"`` when the dataset cannot be used as it is, or a ``"notice"`` when it can (for
example a forcing unit that will be converted, such as K to degC or W m-2 to
MJ m-2 d-1). Neither a file nor an in-memory dataset is ever modified.

Single-site datasets without a ``site`` dimension are accepted and treated as one site.

Examples
--------
>>> report = validate_dataset("sites.nc")  # doctest: +SKIP
>>> print(report)  # doctest: +SKIP
>>> report.raise_if_errors()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from .dataset import SPLIT_SITE_VALUES, SPLIT_TIME, STREAMS, read_dataset
from .units import QUANTITIES, normalise_unit

__all__ = [
    "ERROR",
    "NOTICE",
    "Problem",
    "Severity",
    "ValidationError",
    "ValidationReport",
    "validate_dataset",
]

log = logging.getLogger(__name__)

Severity = Literal["error", "notice"]
ERROR: Severity = "error"  #: the dataset cannot be used until this is fixed
NOTICE: Severity = "notice"  #: the dataset can be used; worth knowing (e.g. a unit conversion)

#: at most this many sites are listed per rule and variable; the rest are summarised
MAX_SITES_PER_RULE = 10
#: at most this many individual time-axis breaks or duplicated ids are listed
MAX_LISTED = 10
SENTINEL = -9999.0  #: fill value that must have become NaN
LAT_NAMES = ("lat", "latitude", "LAT")  #: accepted latitude names, canonical first
TEMPERATURE_RANGE = (-100.0, 70.0)  #: degC, beyond any surface air temperature on Earth
SWRAD_MAX = 50.0  #: MJ m-2 d-1, above the top-of-atmosphere daily maximum (~47)
ROUNDOFF = 1e-6  #: negatives this small are flagged as likely round-off (readers clip them)
DAILY = "daily"
MONTHLY = "monthly"
IN_MEMORY = "<in-memory dataset>"

_SITE_TIME = ("site", "time")


class ValidationError(ValueError):
    """A dataset has errors; ``.report`` holds the full :class:`ValidationReport`."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        lines = [f"{report.source}: {len(report.errors)} error(s)"]
        lines += [f"- {p}" for p in report.errors]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Problem:
    """One finding of :func:`validate_dataset`.

    Attributes
    ----------
    severity : {"error", "notice"}
        ``"error"`` blocks use of the dataset; ``"notice"`` does not.
    variable : str
        The variable, coordinate or attribute concerned (``env[mat]`` for one predictor).
    expected : str
        What the canonical layout asks for.
    found : str
        What the dataset has.
    site : str, optional
        Site identifier where the problem is specific to a site.
    time : str, optional
        Time stamp (ISO date) of the first occurrence, where relevant.
    rule : str
        Short stable key of the rule (``"non-finite"``, ``"time-step"``, ...).
    """

    severity: Severity
    variable: str
    expected: str
    found: str
    site: str | None = None
    time: str | None = None
    rule: str = ""

    def __str__(self) -> str:
        """``severity: variable [site=..., time=...]: expected ..., found ...``."""
        where = []
        if self.site is not None:
            where.append(f"site={self.site}")
        if self.time is not None:
            where.append(f"time={self.time}")
        loc = f" [{', '.join(where)}]" if where else ""
        return (
            f"{self.severity}: {self.variable}{loc}: expected {self.expected}, found {self.found}"
        )


@dataclass(frozen=True)
class ValidationReport:
    """Everything :func:`validate_dataset` found.

    Attributes
    ----------
    problems : tuple of Problem
        Errors and notices in the order they were found.
    source : str
        The path that was checked, or ``"<in-memory dataset>"``.
    n_sites : int
        Number of sites (1 for a dataset without a ``site`` dimension).
    n_times : int
        Number of time steps.
    step : {"daily", "monthly"} or None
        Time step, when it could be established.
    """

    problems: tuple[Problem, ...]
    source: str = IN_MEMORY
    n_sites: int = 0
    n_times: int = 0
    step: str | None = None

    @property
    def errors(self) -> list[Problem]:
        """Problems that block use of the dataset."""
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def notices(self) -> list[Problem]:
        """Problems that do not block use (conversions, ignored variables, ...)."""
        return [p for p in self.problems if p.severity == NOTICE]

    @property
    def ok(self) -> bool:
        """True when there is no error (notices allowed)."""
        return not self.errors

    def header(self) -> str:
        """One line naming the dataset and its size."""
        step = f" {self.step}" if self.step else ""
        return f"{self.source}: {self.n_sites} site(s) x {self.n_times}{step} time step(s)"

    def lines(self, *, notices: bool = True) -> list[str]:
        """One line per problem (errors first), optionally without the notices."""
        out = [str(p) for p in self.errors]
        if notices:
            out += [str(p) for p in self.notices]
        return out

    def summary(self) -> str:
        """Return the final one-line verdict with the counts."""
        counts = f"{_plural(len(self.errors), 'error')}, {_plural(len(self.notices), 'notice')}"
        if self.ok:
            return f"{self.source}: OK, the dataset can be used ({counts})"
        return f"{self.source}: INVALID, fix the errors before use ({counts})"

    def __str__(self) -> str:
        """Readable multi-line report: header, one line per problem, summary."""
        return "\n".join([self.header(), *self.lines(), self.summary()])

    def raise_if_errors(self) -> None:
        """Raise :class:`ValidationError` listing the errors, if there are any."""
        if not self.ok:
            raise ValidationError(self)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _unit_status(units: object, quantity: str) -> tuple[str, Callable[[np.ndarray], np.ndarray]]:
    """Classify a ``units`` attribute for a quantity of :data:`units.QUANTITIES`.

    Returns ``(status, to_canonical)`` with status ``"ok"``, ``"convert"``, ``"missing"``
    or ``"unknown"``; unlike :func:`units.convert` this neither logs nor raises.
    """
    q = QUANTITIES[quantity]
    if units is None:
        return "missing", _identity
    key = normalise_unit(str(units))
    if key in {normalise_unit(a) for a in (q.canonical, *q.aliases)}:
        return "ok", _identity
    for src, fn in q.conversions.items():
        if key == normalise_unit(src):
            return "convert", fn
    return "unknown", _identity


def _identity(x: np.ndarray) -> np.ndarray:
    return x


def _stream_unit_spellings(canonical: str) -> set[str]:
    """Normalised spellings equivalent to a stream's canonical unit (no conversion)."""
    key = normalise_unit(canonical)
    out = {key}
    for q in QUANTITIES.values():
        if normalise_unit(q.canonical) == key:
            out |= {normalise_unit(a) for a in q.aliases}
    return out


def _fmt(v: object) -> str:
    if isinstance(v, float | np.floating):
        return f"{float(v):.6g}"
    return str(v)


class _Checker:
    """Collects problems while walking one dataset (never modifies it)."""

    def __init__(self, ds: xr.Dataset) -> None:
        self.ds = ds
        self.problems: list[Problem] = []
        self.has_site = "site" in ds.dims
        self.n_sites = int(ds.sizes["site"]) if self.has_site else 1
        self.n_times = int(ds.sizes.get("time", 0))
        self.step: str | None = None
        self._site_labels: list[str] | None = None
        if self.has_site and "site" in ds.coords and ds["site"].ndim == 1:
            self._site_labels = [str(s) for s in ds["site"].values]
        self.single_site: str | None = None
        if not self.has_site and "site" in ds.coords and ds["site"].ndim == 0:
            self.single_site = str(ds["site"].values)
        self._time_values: np.ndarray | None = None
        if "time" in ds.coords and ds["time"].ndim == 1:
            self._time_values = ds["time"].values

    # -- recording ------------------------------------------------------------------------
    def add(
        self,
        severity: Severity,
        variable: str,
        expected: str,
        found: str,
        *,
        rule: str,
        site: str | None = None,
        time: str | None = None,
    ) -> None:
        self.problems.append(Problem(severity, variable, expected, found, site, time, rule))

    def error(self, variable: str, expected: str, found: str, **kw: str | None) -> None:
        self.add(ERROR, variable, expected, found, **kw)  # type: ignore[arg-type]

    def notice(self, variable: str, expected: str, found: str, **kw: str | None) -> None:
        self.add(NOTICE, variable, expected, found, **kw)  # type: ignore[arg-type]

    def site_label(self, i: int | None) -> str | None:
        if i is None:
            return self.single_site
        if self._site_labels is not None:
            return self._site_labels[i]
        return f"#{i}"

    def time_label(self, j: int) -> str:
        t = self._time_values
        if t is None:
            return f"#{j}"
        v = t[j]
        if np.issubdtype(t.dtype, np.datetime64):
            if np.isnat(v):
                return "NaT"
            ts = pd.Timestamp(v)
            return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.isoformat()
        return str(v)

    def report(
        self,
        rule: str,
        variable: str,
        bad: np.ndarray,
        dims: Sequence[str],
        expected: str,
        found_at: Callable[[tuple[int, ...]], str],
        *,
        severity: Severity = ERROR,
    ) -> None:
        """Record positions where ``bad`` is True: one problem per site (first time shown).

        ``bad`` has dimensions ``dims`` (a subset of site, time); ``found_at`` describes
        the value at a full index into ``bad``.
        """
        bad = np.asarray(bad, bool)
        if not bad.any():
            return
        dims = tuple(dims)
        if "site" in dims:
            ax = dims.index("site")
            per_site = np.moveaxis(bad, ax, 0).reshape(bad.shape[ax], -1).sum(axis=1)
            sites: list[int | None] = [int(i) for i in np.flatnonzero(per_site)]
        else:
            ax = -1
            per_site = np.array([bad.sum()])
            sites = [None]
        for k, i in enumerate(sites):
            if k == MAX_SITES_PER_RULE:
                rest = sites[k:]
                n_rest = int(sum(per_site[j] for j in rest if j is not None))
                self.add(
                    severity,
                    variable,
                    expected,
                    f"the same at {len(rest)} more sites ({n_rest} values)",
                    rule=rule,
                )
                break
            sub = bad if i is None else np.take(bad, i, axis=ax)
            first = tuple(int(x) for x in np.argwhere(sub)[0])
            full = first if i is None else first[:ax] + (i,) + first[ax:]
            n = int(sub.sum())
            found = found_at(full)
            if n > 1:
                found += f" (and {n - 1} more" + (" at this site)" if i is not None else ")")
            time = self.time_label(full[dims.index("time")]) if "time" in dims else None
            self.add(
                severity, variable, expected, found, rule=rule, site=self.site_label(i), time=time
            )

    # -- helpers --------------------------------------------------------------------------
    def check_dims(
        self,
        name: str,
        da: xr.DataArray,
        allowed: tuple[str, ...],
        required: tuple[str, ...] = (),
    ) -> bool:
        """Error unless ``da.dims`` are among ``allowed`` and include ``required``."""
        dims = tuple(str(d) for d in da.dims)
        required = tuple(r for r in required if r != "site" or self.has_site)
        if set(dims) <= set(allowed) and set(required) <= set(dims):
            return True
        want = " x ".join(d for d in allowed if d != "site" or self.has_site) or "a scalar"
        self.error(
            name,
            f"dimensions {want}" + (" (some may be left out)" if required != allowed else ""),
            f"dimensions {dims or '()'}",
            rule="dims",
        )
        return False

    def numeric(self, name: str, da: xr.DataArray) -> np.ndarray | None:
        """Values in canonical (site, time) order as float, or None (error) if not numeric."""
        if not (np.issubdtype(da.dtype, np.number) or da.dtype == bool):
            self.error(name, "numeric values", f"dtype {da.dtype}", rule="dtype")
            return None
        order = [d for d in _SITE_TIME if d in da.dims]
        return np.asarray(da.transpose(*order).values, dtype=float)

    @staticmethod
    def dims_of(da: xr.DataArray) -> tuple[str, ...]:
        return tuple(d for d in _SITE_TIME if d in da.dims)


# -- structure ------------------------------------------------------------------------------
def _check_sites(c: _Checker) -> None:
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


def _check_time(c: _Checker) -> None:
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


def _check_latitude(c: _Checker) -> None:
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
    status, _ = _unit_status(da.attrs.get("units"), "latitude")
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
        lambda i: _fmt(values[i]),
    )


def _check_longitude(c: _Checker) -> None:
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
        lambda i: _fmt(values[i]),
    )


# -- forcing --------------------------------------------------------------------------------
def _check_forcing(c: _Checker, forcing_variables: dict[str, tuple[str, bool, str]]) -> None:
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
        if not c.check_dims(name, da, _SITE_TIME, required=("time",)):
            continue
        units = da.attrs.get("units")
        status, to_canonical = _unit_status(units, quantity)
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
        c.report(
            "non-finite",
            name,
            ~finite,
            dims,
            "finite values (forcing has no gaps)",
            lambda i, v=raw: _fmt(v[i]),
        )
        sentinel = raw == SENTINEL
        c.report(
            "sentinel",
            name,
            sentinel,
            dims,
            "no fill values (forcing has no gaps)",
            lambda i: f"the fill value {SENTINEL:g}",
        )
        if status in ("missing", "unknown"):
            continue  # physical checks need known units
        valid = finite & ~sentinel
        v = np.where(valid, to_canonical(raw), np.nan)
        converted[name] = (v, dims)
        _check_physical(c, name, quantity, v, valid, dims)
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
            lambda i: f"t_min {_fmt(av[i])} > t_max {_fmt(bv[i])} degC",
        )


def _check_physical(
    c: _Checker,
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
        text = f"{_fmt(v[i])} {unit}"
        if -ROUNDOFF <= v[i] < 0:
            text += f" (round-off? values in [-{ROUNDOFF:g}, 0) can be set to 0 before use)"
        return text

    c.report(rule, name, bad, dims, expected, found)


# -- observations ---------------------------------------------------------------------------
def _check_streams(c: _Checker) -> None:
    ds = c.ds
    for s, info in STREAMS.items():
        mask_name, unc_name = f"{s}_mask", f"{s}_unc"
        if s not in ds.data_vars:
            for extra in (mask_name, unc_name):
                if extra in ds.data_vars:
                    c.error(
                        extra,
                        f"the stream {s!r} alongside it",
                        f"{extra} without {s}",
                        rule="orphan",
                    )
            continue
        da = ds[s]
        if not c.check_dims(s, da, _SITE_TIME, required=_SITE_TIME):
            continue
        units = da.attrs.get("units")
        if units is None:
            c.error(s, f"a units attribute ({info.units!r})", "none", rule="missing-units")
        elif normalise_unit(str(units)) not in _stream_unit_spellings(info.units):
            c.error(
                s,
                f"units {info.units!r} (observation streams are not converted)",
                repr(units),
                rule="unknown-units",
            )
        values = c.numeric(s, da)
        if values is None:
            continue
        dims = c.dims_of(da)
        finite = np.isfinite(values)
        c.report(
            "non-finite",
            s,
            np.isinf(values),
            dims,
            "finite values or NaN where not observed",
            lambda i, v=values: _fmt(v[i]),
        )
        c.report(
            "sentinel",
            s,
            values == SENTINEL,
            dims,
            "NaN where not observed",
            lambda i: f"the fill value {SENTINEL:g}",
        )
        observed = finite & (values != SENTINEL)
        if mask_name in ds.data_vars:
            mask = _check_mask(c, s, mask_name, values, dims)
            if mask is not None:
                observed = observed & mask
        else:
            c.notice(
                mask_name,
                f"a mask of the observed values of {s}",
                "none (isfinite will be used)",
                rule="missing-mask",
            )
        if not observed.any():
            c.error(
                s,
                "at least one observation",
                "none (all values NaN or masked out)",
                rule="no-observations",
            )
        elif "site" in dims:
            empty = np.flatnonzero(~observed.any(axis=dims.index("time")))
            if len(empty):
                names = [str(c.site_label(int(i))) for i in empty[:MAX_LISTED]]
                more = f" and {len(empty) - MAX_LISTED} more" if len(empty) > MAX_LISTED else ""
                c.notice(
                    s,
                    "observations at every site",
                    f"none at {len(empty)} site(s): {', '.join(names)}{more}",
                    rule="site-without-observations",
                )
        if unc_name in ds.data_vars:
            _check_uncertainty(c, s, unc_name, info.units, observed, dims)


def _check_mask(
    c: _Checker, s: str, mask_name: str, values: np.ndarray, dims: tuple[str, ...]
) -> np.ndarray | None:
    """Check ``<stream>_mask``; return it as bool aligned with ``values`` (or None)."""
    da = c.ds[mask_name]
    if not c.check_dims(mask_name, da, _SITE_TIME, required=_SITE_TIME):
        return None
    m = c.numeric(mask_name, da)
    if m is None:
        return None
    mdims = c.dims_of(da)
    m = np.asarray(
        xr.DataArray(m, dims=mdims)
        .broadcast_like(xr.DataArray(values, dims=dims))
        .transpose(*dims)
        .values
    )
    bad = ~np.isin(m, (0.0, 1.0))
    c.report(
        "mask-values",
        mask_name,
        bad,
        dims,
        "boolean values (True where observed)",
        lambda i: _fmt(m[i]),
    )
    mask = np.where(bad, False, m == 1.0)
    c.report(
        "mask-nan-observed",
        mask_name,
        mask & ~np.isfinite(values),
        dims,
        f"False where {s} is NaN (a NaN is never observed)",
        lambda i: f"True where {s} is {_fmt(values[i])}",
    )
    return mask


def _check_uncertainty(
    c: _Checker,
    s: str,
    unc_name: str,
    units: str,
    observed: np.ndarray,
    dims: tuple[str, ...],
) -> None:
    da = c.ds[unc_name]
    if not c.check_dims(unc_name, da, _SITE_TIME):
        return
    u_units = da.attrs.get("units")
    if u_units is None:
        c.notice(
            unc_name,
            f"units {units!r} (those of {s})",
            "no units attribute (assumed)",
            rule="missing-units",
        )
    elif normalise_unit(str(u_units)) not in _stream_unit_spellings(units):
        c.error(unc_name, f"units {units!r} (those of {s})", repr(u_units), rule="unknown-units")
    u = c.numeric(unc_name, da)
    if u is None:
        return
    udims = c.dims_of(da)
    u = np.asarray(
        xr.DataArray(u, dims=udims)
        .broadcast_like(xr.DataArray(observed, dims=dims))
        .transpose(*dims)
        .values
    )
    with np.errstate(invalid="ignore"):
        c.report(
            "negative-uncertainty",
            unc_name,
            u < 0,
            dims,
            "uncertainties >= 0 (one standard deviation)",
            lambda i: _fmt(u[i]),
        )
        c.report(
            "non-finite",
            unc_name,
            np.isinf(u),
            dims,
            "finite uncertainties",
            lambda i: _fmt(u[i]),
        )
        c.report(
            "zero-uncertainty",
            unc_name,
            observed & (u == 0),
            dims,
            f"uncertainties > 0 where {s} is observed",
            lambda i: _fmt(u[i]),
            severity=NOTICE,
        )
        missing = observed & np.isnan(u)
        if missing.any():
            c.notice(
                unc_name,
                f"an uncertainty wherever {s} is observed",
                f"{int(missing.sum())} observed value(s) without one",
                rule="missing-uncertainty",
            )


# -- predictors and splits ------------------------------------------------------------------
def _check_env(c: _Checker) -> None:
    ds = c.ds
    if "env" not in ds.data_vars:
        return
    da = ds["env"]
    if not c.check_dims("env", da, ("site", "feature"), required=("site", "feature")):
        return
    if "feature" in ds.coords:
        features = [str(f) for f in ds["feature"].values]
    else:
        c.error(
            "feature",
            "a 'feature' coordinate naming the predictors",
            "none",
            rule="missing-coordinate",
        )
        features = [f"#{k}" for k in range(da.sizes["feature"])]
    for f in sorted({f for f in features if features.count(f) > 1}):
        c.error(
            "feature",
            "unique predictor names",
            f"{f!r} {features.count(f)} times",
            rule="duplicate-feature",
        )
    if "feature_units" not in ds.coords and "feature_units" not in ds.data_vars:
        c.notice("feature_units", "units of each predictor", "none", rule="missing-units")
    if not np.issubdtype(da.dtype, np.number):
        c.error("env", "numeric values", f"dtype {da.dtype}", rule="dtype")
        return
    order = ("site", "feature") if c.has_site else ("feature",)
    x = np.asarray(da.transpose(*order).values, float)
    if not c.has_site:
        x = x[None, :]
    for k, f in enumerate(features):
        col = x[:, k]
        bad = ~np.isfinite(col)
        c.report(
            "non-finite",
            f"env[{f}]",
            bad if c.has_site else bad[0],
            ("site",) if c.has_site else (),
            "finite predictor values",
            lambda i, col=col: _fmt(col[i[0]] if i else col[0]),
        )
        good = col[~bad]
        if c.n_sites >= 2 and good.size >= 2 and np.ptp(good) == 0:
            c.error(
                f"env[{f}]",
                "predictor values that vary across sites",
                f"the constant {_fmt(good[0])} at all {good.size} sites",
                rule="zero-variance",
            )
    if "vegetation_class" in ds.variables:
        vc = ds["vegetation_class"]
        if c.check_dims("vegetation_class", vc, ("site",)):
            labels = np.atleast_1d(np.asarray(vc.values).astype(str))
            bad = np.isin(np.char.strip(labels), ["", "nan", "None"])
            c.report(
                "missing-class",
                "vegetation_class",
                bad if c.has_site else bad[0],
                ("site",) if c.has_site else (),
                "a class label (IGBP code) for every site",
                lambda i: repr(str(labels[i[0]] if i else labels[0])),
            )


def _check_splits(c: _Checker) -> None:
    ds = c.ds
    allowed_t = sorted(SPLIT_TIME.values())
    if "split_time" in ds.data_vars:
        da = ds["split_time"]
        if c.check_dims("split_time", da, _SITE_TIME, required=("time",)):
            v = c.numeric("split_time", da)
            if v is not None:
                bad = ~np.isin(v, allowed_t)
                names = ", ".join(f"{k} = {n}" for n, k in SPLIT_TIME.items())
                c.report(
                    "split-time-values",
                    "split_time",
                    bad,
                    c.dims_of(da),
                    f"values in {{{names}}}",
                    lambda i: _fmt(v[i]),
                )
                if not (v == SPLIT_TIME["train"]).any():
                    c.notice(
                        "split_time",
                        f"some training steps ({SPLIT_TIME['train']})",
                        "none",
                        rule="no-training",
                    )
    if "split_site" in ds.data_vars or "split_site" in ds.coords:
        da = ds["split_site"]
        if c.check_dims("split_site", da, ("site",)):
            labels = np.atleast_1d(np.asarray(da.values).astype(str))
            bad = ~np.isin(labels, SPLIT_SITE_VALUES)
            c.report(
                "split-site-values",
                "split_site",
                bad if c.has_site else bad[0],
                ("site",) if c.has_site else (),
                f"one of {list(SPLIT_SITE_VALUES)}",
                lambda i: repr(str(labels[i[0]] if i else labels[0])),
            )
            if not bad.any() and "train" not in labels:
                c.notice("split_site", "some 'train' sites", "none", rule="no-training")


def _check_unknown(c: _Checker, forcing_variables: dict[str, tuple[str, bool, str]]) -> None:
    """Notices for data variables the canonical layout does not know (they are ignored)."""
    known = set(forcing_variables) | {"env", "split_time", "split_site", "lon", "feature_units"}
    known |= set(LAT_NAMES) | {"vegetation_class"}
    for s in STREAMS:
        known |= {s, f"{s}_mask", f"{s}_unc"}
    lower = {k.lower(): k for k in known}
    for name in map(str, c.ds.data_vars):
        if name in known:
            continue
        hint = lower.get(name.lower())
        found = f"{name!r}" + (f" (did you mean {hint!r}?)" if hint else "") + ", ignored"
        c.notice(name, "a variable of the canonical layout", found, rule="unknown-variable")


# -- entry point ----------------------------------------------------------------------------
def _open(path: Path) -> xr.Dataset:
    if not path.exists():
        raise FileNotFoundError(f"dataset not found: {path}")
    try:
        return read_dataset(path)
    except (OSError, ValueError, KeyError, TypeError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"cannot read {path}: {reason}") from e


def validate_dataset(ds_or_path: xr.Dataset | str | os.PathLike[str]) -> ValidationReport:
    """Check a dataset against the canonical layout and report every problem at once.

    Parameters
    ----------
    ds_or_path : xarray.Dataset or path
        An in-memory dataset, or the path of a ``.nc`` / ``.zarr`` file (read with
        :func:`differland_bayes.dataset.read_dataset`, read-only). Neither is modified.

    Returns
    -------
    ValidationReport
        Errors (the dataset cannot be used) and notices (it can: e.g. forcing in K or
        W m-2 that will be converted to degC or MJ m-2 d-1, kPa to hPa,
        kg m-2 s-1 to mm d-1).

    Raises
    ------
    FileNotFoundError
        If the path does not exist.
    ValueError
        If the path is not a readable ``.nc`` or ``.zarr`` dataset.

    Notes
    -----
    Checked: required forcing variables (``t_min``, ``t_max`` degC; ``swrad``
    MJ m-2 d-1; ``co2`` ppm; ``vpd`` hPa; ``precip`` mm d-1; optional ``burned_area``),
    their units (missing, unknown or convertible), finiteness and physical range
    (precipitation, radiation, VPD >= 0; CO2 > 0; burned area in [0, 1];
    t_min <= t_max); the ``site``, ``time`` and ``lat`` coordinates (unique site ids;
    time increasing, unique and evenly daily or calendar-monthly; latitude in
    [-90, 90] degrees_north); each observation stream (units, at least one observation,
    masks never marking NaN as observed, uncertainties >= 0); the ``env`` predictors
    (finite, varying across sites); ``split_time`` in {0, 1, 2} and ``split_site`` in
    {train, validation, test}.
    """
    from .forcing import FORCING_VARIABLES  # deferred: the forcing module imports JAX

    if isinstance(ds_or_path, xr.Dataset):
        ds, source = ds_or_path, IN_MEMORY
    else:
        path = Path(ds_or_path)
        ds, source = _open(path), str(path)
    log.debug("validating %s", source)
    c = _Checker(ds)
    _check_sites(c)
    _check_time(c)
    _check_latitude(c)
    _check_longitude(c)
    _check_forcing(c, FORCING_VARIABLES)
    _check_streams(c)
    _check_env(c)
    _check_splits(c)
    _check_unknown(c, FORCING_VARIABLES)
    report = ValidationReport(tuple(c.problems), source, c.n_sites, c.n_times, c.step)
    log.debug(
        "validated %s: %d error(s), %d notice(s)", source, len(report.errors), len(report.notices)
    )
    return report
