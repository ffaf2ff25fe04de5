"""Site predictors and splits: ``env``, ``vegetation_class``, ``split_time``, ``split_site``.

With ``site_time_valid`` a ``split_time`` other than 0 outside a site's record is a
notice (the masks are False there, so such steps never enter a likelihood).
"""

from __future__ import annotations

import numpy as np

from ..dataset import SPLIT_SITE_VALUES, SPLIT_TIME
from .checker import SITE_TIME, Checker, fmt
from .record import SITE_TIME_VALID
from .report import NOTICE

__all__ = ["check_env", "check_splits"]


def check_env(c: Checker) -> None:
    """Check ``env`` (site x feature: finite, named, varying) and ``vegetation_class`` labels."""
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
            lambda i, col=col: fmt(col[i[0]] if i else col[0]),
        )
        good = col[~bad]
        if c.n_sites >= 2 and good.size >= 2 and np.ptp(good) == 0:
            c.error(
                f"env[{f}]",
                "predictor values that vary across sites",
                f"the constant {fmt(good[0])} at all {good.size} sites",
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


def check_splits(c: Checker) -> None:
    """Check ``split_time`` in {0, 1, 2} and ``split_site`` in {train, validation, test}."""
    ds = c.ds
    allowed_t = sorted(SPLIT_TIME.values())
    if "split_time" in ds.data_vars:
        da = ds["split_time"]
        if c.check_dims("split_time", da, SITE_TIME, required=("time",)):
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
                    lambda i: fmt(v[i]),
                )
                dims = c.dims_of(da)
                record = c.in_record(dims)
                inside = np.ones(v.shape, bool) if record is None else record
                c.report(
                    "split-outside-record",
                    "split_time",
                    ~bad & (v != SPLIT_TIME["unused"]) & ~inside,
                    dims,
                    f"{SPLIT_TIME['unused']} (not used) where {SITE_TIME_VALID} is False "
                    "(outside the site's record)",
                    lambda i: fmt(v[i]),
                    severity=NOTICE,
                )
                if not ((v == SPLIT_TIME["train"]) & inside).any():
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
