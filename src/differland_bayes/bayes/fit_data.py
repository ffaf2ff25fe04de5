"""The data of a fit: locate, read, validate and select the dataset a configuration names.

:func:`load_dataset` reads synthetic, FluxVal, the FLUXNET site folder or a canonical
file (relative paths against :func:`data_dir`), validated with
:func:`~differland_bayes.validate.validate_dataset` before use.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import xarray as xr

from ..process.base import AbstractDalec
from .fitconfig import FitConfig
from .hybrid_process import build_process, synthesis_process

__all__ = [
    "DATA_DIR_ENV",
    "DEFAULT_DATA_DIR",
    "DatasetError",
    "data_dir",
    "load_dataset",
    "resolve_source",
]

log = logging.getLogger(__name__)

DATA_DIR_ENV = "DIFFERLAND_DATA_DIR"  #: environment variable naming the data folder
DEFAULT_DATA_DIR = Path("..") / "shared" / "data"  #: data folder without it (from the cwd)
FLUXVAL_FILE = Path("cardamom-fluxval") / "fluxval_monthly.nc"
FLUXVAL_SITES = Path("cardamom-fluxval") / "sites.csv"
FLUXNET_FOLDER = Path("fluxnet-sites")


class DatasetError(ValueError):
    """The dataset of a fit is unusable (validation errors); ``errors`` lists them."""

    def __init__(self, message: str, errors: list[str]) -> None:
        super().__init__(message)
        self.errors = errors


def data_dir() -> Path:
    """Return the data folder: ``$DIFFERLAND_DATA_DIR``, else ``../shared/data`` (cwd)."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else DEFAULT_DATA_DIR


def resolve_source(cfg: FitConfig) -> tuple[str, Path | None]:
    """Return the kind of data source and its path.

    Returns
    -------
    kind : {"synthetic", "fluxval", "fluxnet-sites", "file"}
        The source kind.
    path : Path or None
        The FluxVal file, the FLUXNET site folder or the dataset (relative paths joined
        to :func:`data_dir`); None for synthetic data.
    """
    src = cfg.data.source
    if src == "synthetic":
        return "synthetic", None
    if src == "fluxval":
        return "fluxval", data_dir() / FLUXVAL_FILE
    if src == "fluxnet-sites":
        return "fluxnet-sites", data_dir() / FLUXNET_FOLDER
    path = Path(src).expanduser()
    return "file", path if path.is_absolute() else data_dir() / path


def _missing(path: Path, what: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"data.source: {what} not found: {path} (relative paths are resolved against the "
        f"data folder {data_dir()}; set {DATA_DIR_ENV} to change it)"
    )


def _read_source(cfg: FitConfig, process: AbstractDalec) -> tuple[xr.Dataset, str]:
    kind, path = resolve_source(cfg)
    d = cfg.data
    if kind == "synthetic":
        from ..synthetic import synthesize

        s = d.synthetic
        log.info("data: synthetic world, %d sites x %d years, seed %d", s.sites, s.years, s.seed)
        ds = synthesize(
            s.sites,
            model=synthesis_process(process, cfg.model.water_stress, cfg.model.mode),
            years=s.years,
            seed=s.seed,
            free_parameters=list(s.free_parameters) or None,
            streams=list(s.streams) or None,
            gap_fraction=s.gap_fraction,
        )
        return ds, "synthetic world"
    assert path is not None
    if kind == "fluxval":
        from ..io import read_fluxval

        if not path.is_file():
            raise _missing(path, "CARDAMOM-FluxVal file")
        sites_csv = data_dir() / FLUXVAL_SITES
        log.info("data: CARDAMOM-FluxVal %s", path)
        return read_fluxval(path, sites_csv if sites_csv.is_file() else None), str(path)
    if kind == "fluxnet-sites":
        from ..io import read_fluxnet_sites

        if not path.is_dir():
            raise _missing(path, "FLUXNET site folder")
        monthly = process.name == "dalec993"
        log.info("data: FLUXNET sites in %s (%s, period %s)", path,
                 "monthly" if monthly else "daily", d.period)  # fmt: skip
        ds = read_fluxnet_sites(path, sites=list(d.sites) or None, monthly=monthly, period=d.period)
        return ds, str(path)
    from ..dataset import read_dataset

    if not path.exists():
        raise _missing(path, "dataset")
    log.info("data: %s", path)
    try:
        return read_dataset(path), str(path)
    except (OSError, KeyError, TypeError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"data.source: cannot read {path}: {reason}") from e


