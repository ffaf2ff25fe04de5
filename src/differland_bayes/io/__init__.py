"""Readers of real data formats into canonical xarray datasets."""

from .fluxnet import read_fluxnet_site

__all__ = ["read_fluxnet_site"]
