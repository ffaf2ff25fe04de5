"""Check a canonical multi-site dataset (``docs/data-format.md``) before any work is done.

:func:`validate_dataset` looks at everything at once (structure, coordinates, time axis,
forcing, observation streams with their masks and uncertainties, predictors, splits) and
returns a :class:`ValidationReport` listing every :class:`Problem`. A problem is an
``"error"`` when the dataset cannot be used as it is, or a ``"notice"`` when it can (for
example a forcing unit that will be converted, such as K to degC or W m-2 to
MJ m-2 d-1). Neither a file nor an in-memory dataset is ever modified.

Single-site datasets without a ``site`` dimension are accepted and treated as one site.
Sites with different records on one (union) time axis are accepted when
``site_time_valid`` marks each site's record.

The rules live in one module per concept: :mod:`.structure` (site ids, time axis,
coordinates), :mod:`.record` (``site_time_valid``), :mod:`.forcing_rules`,
:mod:`.observations` (streams, masks, uncertainties) and :mod:`.predictors` (``env``,
vegetation class, splits); :mod:`.report` holds what is returned.

Examples
--------
>>> report = validate_dataset("sites.nc")  # doctest: +SKIP
>>> print(report)  # doctest: +SKIP
>>> report.raise_if_errors()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import xarray as xr

from ..dataset import read_dataset
from .checker import Checker
from .forcing_rules import check_forcing
from .observations import check_streams
from .predictors import check_env, check_splits
from .record import check_record
from .report import (
    ERROR,
    IN_MEMORY,
    NOTICE,
    Problem,
    Severity,
    ValidationError,
    ValidationReport,
)
from .structure import check_latitude, check_longitude, check_sites, check_time, check_unknown

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

    Sites with different records: where ``site_time_valid`` (bool, ``site x time``) is
    present, each site needs one contiguous, non-empty record; forcing is checked only
    within it (NaN outside is expected), masks must be False outside it, and each stream
    is judged per site within its record. Without it every step is in the record.
    """
    from ..forcing import FORCING_VARIABLES  # deferred: the forcing module imports JAX

    if isinstance(ds_or_path, xr.Dataset):
        ds, source = ds_or_path, IN_MEMORY
    else:
        path = Path(ds_or_path)
        ds, source = _open(path), str(path)
    log.debug("validating %s", source)
    c = Checker(ds)
    check_sites(c)
    check_time(c)
    check_record(c)
    check_latitude(c)
    check_longitude(c)
    check_forcing(c, FORCING_VARIABLES)
    check_streams(c)
    check_env(c)
    check_splits(c)
    check_unknown(c, FORCING_VARIABLES)
    report = ValidationReport(tuple(c.problems), source, c.n_sites, c.n_times, c.step)
    log.debug(
        "validated %s: %d error(s), %d notice(s)", source, len(report.errors), len(report.notices)
    )
    return report