def _select_sites(ds: xr.Dataset, cfg: FitConfig) -> xr.Dataset:
    d = cfg.data
    if d.sites and d.source != "fluxnet-sites":
        have = [str(s) for s in ds["site"].values]
        unknown = [s for s in d.sites if s not in have]
        if unknown:
            raise ValueError(f"data.sites: {unknown} not in the dataset (it has {len(have)} sites)")
        ds = ds.sel(site=list(d.sites))
    if d.site_split != "all" and "split_site" in ds:
        keep = np.asarray(ds["split_site"].values).astype(str) == d.site_split
        if not keep.any():
            raise ValueError(
                f"data.site_split: no site has split_site == {d.site_split!r}; use "
                "site_split = 'all' or another split"
            )
        ds = ds.isel(site=np.flatnonzero(keep))
    return ds


def load_dataset(cfg: FitConfig, process: AbstractDalec | None = None) -> tuple[xr.Dataset, str]:
    """Load, validate and select the data of a fit.

    Parameters
    ----------
    cfg : FitConfig
        The configuration (``[data]``, and ``[model]`` for the process model).
    process : AbstractDalec, optional
        The process model; default built from ``cfg.model``.

    Returns
    -------
    ds : xarray.Dataset
        The canonical dataset on the model's time step, reduced to the fitted sites
        (``data.sites``, ``data.site_split``). Daily data are aggregated to months for
        the monthly ``dalec993``. Sites with different records (``site_time_valid``,
        ``data.period = "union"``) are kept as they are: :func:`~.data.pack` fills
        their forcing outside the records (:mod:`.records`) and masks the observations
        there.
    source : str
        Description of the source (the path, or "synthetic world").

    Raises
    ------
    FileNotFoundError
        If the source file or folder does not exist.
    DatasetError
        If the dataset has validation errors (each is logged; the message gives the
        first and the count).
    ValueError
        If the site selection leaves nothing, or ``data.predictors`` names a predictor
        the dataset lacks.
    """
    from ..dataset import check_predictors
    from ..validate import validate_dataset

    if process is None:
        process = _process(cfg)
    ds, source = _read_source(cfg, process)
    report = validate_dataset(ds)
    for p in report.notices:
        log.debug("%s", p)
    if not report.ok:
        for p in report.errors:
            log.error("%s", p)
        first = str(report.errors[0])
        n = len(report.errors)
        hint = f"; 'differland validate {source}' lists them" if cfg.data.source not in (
            "synthetic", "fluxval", "fluxnet-sites") else ""  # fmt: skip
        raise DatasetError(
            f"{source}: the dataset has {n} error{'s' if n != 1 else ''}, refusing to fit "
            f"(first: {first}){hint}",
            [str(p) for p in report.errors],
        )
    log.info(
        "data: %d site(s) x %d %s step(s), valid (%d notice(s))",
        report.n_sites, report.n_times, report.step or "", len(report.notices),
    )  # fmt: skip
    if process.name == "dalec993" and report.step == "daily":
        from ..io import to_monthly

        log.info("data: daily; aggregating to calendar months for dalec993")
        ds = to_monthly(ds)
    ds = _select_sites(ds, cfg)
    ds = derive_configured(ds, cfg)
    if cfg.data.predictors:
        # before anything is packed or fitted: a clear error naming the key
        check_predictors(ds, cfg.data.predictors, key="data.predictors")
        log.info("data: network predictors %s", list(cfg.data.predictors))
    if "site_time_valid" in ds and not bool(ds["site_time_valid"].all()):
        valid = np.asarray(ds["site_time_valid"].transpose("site", "time").values, bool)
        log.info(
            "data: the sites have different records (site_time_valid): %d of %d site-steps "
            "lie outside them; their forcing is filled with each site's calendar "
            "climatology when packed, and their observations are masked",
            int((~valid).sum()), valid.size,
        )  # fmt: skip
    return ds, source


def derive_configured(ds: xr.Dataset, cfg: FitConfig) -> xr.Dataset:
    """Add the climate predictors of ``data.derive`` to ``env`` (computed from the forcing).

    The fit and every prediction of its run call this, so that new sites get the same
    predictors from their own forcing.
    """
    if not cfg.data.derive:
        return ds
    from ..io import derive_predictors

    log.info("data: predictors derived from the forcing %s", list(cfg.data.derive))
    return derive_predictors(ds, tuple(cfg.data.derive))


def _process(cfg: FitConfig) -> AbstractDalec:
    m = cfg.model
    return build_process(m.process, water_stress=m.water_stress, mode=m.mode, seed=cfg.svi.seed)
