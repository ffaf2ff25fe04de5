"""Atomic file writes: write next to the target, then rename over it.

A reader never sees a half-written file, an interrupted write leaves the previous file
untouched, and an existing file is only replaced when asked to.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import xarray as xr

__all__ = ["atomic_path", "check_can_write", "write_netcdf_atomic"]

log = logging.getLogger(__name__)

_NEW_FILE_MODE = 0o666  #: permissions of new files before the umask (as ``open`` does)


def check_can_write(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Check that ``path`` may be written; return it as a :class:`~pathlib.Path`.

    Parameters
    ----------
    path : path-like
        The target file.
    overwrite : bool
        Whether an existing file may be replaced.

    Raises
    ------
    FileExistsError
        If the file exists and ``overwrite`` is False.
    FileNotFoundError
        If the parent directory does not exist.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path} already exists; refusing to overwrite it (use --overwrite, or "
            f"overwrite=True, to replace it)"
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: directory {path.parent} does not exist")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Context manager giving a temporary path that replaces ``path`` on success.

    The temporary file lives in the target's directory (so the final rename is atomic)
    and keeps the target's suffix (so writers that infer the format from it work). If
    the body raises, the temporary file is removed and the target is left as it was.

    Parameters
    ----------
    path : path-like
        The final file.
    overwrite : bool
        Whether an existing file may be replaced. Checked before the body runs and again
        when the file is moved into place.

    Yields
    ------
    pathlib.Path
        Where to write (an empty file already exists there).

    Raises
    ------
    FileExistsError
        If the target exists and ``overwrite`` is False.

    Examples
    --------
    >>> with atomic_path("table.csv", overwrite=True) as tmp:  # doctest: +SKIP
    ...     df.to_csv(tmp)
    """
    path = check_can_write(path, overwrite=overwrite)
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _NEW_FILE_MODE))
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            _move_no_clobber(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    log.debug("wrote %s", path)


def _move_no_clobber(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst`` atomically, failing if ``dst`` appeared meanwhile."""
    try:
        os.link(src, dst)  # atomic, and fails if dst exists
    except FileExistsError:
        check_can_write(dst, overwrite=False)  # raises the explanatory error
        raise
    except OSError:  # no hard links on this file system: check, then rename
        check_can_write(dst, overwrite=False)
        os.replace(src, dst)
    else:
        src.unlink()


def write_netcdf_atomic(
    ds: xr.Dataset, path: str | os.PathLike, *, overwrite: bool = False
) -> Path:
    """Write a dataset to netCDF atomically.

    Parameters
    ----------
    ds : xarray.Dataset
        The dataset.
    path : path-like
        Target ``.nc`` file.
    overwrite : bool
        Whether an existing file may be replaced.

    Returns
    -------
    pathlib.Path
        The written path.

    Raises
    ------
    FileExistsError
        If the target exists and ``overwrite`` is False (the file is left untouched).
    """
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        ds.to_netcdf(tmp)
    log.info("wrote %s", path)
    return path
