"""Readers of real data formats into canonical xarray datasets, and atomic writers.

Every reader returns the canonical multi-site layout of ``docs/data-format.md``. The
readers are imported lazily (``differland_bayes.dataset`` imports :mod:`.atomic` from
here, and the CLI stays fast).
"""

from __future__ import annotations

import importlib
from typing import Any

from .atomic import atomic_path, check_can_write, write_netcdf_atomic

_EXPORTS = {
    "read_fluxnet_site": "fluxnet",
    "read_fluxnet_sites": "fluxnet",
    "select_site": "_canonical",
    "to_monthly": "_canonical",
    "read_fluxval": "fluxval",
    "read_gridded": "gridded",
    "iter_site_blocks": "gridded",
    "read_predictors_csv": "predictors",
    "derive_predictors": "predictors",
    "add_env_features": "predictors",
}

__all__ = ["atomic_path", "check_can_write", "write_netcdf_atomic", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'differland_bayes.io' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
