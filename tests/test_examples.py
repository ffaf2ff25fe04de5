"""Every example script runs end to end with small settings."""

from __future__ import annotations

import runpy

import pytest

from conftest import REPO

EXAMPLES = sorted((REPO / "examples").glob("[0-9]*.py"))
ARGS = {
    "01_simulate_site.py": ["--site", "US-Var"],
    "02_svi_vs_nuts.py": ["--quick"],
    # one of two site folds: the left-out path runs, at a third less time (with the
    # example's default equilibrium pools; the network's pools are tested elsewhere)
    "03_fluxval_crossvalidation.py": "--quick --folds 2 --max-folds 1 --samples 20".split(),
    "04_trait_environment.py": ["--quick"],
    "05_predictor_sets.py": ["--quick"],
    "06_unseen_sites.py": ["--quick"],
    "07_hybrid_water_stress.py": ["--quick"],
}


def test_examples_exist():
    assert EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path, tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("DIFFERLAND_DATA_DIR", str(data_dir))
    namespace = runpy.run_path(str(path))  # defines main() without running it
    assert namespace["__doc__"], f"{path.name} needs a docstring saying what it shows"
    assert namespace["main"]([*ARGS.get(path.name, []), "--out", str(tmp_path)]) == 0
    assert any(tmp_path.iterdir())
