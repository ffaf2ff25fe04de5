"""``differland report`` and ``differland compare`` on a tiny synthetic fit."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from _analysis_runs import SAMPLES, tiny_datatree, tiny_runs
from differland_bayes.analysis import report as report_module
from differland_bayes.analysis.datatree import read_datatree
from differland_bayes.analysis.report import DATATREE_FILE, build_report, datatree_for_run
from differland_bayes.cli import main
from differland_bayes.dataset import read_dataset, write_dataset

TABLES = ("parameters.csv", "scores.csv", "site_scores.csv", "loo.csv",
          "partial_dependence.csv", "variance_partition.csv", "latent_axes.csv",
          "importance.csv", "posterior_correlation.csv", "contraction.csv")  # fmt: skip


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "analysis-runs"


@pytest.fixture(scope="module")
def runs(root):
    tiny_datatree(root, "run_a")  # stored in run_a/report/, reused by the commands
    return tiny_runs(root)


def _report(*args) -> int:
    return main(["-q", "report", *map(str, args), "--samples", str(SAMPLES), "--no-progress"])


def test_report_writes_html_and_csv_and_refuses_to_clobber(runs, capsys):
    run_a = runs["run_a"]
    assert _report(run_a) == 0
    out = run_a / "report"
    html = (out / "report.html").read_text(encoding="utf-8")
    for title in ("Predictive scores", "PSIS-LOO", "Calibration (PIT)", "Predicted vs observed",
                  "Trait–environment: partial dependence", "Trait–environment: variance "
                  "partitioning", "Trait–environment: latent axes", "Trait–environment: "
                  "importance", "Equifinality and constraint"):  # fmt: skip
        assert title in html
    shares = pd.read_csv(out / "variance_partition.csv")
    assert set(shares["component"].dropna()) >= {"vegetation class", "environment", "residual"}
    assert html.count("data:image/png;base64,") >= 5 and "not available" not in html
    for name in TABLES:
        assert (out / name).is_file() and f"href='{name}'" in html
    scores = pd.read_csv(out / "scores.csv")
    assert {"stream", "sites", "period", "r2", "rmse", "bias", "nse", "coverage_50",
            "coverage_90", "pit_ks", "lpd"} <= set(scores.columns)  # fmt: skip
    assert set(scores["period"]) == {"assimilated", "withheld", "all"}
    assert set(scores["sites"]) == {"fitted", "heldout", "all"}
    fitted = scores[(scores["sites"] == "fitted") & (scores["period"] == "assimilated")]
    assert (fitted["r2"] > 0.5).all(), fitted
    loo = pd.read_csv(out / "loo.csv")
    assert list(loo["stream"]) == ["gpp", "nee", "et", "lai", "all"]
    assert np.all(np.isfinite(loo[["elpd", "se"]].to_numpy()))
    params = pd.read_csv(out / "parameters.csv")
    assert {"parameter", "units", "lower", "upper", "median"} <= set(params.columns)
    capsys.readouterr()
    assert _report(run_a) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("differland: error:") and "already exists" in err and "\n" not in err
    assert _report(run_a, "--overwrite") == 0


def test_report_on_data_with_unseen_sites(runs, tmp_path):
    ds = read_dataset(runs["data"])
    ids = [str(s) for s in ds["site"].values]
    ids[6:] = ["new006", "new007"]
    data = write_dataset(ds.assign_coords(site=ids), tmp_path / "new.nc")
    out = tmp_path / "rep"
    assert _report(runs["run_a"], "--data", data, "--out", out) == 0
    dt = read_datatree(out / DATATREE_FILE)
    fitted = dt["posterior"]["fitted"].values
    assert list(fitted) == [True] * 6 + [False] * 2
    assert not dt["constant_data"]["gpp_in_fit"].values[6:].any()
    scores = pd.read_csv(out / "scores.csv")
    assert "unseen" in set(scores["sites"])
    unseen = scores[(scores["sites"] == "unseen") & (scores["period"] == "all")]
    assert (unseen["n"] > 0).all() and len(unseen) == 4


def test_sections_can_be_appended_and_failures_are_contained(runs, tmp_path, monkeypatch):
    out = tmp_path / "custom"
    out.mkdir()
    shutil.copy(runs["run_a"] / "report" / DATATREE_FILE, out / DATATREE_FILE)

    def extra(dt):
        fig = Figure()
        fig.subplots().plot([0, 1], [0, 1])
        return {"a line": fig}, {"extra_table": pd.DataFrame({"x": [1, 2]})}

    def broken(dt):
        raise RuntimeError("boom")

    sections = [*report_module.REPORT_SECTIONS[:1], ("Extra", extra), ("Broken", broken)]
    monkeypatch.setattr(report_module, "REPORT_SECTIONS", sections)
    rep = build_report(runs["run_a"], out, num_samples=SAMPLES, progress_bar=False)
    assert rep.failed == ["Broken"]
    assert (out / "extra_table.csv").is_file() and "extra_table" in rep.tables
    html = rep.html.read_text(encoding="utf-8")
    assert "Extra" in html and "RuntimeError: boom" in html


def test_a_stored_datatree_of_other_settings_is_not_silently_replaced(runs):
    path = runs["run_a"] / "report" / DATATREE_FILE
    with pytest.raises(FileExistsError, match="--overwrite"):
        datatree_for_run(runs["run_a"], path, num_samples=SAMPLES + 1)


def test_compare_two_runs(runs, root, tmp_path, capsys):
    tiny_datatree(root, "run_b")  # stored in run_b/report/, reused by compare
    out = tmp_path / "cmp"
    args = ["-q", "compare", runs["run_a"], runs["run_b"], "--out", out, "--samples", SAMPLES,
            "--no-progress"]  # fmt: skip
    assert main(list(map(str, args))) == 0
    table = pd.read_csv(out / "compare.csv", index_col="run")
    assert set(table.index) == {"run_a", "run_b"}
    assert {"elpd", "se", "elpd_diff", "dse", "weight", "lpd_out_of_fit"} <= set(table.columns)
    assert np.all(np.isfinite(table[["elpd", "se"]].to_numpy())) and (table["se"] > 0).all()
    assert table.index[0] == "run_a"  # run_b's inflated residual scales predict worse
    assert (out / "compare.png").read_bytes().startswith(b"\x89PNG")
    capsys.readouterr()
    assert main(["-q", "compare", str(runs["run_a"]), "--out", str(out)]) == 2
    assert "at least 2 run directories" in capsys.readouterr().err
