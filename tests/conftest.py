"""Shared fixtures: locations of the shared data (strict under CI) and the process model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def truth_of_first_site(world, process, free) -> dict[str, float]:
    """Physical values of every parameter not in ``free`` at the world's first site.

    For ``ModelConfig.fixed_parameters`` in tests on a synthetic world.
    """
    base = world["true_parameters"].isel(site=0)
    return {n: float(base.sel(parameter=n)) for n in process.table.names if n not in free}


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _require_dir(path: Path, what: str, env: str) -> Path:
    if path.is_dir():
        return path
    msg = f"{what} not found at {path} (set {env} to its location)"
    if _in_ci():
        pytest.fail(msg + "; under CI=true missing data is a failure, not a skip")
    pytest.skip(msg)


def shared_data_path() -> Path:
    """``$DIFFERLAND_DATA_DIR`` or ``<repo>/../shared/data``."""
    env = os.environ.get("DIFFERLAND_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


def reference_path() -> Path:
    """``$DIFFERLAND_REFERENCE_DIR`` or ``<repo>/../shared/data/reference``."""
    env = os.environ.get("DIFFERLAND_REFERENCE_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data" / "reference"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _require_dir(shared_data_path(), "shared data folder", "DIFFERLAND_DATA_DIR")


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return _require_dir(reference_path(), "reference folder", "DIFFERLAND_REFERENCE_DIR")


@pytest.fixture(scope="session")
def fluxnet_dir(data_dir: Path) -> Path:
    return _require_dir(data_dir / "fluxnet-sites", "FLUXNET site folder", "DIFFERLAND_DATA_DIR")


@pytest.fixture(scope="session")
def process():
    """DALEC993, the process model of most model tests (a module may override it)."""
    from differland_bayes.process import get_model

    return get_model("dalec993")
