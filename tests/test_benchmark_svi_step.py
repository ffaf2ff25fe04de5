"""``benchmarks/svi_step.py`` runs on a few FluxVal sites and prints its table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from conftest import REPO


def test_svi_step_benchmark_prints_one_row_per_variant(data_dir: Path, capsys, monkeypatch):
    """Two of the three variants (each is a compilation of the fit's SVI step)."""
    monkeypatch.setenv("DIFFERLAND_DATA_DIR", str(data_dir))
    path = REPO / "benchmarks" / "svi_step.py"
    spec = importlib.util.spec_from_file_location("_svi_step_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    variants = ["off", "environment mean"]
    assert bench.main(["--quick", "--variants", *variants]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0].startswith("| discrepancy |")
    body = rows[1:]
    assert [r.split("|")[1].strip() for r in body] == variants
    assert set(variants) <= set(bench.VARIANTS)
    for r in body:
        first, per_step, ratio = (float(c) for c in r.split("|")[2:5])
        assert first > 0 and per_step > 0 and ratio > 0
    assert "16 sites" in out
