"""Observation streams: units, fill values, masks and uncertainties.

For every stream ``X`` of :data:`differland_bayes.dataset.STREAMS` present: its units (not
converted), no ``-9999`` or infinite values, at least one observation, ``X_mask``
boolean and never marking a NaN as observed, ``X_unc`` in the units of ``X`` and >= 0.
With ``site_time_valid`` masks must be False outside each site's record, and a stream
is judged per site within its record.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..dataset import STREAMS
from ..units import normalise_unit
from .checker import MAX_LISTED, SITE_TIME, Checker, fmt
from .forcing_rules import SENTINEL
from .record import SITE_TIME_VALID
from .report import NOTICE
from .unit_rules import stream_unit_spellings

__all__ = ["check_mask", "check_streams", "check_uncertainty"]


def check_streams(c: Checker) -> None:
    """Check each observation stream with its ``X_mask`` and ``X_unc``; orphan masks."""
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
        if not c.check_dims(s, da, SITE_TIME, required=SITE_TIME):
            continue
        units = da.attrs.get("units")
        if units is None:
            c.error(s, f"a units attribute ({info.units!r})", "none", rule="missing-units")
        elif normalise_unit(str(units)) not in stream_unit_spellings(info.units):
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
            lambda i, v=values: fmt(v[i]),
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
        record = c.in_record(dims)
        if mask_name in ds.data_vars:
            mask = check_mask(c, s, mask_name, values, dims)
            if mask is not None:
                observed = observed & mask
        else:
            c.notice(
                mask_name,
                f"a mask of the observed values of {s}",
                "none (isfinite will be used)",
                rule="missing-mask",
            )
            if record is not None:  # the implied mask must be False outside the record too
                c.report(
                    "observed-outside-record",
                    s,
                    observed & ~record,
                    dims,
                    f"NaN where {SITE_TIME_VALID} is False (outside the site's record), "
                    f"or a {mask_name} that is False there",
                    lambda i, v=values, m=mask_name: f"{fmt(v[i])} (observed: no {m})",
                )
        within = ""
        if record is not None:  # judged per site within its own record
            observed = observed & record
            within = " within the sites' records"
        if not observed.any():
            c.error(
                s,
                "at least one observation" + within,
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
                    "observations at every site" + (within and " within its record"),
                    f"none at {len(empty)} site(s): {', '.join(names)}{more}",
                    rule="site-without-observations",
                )
        if unc_name in ds.data_vars:
            check_uncertainty(c, s, unc_name, info.units, observed, dims)


def check_mask(
    c: Checker, s: str, mask_name: str, values: np.ndarray, dims: tuple[str, ...]
) -> np.ndarray | None:
    """Check ``<stream>_mask``; return it as bool aligned with ``values`` (or None)."""
    da = c.ds[mask_name]
    if not c.check_dims(mask_name, da, SITE_TIME, required=SITE_TIME):
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
        lambda i: fmt(m[i]),
    )
    mask = np.where(bad, False, m == 1.0)
    c.report(
        "mask-nan-observed",
        mask_name,
        mask & ~np.isfinite(values),
        dims,
        f"False where {s} is NaN (a NaN is never observed)",
        lambda i: f"True where {s} is {fmt(values[i])}",
    )
    record = c.in_record(dims)
    if record is not None:
        c.report(
            "mask-outside-record",
            mask_name,
            mask & ~record,
            dims,
            f"False where {SITE_TIME_VALID} is False (outside the site's record)",
            lambda i: "True",
        )
    return mask


def check_uncertainty(
    c: Checker,
    s: str,
    unc_name: str,
    units: str,
    observed: np.ndarray,
    dims: tuple[str, ...],
) -> None:
    """Check ``<stream>_unc``: units of the stream, finite, >= 0, present where observed."""
    da = c.ds[unc_name]
    if not c.check_dims(unc_name, da, SITE_TIME):
        return
    u_units = da.attrs.get("units")
    if u_units is None:
        c.notice(
            unc_name,
            f"units {units!r} (those of {s})",
            "no units attribute (assumed)",
            rule="missing-units",
        )
    elif normalise_unit(str(u_units)) not in stream_unit_spellings(units):
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
            lambda i: fmt(u[i]),
        )
        c.report(
            "non-finite",
            unc_name,
            np.isinf(u),
            dims,
            "finite uncertainties",
            lambda i: fmt(u[i]),
        )
        c.report(
            "zero-uncertainty",
            unc_name,
            observed & (u == 0),
            dims,
            f"uncertainties > 0 where {s} is observed",
            lambda i: fmt(u[i]),
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
