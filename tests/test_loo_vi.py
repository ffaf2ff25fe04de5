"""VI-corrected PSIS-LOO: ``sample_stats/lp`` and ``log_q`` of the DataTree, ``loo_table``."""

from __future__ import annotations

import numpy as np
import pytest

from _analysis_runs import SAMPLES, tiny_datatree
from differland_bayes.analysis.loo import ALL, has_vi_densities, loo, loo_table


@pytest.fixture(scope="module")
def dt(tmp_path_factory):
    return tiny_datatree(tmp_path_factory.getbasetemp() / "analysis-runs")


def test_sample_stats_hold_finite_log_densities(dt):
    assert has_vi_densities(dt)
    stats = dt["sample_stats"]
    for name in ("lp", "log_q"):
        da = stats[name]
        assert da.dims == ("sample",)
        assert da.sizes["sample"] == SAMPLES
        assert da.attrs["units"] == "nat"
        assert np.all(np.isfinite(da.values))
    # the draws differ, so both densities vary over them
    assert np.std(stats["lp"].values) > 0 and np.std(stats["log_q"].values) > 0


def test_corrected_elpd_is_finite_and_close_to_plain(dt):
    table = loo_table(dt).set_index("stream")
    for col in ("elpd_vi", "se_vi", "p_vi", "k_max_vi", "n_k_bad_vi"):
        assert col in table.columns
    row = table.loc[ALL]
    assert np.isfinite(row["elpd_vi"]) and np.isfinite(row["k_max_vi"])
    # the correction moves the estimate, but not by more than a few nat per observation
    assert abs(row["elpd_vi"] - row["elpd"]) < 5.0 * row["n"]
    assert abs(float(loo(dt, ALL, corrected=True).elpd) - row["elpd_vi"]) < 1e-9


def test_exact_posterior_draws_leave_the_elpd_unchanged(dt):
    stats = dt["sample_stats"].to_dataset()
    exact = dt.copy()
    exact["sample_stats"] = stats.assign(log_q=stats["lp"])  # q == p: exact posterior
    plain, vi = loo(exact, ALL), loo(exact, ALL, corrected=True)
    assert float(vi.elpd) == pytest.approx(float(plain.elpd), rel=1e-6, abs=1e-6)
    np.testing.assert_allclose(vi.elpd_i.values, plain.elpd_i.values, rtol=1e-6, atol=1e-6)


def test_without_densities_the_corrected_columns_are_nan(dt):
    plain = dt.copy()
    del plain["sample_stats"]
    assert not has_vi_densities(plain)
    table = loo_table(plain)
    assert table["elpd_vi"].isna().all() and np.isfinite(table["elpd"]).all()
    with pytest.raises(ValueError, match="sample_stats"):
        loo(plain, ALL, corrected=True)
