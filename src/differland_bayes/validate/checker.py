"""The collector shared by the rule modules: records problems while walking one dataset.

:class:`Checker` holds the dataset, its size and labels, and turns boolean "bad" arrays
into :class:`~differland_bayes.validate.report.Problem` entries (one per site, the first
time shown, at most :data:`MAX_SITES_PER_RULE` sites listed). It never modifies the
dataset.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from .report import ERROR, NOTICE, Problem, Severity

__all__ = ["MAX_LISTED", "MAX_SITES_PER_RULE", "SITE_TIME", "Checker", "fmt"]

#: at most this many sites are listed per rule and variable; the rest are summarised
MAX_SITES_PER_RULE = 10
#: at most this many individual time-axis breaks or duplicated ids are listed
MAX_LISTED = 10
#: canonical order of the dimensions of per-site time series
SITE_TIME = ("site", "time")


def fmt(v: object) -> str:
    """Short text of a value for a message (floats with 6 significant digits)."""
    if isinstance(v, float | np.floating):
        return f"{float(v):.6g}"
    return str(v)


class Checker:
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
        #: each site's record (``site_time_valid``) as bool, ``site x time`` (``time``
        #: without a site dimension); None when every step is valid. Set by
        #: :func:`~differland_bayes.validate.record.check_record`.
        self.record: np.ndarray | None = None

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
        """Record one problem."""
        self.problems.append(Problem(severity, variable, expected, found, site, time, rule))

    def error(self, variable: str, expected: str, found: str, **kw: str | None) -> None:
        """Record an error (keywords as :meth:`add`)."""
        self.add(ERROR, variable, expected, found, **kw)  # type: ignore[arg-type]

    def notice(self, variable: str, expected: str, found: str, **kw: str | None) -> None:
        """Record a notice (keywords as :meth:`add`)."""
        self.add(NOTICE, variable, expected, found, **kw)  # type: ignore[arg-type]

    def site_label(self, i: int | None) -> str | None:
        """Return the identifier of site ``i`` (``#i`` without site coordinate)."""
        if i is None:
            return self.single_site
        if self._site_labels is not None:
            return self._site_labels[i]
        return f"#{i}"

    def time_label(self, j: int) -> str:
        """Return the ISO date of time step ``j`` (``#j`` without time coordinate)."""
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
        order = [d for d in SITE_TIME if d in da.dims]
        return np.asarray(da.transpose(*order).values, dtype=float)

    def in_record(self, dims: Sequence[str]) -> np.ndarray | None:
        """Return the record flag for an array with ``dims``, or None if every step is valid.

        A time-only array (``co2``) is in the record where any site is.
        """
        if self.record is None or "time" not in dims:
            return None
        if self.has_site and "site" not in dims:
            return self.record.any(axis=0)
        return self.record

    @staticmethod
    def dims_of(da: xr.DataArray) -> tuple[str, ...]:
        """Return the (site, time) dimensions of ``da``, in canonical order."""
        return tuple(d for d in SITE_TIME if d in da.dims)
