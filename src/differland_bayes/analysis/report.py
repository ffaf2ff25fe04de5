"""``differland report``: diagnostics of a run as CSV tables and one HTML page.

:func:`build_report` gets the run's DataTree (reads ``DIR/datatree.nc`` when it belongs
to the same fit and settings, else builds it with :func:`~.datatree.to_datatree` and
stores it there), runs the sections of :data:`REPORT_SECTIONS` and writes, into ``DIR``
(default ``RUN_DIR/report``), one CSV per table and ``report.html`` with the figures
embedded as base64 PNG. Every file is written atomically; existing ones are refused
unless ``overwrite`` (checked before anything is written; ``report.html`` before the
DataTree is even built).

A section is a function ``DataTree -> Section`` (or ``-> (figures, tables)``, two
mappings name -> Figure / DataFrame). Adding one is one line::

    REPORT_SECTIONS.append(("Trait–environment: partial dependence", partial_dependence))

A section that fails is reported on the page (and in the log) instead of its content;
the others are still written.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from ..bayes.likelihood import NOISE_SITE_PREFIXES
from ..io.atomic import atomic_path, check_can_write
from .compare import write_table
from .datatree import read_datatree, run_fingerprint, to_datatree, write_datatree
from .diagnostics import SPLITS, pit_values, predictive_scores, site_scores, streams_of
from .html import Section, render_html, slug
from .loo import loo_pit_values, loo_table
from .maps import maps_section
from .plots import (
    plot_loss,
    plot_pit_histograms,
    plot_predicted_vs_observed,
    plot_predictive_timeseries,
)
from .trait_sections import TRAIT_SECTIONS

__all__ = [
    "DATATREE_FILE",
    "REPORT_FILE",
    "REPORT_SECTIONS",
    "Report",
    "Section",
    "SectionBuilder",
    "build_report",
    "datatree_for_run",
]

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"
DATATREE_FILE = "datatree.nc"
SectionBuilder = Callable[[xr.DataTree], "Section | tuple[Mapping[str, Figure], Mapping]"]


# --------------------------------------------------------------------------- sections


def run_section(dt: xr.DataTree) -> Section:
    """Run metadata, the loss trace and the posterior of the parameters."""
    post = dt["posterior"]
    p = post["parameters"]
    q = p.quantile([0.05, 0.5, 0.95], dim=["sample", "site"])
    table = pd.DataFrame({
        "parameter": post["parameter"].values,
        "units": post["parameter_units"].values,
        "lower": post["parameter_lower"].values,
        "upper": post["parameter_upper"].values,
        "q05": q.sel(quantile=0.05).values,
        "median": q.sel(quantile=0.5).values,
        "q95": q.sel(quantile=0.95).values,
        "sigma_median": post["sigma"].median("sample").values,
    })  # fmt: skip
    noise = {
        k: float(v.median()) for k, v in post.data_vars.items() if k.startswith(NOISE_SITE_PREFIXES)
    }
    text = (
        f"Process model {dt.attrs.get('process')}, guide {dt.attrs.get('guide')}, "
        f"{dt.attrs.get('num_samples')} posterior draws (seed {dt.attrs.get('seed')}). "
        "Parameter quantiles pool the draws of every site; sigma is the residual sd of the "
        "unconstrained parameters around the network's prediction."
    )
    if noise:
        text += " Learned noise sd (median): " + ", ".join(f"{k} {v:.3g}" for k, v in noise.items())
    return Section("Run", text, {"loss trace": plot_loss(dt)}, {"parameters": table})


def scores_section(dt: xr.DataTree) -> Section:
    """Predictive scores per stream, site group and period, and per site."""
    text = (
        "Point prediction: posterior predictive mean; intervals: central 50 % and 90 % of "
        "the predictive draws (with observation noise). Periods: assimilated "
        "(split_time == 1), withheld (split_time == 2), held-out months (the last "
        "assimilated steps of a fitted site, kept out of the likelihood for early stopping "
        "by data.holdout = 'months'). Sites: fitted, heldout (held out "
        "for early stopping: their observations were not in the likelihood), unseen (not "
        "in the run: predicted from their environment alone). lpd: mean log predictive "
        "density per observation (nat); pit_ks: Kolmogorov-Smirnov distance of the PIT "
        "values from uniform."
    )
    return Section(
        "Predictive scores", text, tables={"scores": predictive_scores(dt),
                                            "site_scores": site_scores(dt)})  # fmt: skip


def loo_section(dt: xr.DataTree) -> Section:
    """PSIS-LOO ELPD per stream on the observations in the likelihood."""
    text = (
        "PSIS-LOO on the observations that entered the fit's likelihood, with the "
        "variational posterior's draws used as posterior draws (no correction for the "
        "approximation). Observations above the Pareto-k threshold (n_k_bad) have "
        "unreliable estimates."
    )
    return Section("PSIS-LOO", text, tables={"loo": loo_table(dt)})


def pit_section(dt: xr.DataTree) -> Section:
    """PIT histograms of every observation, with LOO-PIT of the fitted ones."""
    pit = {s: pit_values(dt, s).values for s in streams_of(dt)}
    try:
        lpit = loo_pit_values(dt)
    except ValueError as e:  # no observation in the likelihood (e.g. only unseen sites)
        log.info("LOO-PIT skipped: %s", e)
        lpit = None
    text = (
        "PIT = P(y_rep <= y) of each observation under its predictive draws (all observed "
        "entries); LOO-PIT for those in the likelihood. Flat = calibrated; U shape = "
        "intervals too narrow; hump = too wide; slope = bias."
    )
    return Section("Calibration (PIT)", text, {"PIT histograms": plot_pit_histograms(pit, lpit)})


def timeseries_section(dt: xr.DataTree) -> Section:
    """Predictive time series of selected sites, one figure per stream."""
    figs = {f"{s}: posterior predictive time series": plot_predictive_timeseries(dt, s)
            for s in streams_of(dt)}  # fmt: skip
    return Section("Posterior predictive time series", "Bands: 50 % and 90 %.", figs)


def scatter_section(dt: xr.DataTree) -> Section:
    """Predicted vs observed per stream."""
    periods = ", ".join(SPLITS.values())
    return Section(
        "Predicted vs observed", f"Periods: {periods}.",
        {"predicted vs observed": plot_predicted_vs_observed(dt)},
    )  # fmt: skip


#: the report's sections, in order: (title, builder). Trait–environment sections are
#: appended below, one line each.
REPORT_SECTIONS: list[tuple[str, SectionBuilder]] = [
    ("Run", run_section),
    ("Predictive scores", scores_section),
    ("PSIS-LOO", loo_section),
    ("Calibration (PIT)", pit_section),
    ("Posterior predictive time series", timeseries_section),
    ("Predicted vs observed", scatter_section),
    ("Sites on a map", maps_section),
    *TRAIT_SECTIONS,
]


def _run_section(title: str, builder: SectionBuilder, dt: xr.DataTree) -> Section:
    try:
        out = builder(dt)
    except Exception as e:  # a broken section must not lose the rest of the report
        log.warning("report section %r failed: %s", title, e)
        log.debug("details", exc_info=True)
        return Section(title, error=f"{type(e).__name__}: {e}")
    if isinstance(out, Section):
        return out
    figures, tables = out
    return Section(title, figures=dict(figures), tables=dict(tables))


# --------------------------------------------------------------------------- DataTree


def datatree_for_run(
    run_dir: str | os.PathLike,
    path: str | os.PathLike | None,
    *,
    data: xr.Dataset | None = None,
    data_label: str = "training",
    num_samples: int = 200,
    seed: int = 0,
    overwrite: bool = False,
    store: bool = True,
    progress_bar: bool | None = None,
) -> xr.DataTree:
    """Read the run's stored DataTree if it matches, else build (and store) it.

    A stored DataTree matches when its ``run_fingerprint``, ``num_samples``, ``seed``
    and ``data_label`` are those asked for.

    Parameters
    ----------
    run_dir : path-like
        The run directory.
    path : path-like or None
        Where the DataTree is (to be) stored; None: never stored.
    data : xarray.Dataset, optional
        Sites to evaluate (default the run's training data).
    data_label : str
        What ``data`` is (e.g. its path), to recognise a stored DataTree.
    num_samples, seed : int
        Draws and seed.
    overwrite : bool
        Replace a stored DataTree that does not match.
    store : bool
        Write a newly built DataTree to ``path``.
    progress_bar : bool or None
        Progress bar over the draws (None: only on a terminal).

    Raises
    ------
    FileExistsError
        If a stored DataTree does not match and ``overwrite`` is False.
    """
    want = {"run_fingerprint": run_fingerprint(run_dir), "num_samples": int(num_samples),
            "seed": int(seed), "data_label": data_label}  # fmt: skip
    if path is not None and Path(path).exists():
        dt = read_datatree(path)
        have = {k: dt.attrs.get(k) for k in want}
        if {k: (int(v) if k in ("num_samples", "seed") and v is not None else v)
                for k, v in have.items()} == want:  # fmt: skip
            log.info("reusing the DataTree in %s", path)
            return dt
        if store and not overwrite:
            raise FileExistsError(
                f"{path} holds a DataTree of another fit or other settings ({have} instead "
                f"of {want}); pass --overwrite to rebuild it"
            )
    log.info("building the DataTree of %s (%d draws)", run_dir, num_samples)
    t0 = time.perf_counter()
    dt = to_datatree(
        run_dir, data=data, num_samples=num_samples, seed=seed, progress_bar=progress_bar
    )
    dt.attrs["data_label"] = data_label
    log.info("DataTree built in %.1f s", time.perf_counter() - t0)
    if store and path is not None:
        write_datatree(dt, path, overwrite=True)
    return dt


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Report:
    """What :func:`build_report` wrote."""

    html: Path  #: the HTML page
    datatree: Path  #: the stored DataTree
    tables: dict[str, Path]  #: CSV file per table name
    failed: list[str]  #: titles of sections that could not be built


def _meta(dt: xr.DataTree) -> dict[str, Any]:
    keys = ("run_dir", "process", "guide", "inference", "num_samples", "seed", "data_source",
            "differland_bayes_version")  # fmt: skip
    obs = dt["observed_data"]
    fitted = np.asarray(obs["fitted"].values, bool) if "fitted" in obs.coords else None
    meta = {k: dt.attrs.get(k, "") for k in keys}
    meta["sites"] = (f"{obs.sizes['site']} ({int(fitted.sum())} fitted)" if fitted is not None
                     else obs.sizes["site"])  # fmt: skip
    meta["streams"] = ", ".join(streams_of(dt))
    return meta


def build_report(
    run_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    data: xr.Dataset | None = None,
    data_label: str = "training",
    num_samples: int = 200,
    seed: int = 0,
    overwrite: bool = False,
    progress_bar: bool | None = None,
) -> Report:
    """Write the report of a run (module docstring).

    Parameters
    ----------
    run_dir : path-like
        The run directory.
    out : path-like, optional
        Output directory (created); default ``RUN_DIR/report``.
    data : xarray.Dataset, optional
        Sites to evaluate (e.g. with sites the run has not seen); default the run's
        training data.
    data_label : str
        What ``data`` is (shown in the report, identifies the stored DataTree).
    num_samples, seed : int
        Posterior draws and PRNG seed.
    overwrite : bool
        Replace existing report files (and a stored DataTree of other settings).
    progress_bar : bool or None
        Progress bar over the sections (None: only on a terminal).

    Returns
    -------
    Report
        The written paths and the sections that failed.

    Raises
    ------
    FileExistsError
        If report files exist and ``overwrite`` is False (nothing is written).
    FileNotFoundError
        If the run directory is missing or incomplete.
    """
    from tqdm.auto import tqdm

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory not found: {run_dir}")
    out_dir = Path(out) if out is not None else run_dir / "report"
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"--out {out_dir} exists and is not a directory")
    html_path = out_dir / REPORT_FILE
    if out_dir.is_dir():
        check_can_write(html_path, overwrite=overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    dt_path = out_dir / DATATREE_FILE
    dt = datatree_for_run(
        run_dir, dt_path, data=data, data_label=data_label, num_samples=num_samples,
        seed=seed, overwrite=overwrite, progress_bar=progress_bar,
    )  # fmt: skip

    sections: list[Section] = []
    bar = tqdm(REPORT_SECTIONS, desc="report", unit="section",
               disable=None if progress_bar is None else not progress_bar)  # fmt: skip
    for title, builder in bar:
        bar.set_postfix_str(title)
        t0 = time.perf_counter()
        sections.append(_run_section(title, builder, dt))
        log.info("section %r: %.1f s", title, time.perf_counter() - t0)

    csv_names: dict[tuple[int, str], str] = {}
    used: set[str] = set()
    for i, s in enumerate(sections):
        for name in s.tables:
            stem = slug(name) if slug(name) not in used else f"{slug(s.title)}__{slug(name)}"
            used.add(stem)
            csv_names[(i, name)] = f"{stem}.csv"
    targets = [out_dir / n for n in csv_names.values()] + [html_path]
    for path in targets:  # refuse before writing anything
        check_can_write(path, overwrite=overwrite)
    tables: dict[str, Path] = {}
    for (i, name), file in csv_names.items():
        tables[name] = write_table(sections[i].tables[name], out_dir / file, overwrite=overwrite)
    page = render_html(f"differland report: {run_dir.name}", _meta(dt), sections, csv_names)
    with atomic_path(html_path, overwrite=overwrite) as tmp:
        tmp.write_text(page, encoding="utf-8")
    failed = [s.title for s in sections if s.error]
    log.info("report written to %s (%d table(s)%s)", html_path, len(tables),
             f"; failed sections: {failed}" if failed else "")  # fmt: skip
    return Report(html=html_path, datatree=dt_path, tables=tables, failed=failed)
