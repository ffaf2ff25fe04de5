"""Store a run's DataTree: netCDF (h5netcdf) or Zarr, written atomically.

Re-exported by :mod:`.datatree`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

import xarray as xr

from ..io.atomic import atomic_path, check_can_write

__all__ = ["read_datatree", "run_fingerprint", "write_datatree"]

log = logging.getLogger(__name__)


def run_fingerprint(run_dir: str | os.PathLike) -> str:
    """SHA-256 (16 hex digits) of a run's ``params.npz`` and ``summary.json``.

    A stored DataTree whose ``run_fingerprint`` differs belongs to an older fit.
    """
    h = hashlib.sha256()
    for name in ("params.npz", "summary.json"):
        path = Path(run_dir) / name
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _engine(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".nc", ".nc4", ".h5"):
        return "h5netcdf"
    if suffix == ".zarr":
        return "zarr"
    raise ValueError(f"path: expected a .nc or .zarr path, found {path}")


def write_datatree(dt: xr.DataTree, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a DataTree atomically to netCDF (``.nc``, h5netcdf) or Zarr (``.zarr``).

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False (nothing is written).
    ValueError
        For another suffix.
    """
    path = Path(path)
    engine = _engine(path)
    check_can_write(path, overwrite=overwrite)
    if engine == "h5netcdf":
        with atomic_path(path, overwrite=overwrite) as tmp:
            dt.to_netcdf(tmp, engine="h5netcdf")
    else:
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            tmp = tmp_dir / path.name
            dt.to_zarr(tmp, mode="w", consolidated=False)
            if path.exists():  # move the old store aside (removed with tmp_dir)
                os.replace(path, tmp_dir / f"{path.name}.old")
            os.replace(tmp, path)
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    log.info("wrote %s", path)
    return path


def read_datatree(path: str | os.PathLike) -> xr.DataTree:
    """Read a DataTree written by :func:`write_datatree` (loaded into memory)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    engine = _engine(path)
    kwargs = {"consolidated": False} if engine == "zarr" else {}
    with xr.open_datatree(path, engine=engine, **kwargs) as dt:
        return dt.load()
