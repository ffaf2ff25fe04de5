"""Predictive diagnostics, PSIS-LOO, comparison and figures on constructed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.figure import Figure

from differland_bayes.analysis.compare import compare_runs
from differland_bayes.analysis.diagnostics import (
    HELDOUT_MONTHS,
    pit,
    pit_values,
    predictive_scores,
    site_scores,
    split_labels,
)
from differland_bayes.analysis.loo import (
    loo,
    loo_datatree,
    loo_pit_values,
    loo_table,
    psis_weights,
)
from differland_bayes.analysis.plots import (
    figure_png,
    plot_elpd_comparison,
    plot_pit_histograms,
    plot_predicted_vs_observed,
    plot_predictive_timeseries,
)

UNITS = "gC m-2 d-1"


def _tree(obs, draws, *, split=None, ll=None, fitted=None, heldout=None, in_fit=None):
    """A DataTree with one stream ``gpp``: obs (site, time), draws (sample, site, time)."""
    n_site, n_time = obs.shape
    coords = {
        "site": [f"s{i}" for i in range(n_site)],
        "time": pd.date_range("2001-01-01", periods=n_time, freq="MS"),
        "fitted": ("site", np.ones(n_site, bool) if fitted is None else fitted),
        "heldout": ("site", np.zeros(n_site, bool) if heldout is None else heldout),
    }
    obs_ds = xr.Dataset({"gpp": (("site", "time"), obs, {"units": UNITS})}, coords=coords)
    if split is not None:
        obs_ds = obs_ds.assign_coords(split_time=(("site", "time"), split))
    sample = {"sample": np.arange(draws.shape[0])}
    groups = {
        "observed_data": obs_ds,
        "posterior_predictive": xr.Dataset(
            {"gpp": (("sample", "site", "time"), draws, {"units": UNITS})},
            coords={**coords, **sample},
        ),
    }
    if ll is not None:
        groups["log_likelihood"] = xr.Dataset(
            {"gpp": (("sample", "site", "time"), ll)}, coords={**coords, **sample}
        )
    if in_fit is not None:
        groups["constant_data"] = xr.Dataset(
            {"gpp_in_fit": (("site", "time"), in_fit)}, coords=coords
        )
    return xr.DataTree.from_dict(groups)


def _row(table, sites="all", period="all"):
    sel = table[(table["sites"] == sites) & (table["period"] == period)]
    assert len(sel) == 1, table
    return sel.iloc[0]


def _normal_ll(y, mu, sd=1.0):
    return -0.5 * ((y - mu) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi)


def test_perfect_prediction():
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(4, 30))
    obs[0, :5] = np.nan
    row = _row(predictive_scores(_tree(obs, np.repeat(obs[None], 20, axis=0))))
    assert row["n"] == 115
    assert row["r2"] == pytest.approx(1.0) and row["nse"] == pytest.approx(1.0)
    assert row["rmse"] == pytest.approx(0.0, abs=1e-12)
    assert row["bias"] == pytest.approx(0.0, abs=1e-12)
    assert row["coverage_50"] == 1.0 and row["coverage_90"] == 1.0


def test_pure_noise_prediction():
    rng = np.random.default_rng(1)
    obs = rng.normal(size=(10, 400))
    copy = rng.normal(size=(1, 10, 400))  # one independent draw: the prediction is a copy
    row = _row(predictive_scores(_tree(obs, copy)))
    assert row["r2"] == pytest.approx(-1.0, abs=0.05)
    assert row["rmse"] == pytest.approx(np.sqrt(2.0), abs=0.03)
    many = rng.normal(size=(400, 10, 400))  # the mean of many draws is ~ the mean (0)
    row = _row(predictive_scores(_tree(obs, many)))
    assert row["r2"] == pytest.approx(0.0, abs=0.02)
    assert row["nse"] == pytest.approx(0.0, abs=0.03)


def test_calibrated_draws_give_uniform_pit_and_nominal_coverage():
    rng = np.random.default_rng(2)
    mu = rng.normal(size=(20, 250)) * 3.0
    obs = mu + rng.normal(size=mu.shape)
    draws = mu + rng.normal(size=(300, *mu.shape))
    dt = _tree(obs, draws)
    row = _row(predictive_scores(dt))
    assert row["coverage_50"] == pytest.approx(0.5, abs=0.02)
    assert row["coverage_90"] == pytest.approx(0.9, abs=0.015)
    assert row["pit_ks"] < 0.035  # KS 99.9 % critical value at n = 5000, plus 1/S steps
    u = pit_values(dt, "gpp").values.ravel()
    assert np.histogram(u, bins=10, range=(0, 1))[0] / u.size == pytest.approx(
        np.full(10, 0.1), abs=0.015
    )
    narrow = mu + 0.3 * rng.normal(size=(300, *mu.shape))  # overconfident
    row = _row(predictive_scores(_tree(obs, narrow)))
    assert row["coverage_90"] < 0.5 and row["pit_ks"] > 0.15


def test_pit_counts_ties_half():
    draws = np.array([[0.0], [1.0], [1.0], [2.0]])
    assert pit(np.array([1.0]), draws) == pytest.approx([0.5])
    assert np.isnan(pit(np.array([np.nan]), draws)[0])


def test_scores_are_split_by_period_and_site_group():
    rng = np.random.default_rng(3)
    obs = rng.normal(size=(6, 24))
    split = np.tile(np.repeat([1, 2], 12), (6, 1)).astype(np.int8)
    fitted = np.array([True, True, True, True, False, False])
    heldout = np.array([False, False, False, True, False, False])
    dt = _tree(obs, obs[None] + 0.1 * rng.normal(size=(50, 6, 24)), split=split,
               fitted=fitted, heldout=heldout)  # fmt: skip
    table = predictive_scores(dt)
    assert _row(table, "fitted", "assimilated")["n"] == 3 * 12
    assert _row(table, "heldout", "withheld")["n"] == 12
    assert _row(table, "unseen", "all")["n"] == 2 * 24
    assert _row(table, "all", "all")["n"] == 6 * 24
    per_site = site_scores(dt)
    assert set(per_site["site"]) == {f"s{i}" for i in range(6)}
    s5 = per_site[(per_site["site"] == "s5") & (per_site["period"] == "all")]
    assert s5["sites"].item() == "unseen"


def _conjugate_case(rng, n=40, s=4000):
    """y_i ~ N(mu, 1), mu ~ N(0, 10^2): exact posterior draws and exact LOO."""
    y = rng.normal(1.0, 1.0, size=n)
    prec = 1 / 100 + n
    mu = rng.normal(y.sum() / prec, np.sqrt(1 / prec), size=s)
    ll = _normal_ll(y[None], mu[:, None])
    prec_i = 1 / 100 + n - 1
    mean_i = (y.sum() - y) / prec_i
    exact = _normal_ll(y, mean_i, np.sqrt(1 + 1 / prec_i))
    pp = mu[:, None] + rng.normal(size=(s, n))
    return y, ll, pp, exact


def test_psis_loo_matches_exact_loo_of_a_conjugate_model():
    rng = np.random.default_rng(4)
    y, ll, pp, exact = _conjugate_case(rng)
    dt = _tree(y[None], pp[:, None], ll=ll[:, None], in_fit=np.ones((1, y.size), bool))
    res = loo(dt, "gpp")
    assert res.elpd == pytest.approx(exact.sum(), abs=0.1)
    assert np.asarray(res.elpd_i.values) == pytest.approx(exact, abs=0.02)
    assert float(np.max(res.pareto_k.values)) < res.good_k
    table = loo_table(dt)
    assert list(table["stream"]) == ["gpp", "all"]
    assert table["elpd"].iloc[0] == pytest.approx(table["elpd"].iloc[1])
    assert table["se"].iloc[0] > 0 and table["n_k_bad"].iloc[0] == 0
    u = loo_pit_values(dt)["gpp"]
    assert u.shape == (y.size,) and np.all((u >= 0) & (u <= 1))


def test_loo_drops_masked_entries_and_handles_constant_log_likelihood():
    rng = np.random.default_rng(5)
    y, ll, pp, exact = _conjugate_case(rng, n=30, s=400)
    obs = np.concatenate([y, [np.nan, 2.0, 3.0]])[None]
    ll_all = np.concatenate([ll, np.zeros((400, 1)), np.full((400, 1), -1.5),
                             ll[:, :1]], axis=1)[:, None]  # fmt: skip
    pp_all = np.concatenate([pp, pp[:, :3]], axis=1)[:, None]
    in_fit = np.isfinite(obs)
    in_fit[0, -1] = False  # observed but not in the likelihood (e.g. withheld)
    dt = _tree(obs, pp_all, ll=ll_all, in_fit=in_fit)
    ldt = loo_datatree(dt)
    assert ldt["log_likelihood"]["gpp"].dims == ("chain", "draw", "obs_gpp")
    assert ldt["log_likelihood"].sizes == {"chain": 1, "draw": 400, "obs_gpp": 31, "obs_all": 31}
    lw, k = psis_weights(ldt)
    assert float(k["gpp"].values[-1]) == 0.0  # the constant column: raw weights, k = 0
    res = loo(dt, "gpp")
    assert float(res.elpd_i.values[-1]) == pytest.approx(-1.5)
    assert res.n_data_points == 31


def test_compare_ranks_the_better_model_first():
    rng = np.random.default_rng(6)
    y, ll, pp, _ = _conjugate_case(rng, n=60, s=1000)
    in_fit = np.ones((1, y.size), bool)
    good = _tree(y[None], pp[:, None], ll=ll[:, None], in_fit=in_fit)
    mu_bad = rng.normal(-1.0, 0.1, size=1000)  # wrong mean
    bad = _tree(y[None], (mu_bad[:, None] + rng.normal(size=(1000, y.size)))[:, None],
                ll=_normal_ll(y[None], mu_bad[:, None])[:, None], in_fit=in_fit)  # fmt: skip
    table = compare_runs({"bad": bad, "good": good})
    assert list(table.index) == ["good", "bad"]
    assert {"elpd", "se", "elpd_diff", "dse", "weight"} <= set(table.columns)
    assert table.loc["good", "elpd"] > table.loc["bad", "elpd"]
    assert table["weight"].sum() == pytest.approx(1.0)
    assert table.loc["bad", "dse"] > 0
    other = _tree(y[None, :-1], pp[:, None, :-1], ll=ll[:, None, :-1], in_fit=in_fit[:, :-1])
    with pytest.raises(ValueError, match="different observations"):
        compare_runs({"good": good, "other": other})
    with pytest.raises(ValueError, match="at least 2 runs"):
        compare_runs({"good": good})


def test_figures_have_units_in_their_labels():
    rng = np.random.default_rng(7)
    obs = rng.normal(size=(3, 24))
    split = np.tile(np.repeat([1, 2], 12), (3, 1)).astype(np.int8)
    dt = _tree(obs, obs[None] + rng.normal(size=(40, 3, 24)), split=split)
    fig = plot_predictive_timeseries(dt, "gpp")
    assert isinstance(fig, Figure) and UNITS in fig.axes[0].get_ylabel()
    fig = plot_predicted_vs_observed(dt)
    assert UNITS in fig.axes[0].get_xlabel() and UNITS in fig.axes[0].get_ylabel()
    fig = plot_pit_histograms({"gpp": pit_values(dt, "gpp").values})
    assert figure_png(fig).startswith(b"\x89PNG")
    with pytest.raises(KeyError, match="not in the DataTree"):
        plot_predictive_timeseries(dt, "gpp", sites=["nope"])
    columns = {"rank": [0, 1], "elpd": [-10.0, -14.0], "se": [2.0, 2.5], "elpd_diff": [0.0, 4.0],
               "dse": [0.0, 1.0], "p": [2.0, 3.0], "weight": [0.9, 0.1]}  # fmt: skip
    table = pd.DataFrame(columns, index=pd.Index(["a", "b"], name="run"))
    assert figure_png(plot_elpd_comparison(table)).startswith(b"\x89PNG")


def test_months_held_out_for_early_stopping_get_their_own_period():
    rng = np.random.default_rng(4)
    obs = rng.normal(5.0, 1.0, (3, 24))
    obs[2, 20:] = np.nan
    pp = obs[None] + rng.normal(0.0, 1.0, (50, 3, 24))
    split = np.ones((3, 24), int)
    split[:, 22:] = 2  # the data's own withheld months
    in_fit = np.ones((3, 24), bool)
    in_fit[:, :2] = False  # spin-up
    in_fit[:, 22:] = False  # withheld
    in_fit[:2, 16:22] = False  # steps 16-21 of sites 0 and 1 held out for early stopping
    in_fit &= np.isfinite(obs)
    heldout = np.array([False, True, False])  # site 1 is a held-out site
    dt = _tree(obs, pp, split=split, heldout=heldout, in_fit=in_fit)
    labels = split_labels(dt, "gpp")
    assert set(labels[0, 16:22]) == {HELDOUT_MONTHS}
    assert set(labels[0, :16]) == {"assimilated"}  # spin-up keeps its label
    assert set(labels[:, 22:].ravel()) == {"withheld"}
    assert HELDOUT_MONTHS not in labels[1:]  # a held-out site; site 2 kept everything
    assert HELDOUT_MONTHS not in split_labels(dt)  # without a stream: the data's split
    table = predictive_scores(dt)
    row = _row(table, "fitted", HELDOUT_MONTHS)
    assert row["n"] == 6
    assert _row(table, "fitted", "assimilated")["n"] == 16 + 20
