"""Readers of real data formats into canonical xarray datasets, and atomic writers."""

from .atomic import atomic_path, check_can_write, write_netcdf_atomic
from .fluxnet import read_fluxnet_site

__all__ = ["atomic_path", "check_can_write", "read_fluxnet_site", "write_netcdf_atomic"]
