"""Each site's own record: the ``site_time_valid`` flag (``docs/data-format.md``).

Sites of one dataset may cover different periods; a reader then puts them on the union
of their time steps and marks each site's steps with ``site_time_valid`` (bool,
``site x time``). Outside a site's record its forcing may be NaN, its masks must be
False and its ``split_time`` should be 0; the other rule modules ask
:meth:`Checker.in_record <differland_bayes.validate.checker.Checker.in_record>` where
the record lies. A dataset without the flag is valid at every step.
"""

from __future__ import annotations

import numpy as np

from ..io._canonical import SITE_TIME_VALID
from .checker import SITE_TIME, Checker

__all__ = ["SITE_TIME_VALID", "check_record"]


def check_record(c: Checker) -> None:
    """Check ``site_time_valid`` and, if usable, set ``c.record`` for the other rules.

    It must be bool on ``site x time``; every site needs at least one valid step, and the
    valid steps of a site must be contiguous (one record per site, no holes). A numeric
    flag of only 0 and 1 is an error but still used, so that the forcing and masks are
    judged against it; anything else is ignored (every step counts as valid).
    """
    ds = c.ds
    if SITE_TIME_VALID not in ds.variables:
        return
    name = SITE_TIME_VALID
    da = ds[name]
    if not c.check_dims(name, da, SITE_TIME, required=SITE_TIME):
        return
    expected = "boolean values (True on the steps of each site's record)"
    if da.dtype != bool:
        v = c.numeric(name, da)
        if v is None:
            return
        usable = bool(np.isin(v, (0.0, 1.0)).all())
        how = "0/1, read as False/True" if usable else "values other than 0 and 1, ignored"
        c.error(name, expected, f"dtype {da.dtype} ({how})", rule="dtype")
        if not usable:
            return
        valid = v == 1.0
    else:
        valid = np.asarray(da.transpose(*c.dims_of(da)).values, bool)
    c.record = valid
    per_site = valid if c.has_site else valid[None, :]
    dims = c.dims_of(da)

    empty = ~per_site.any(axis=1)
    c.report(
        "empty-record",
        name,
        empty if c.has_site else empty[0],
        ("site",) if c.has_site else (),
        "at least one valid step per site (True somewhere)",
        lambda i: "False at every time step",
    )
    steps = np.arange(per_site.shape[1])
    first = np.where(empty, 0, np.argmax(per_site, axis=1))
    last = np.where(empty, -1, per_site.shape[1] - 1 - np.argmax(per_site[:, ::-1], axis=1))
    inside = (steps[None, :] > first[:, None]) & (steps[None, :] < last[:, None])
    holes = inside & ~per_site

    def found(i: tuple[int, ...]) -> str:
        k = i[0] if c.has_site else 0
        span = f"{c.time_label(int(first[k]))} to {c.time_label(int(last[k]))}"
        return f"False inside the site's record {span}"

    c.report(
        "record-gap",
        name,
        holes if c.has_site else holes[0],
        dims,
        "one contiguous record per site (True from its first to its last valid step)",
        found,
    )
