"""Scores, climatological baselines and site folds of the cross-validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from differland_bayes.analysis.baselines import (
    class_climatology,
    monthly_cycle,
    season_month,
    site_seasonal_cycle,
)
from differland_bayes.analysis.crossval import score_predictions, site_folds
from differland_bayes.analysis.metrics import bias, coverage, nse, r2, rmse, scores


def test_metrics_known_values():
    obs = np.array([1.0, 2.0, 3.0, np.nan, 5.0])
    assert r2(obs, obs) == 1.0 and rmse(obs, obs) == 0.0 and bias(obs, obs) == 0.0
    mean = np.full(5, np.nanmean(obs))
    assert r2(obs, mean) == pytest.approx(0.0)
    assert bias(obs, obs + 2.0) == pytest.approx(2.0)
    assert rmse(obs, obs + 2.0) == pytest.approx(2.0)
    # an independent copy of the same noise: R2 -> -1
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=20000), rng.normal(size=20000)
    assert r2(a, b) == pytest.approx(-1.0, abs=0.05)
    assert coverage(obs, obs - 0.5, obs + 0.5) == 1.0
    assert coverage(obs, obs + 0.5, obs + 1.0) == 0.0
    assert nse(np.stack([obs, obs]), np.stack([obs, mean])) == pytest.approx(0.5)
    s = scores(obs, obs, obs - 1, obs + 1)
    assert s["n"] == 4 and s["coverage"] == 1.0
    with pytest.raises(ValueError, match="pred: expected the shape"):
        r2(obs, obs[:3])


def test_calibrated_intervals_cover_nominal():
    rng = np.random.default_rng(1)
    mu = rng.normal(size=50000)
    obs = mu + rng.normal(size=mu.size)
    assert coverage(obs, mu - 1.6449, mu + 1.6449) == pytest.approx(0.90, abs=0.01)


def _world(lat=(45.0, -30.0, 50.0), classes=("ENF", "ENF", "GRA"), years=3, seed=0):
    time = pd.date_range("2001-01-01", periods=12 * years, freq="MS")
    rng = np.random.default_rng(seed)
    month = np.arange(time.size) % 12
    vals = []
    for la, c in zip(lat, classes, strict=True):
        shift = 6 if la < 0 else 0
        base = 5.0 if c == "ENF" else 2.0
        vals.append(base + np.sin(2 * np.pi * ((month + shift) % 12) / 12))
    v = np.array(vals) + 0.0 * rng.normal(size=(len(lat), time.size))
    ds = xr.Dataset(
        {"gpp": (("site", "time"), v), "gpp_mask": (("site", "time"), np.ones_like(v, bool))},
        coords={"site": [f"S{i}" for i in range(len(lat))], "time": time,
                "lat": ("site", list(lat)), "vegetation_class": ("site", list(classes))},
    )  # fmt: skip
    return ds


def test_season_month_shifts_south():
    t = pd.date_range("2001-01-01", periods=3, freq="MS").values
    m = season_month(t, [10.0, -10.0])
    assert m.tolist() == [[0, 1, 2], [6, 7, 8]]


def test_monthly_cycle_interpolates_gaps_circularly():
    month = np.arange(24)[None, :] % 12
    v = np.where(month % 2 == 0, month.astype(float), np.nan)  # only even months
    cyc = monthly_cycle(v, month)[0]
    assert cyc[2] == 2.0 and cyc[3] == pytest.approx(3.0)
    assert cyc[11] == pytest.approx(5.0)  # between month 10 (10) and month 0 (0), circular


def test_site_seasonal_cycle_predicts_withheld_year():
    ds = _world()
    use = np.zeros((3, 36), bool)
    use[:, :24] = True
    pred = site_seasonal_cycle(ds, "gpp", use=use)
    np.testing.assert_allclose(pred.values, ds.gpp.values)  # exact periodic world
    ds2 = ds.copy()
    ds2["gpp_mask"] = ds2.gpp_mask & (np.arange(36) < 24)
    assert np.isfinite(site_seasonal_cycle(ds2, "gpp").values).all()


def test_class_climatology_shifts_southern_sites():
    ds = _world()
    target = _world(lat=(-40.0,), classes=("GRA",))
    pred = class_climatology(ds, target, "gpp")
    np.testing.assert_allclose(pred.values, target.gpp.values, atol=1e-12)
    # an unknown class falls back to the mean of all training sites' cycles
    other = _world(lat=(40.0,), classes=("SNO",))
    fallback = class_climatology(ds, other, "gpp")
    assert np.isfinite(fallback.values).all()
    with pytest.raises(ValueError, match="target: expected a site coordinate 'lat'"):
        class_climatology(ds, target.drop_vars("lat"), "gpp")


def test_site_folds_partition_and_stratify():
    sites = [f"S{i}" for i in range(23)]
    strata = ["A"] * 10 + ["B"] * 8 + ["C"] * 5
    folds = site_folds(sites, 5, seed=3, strata=strata)
    allidx = np.concatenate(folds)
    assert sorted(allidx.tolist()) == list(range(23))
    sizes = [len(f) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    for f in folds:  # every fold gets two of class A
        assert sum(strata[i] == "A" for i in f) == 2
    assert [f.tolist() for f in site_folds(sites, 5, seed=3, strata=strata)] == [
        f.tolist() for f in folds
    ]
    with pytest.raises(ValueError, match="k: expected 2 <= k <= 23"):
        site_folds(sites, 1)


def test_score_predictions_same_entries():
    ds = _world()
    pred = xr.Dataset(
        {"gpp": ds.gpp + 0.1,
         "gpp_quantile": xr.concat([ds.gpp - 1, ds.gpp + 0.1, ds.gpp + 1], "quantile")
         .assign_coords(quantile=[0.05, 0.5, 0.95])},
    )  # fmt: skip
    base = site_seasonal_cycle(ds, "gpp").copy()
    base[0, :5] = np.nan  # a gap in the baseline removes those entries for both
    where = np.ones((3, 36), bool)
    df = score_predictions("test", ds, where, {"model": pred}, {"cycle": {"gpp": base}}, ["gpp"])
    assert list(df.predictor) == ["model", "cycle"]
    assert (df.n == 3 * 36 - 5).all()
    m = df.set_index("predictor")
    assert m.loc["model", "bias"] == pytest.approx(0.1)
    assert m.loc["model", "coverage"] == 1.0
    assert np.isnan(m.loc["cycle", "coverage"])
