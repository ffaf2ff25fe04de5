"""Environment predictors: CSV tables and predictors derived from the forcing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from differland_bayes.dataset import env_matrix
from differland_bayes.io import (
    add_env_features,
    derive_predictors,
    read_fluxnet_sites,
    read_predictors_csv,
)


def _toy(freq="D", years=2, sites=("A", "B")) -> xr.Dataset:
    time = pd.date_range("2001-01-01", f"{2000 + years}-12-31", freq=freq)
    if freq == "MS":
        time = pd.date_range("2001-01-01", periods=12 * years, freq="MS")
    n = len(time)
    doy = np.asarray(time.day_of_year, float)
    t = 10.0 + 8.0 * np.sin(2 * np.pi * (doy - 100) / 365.25)
    shape = (len(sites), n)
    ds = xr.Dataset(
        {
            "t_min": (("site", "time"), np.broadcast_to(t - 4, shape), {"units": "degC"}),
            "t_max": (("site", "time"), np.broadcast_to(t + 4, shape), {"units": "degC"}),
            "swrad": (("site", "time"), np.full(shape, 15.0), {"units": "MJ m-2 d-1"}),
            "precip": (("site", "time"), np.full(shape, 2.0), {"units": "mm d-1"}),
        },
        coords={"site": list(sites), "time": time, "lat": ("site", [10.0, -20.0])},
    )
    ds["precip"][1] = 1.0
    return ds


def test_add_env_features_appends_and_replaces():
    ds = _toy()
    ds = add_env_features(ds, {"elevation": [1.0, 2.0]}, {"elevation": "m"})
    ds = add_env_features(
        ds, {"mat": [3.0, 4.0], "elevation": [5.0, 6.0]}, {"mat": "degC", "elevation": "m"}
    )
    assert list(ds.feature.values) == ["mat", "elevation"]
    assert list(ds.feature_units.values) == ["degC", "m"]
    np.testing.assert_array_equal(ds.env.sel(feature="elevation"), [5.0, 6.0])
    with pytest.raises(ValueError, match="no units"):
        add_env_features(ds, {"x": [1.0, 2.0]}, {})
    with pytest.raises(ValueError, match=r"expected shape \(2,\)"):
        add_env_features(ds, {"x": [1.0]}, {"x": "1"})


def test_csv_with_units_row(tmp_path):
    p = tmp_path / "pred.csv"
    p.write_text(
        "site,elevation,sand,IGBP,note\n"
        "units,m,%,,\n"
        "B,200,40,GRA,dry\n"
        "A,100,30.5,ENF,wet\n"
        "C,300,10,DBF,unused row\n"
    )
    ds = read_predictors_csv(_toy(), p)
    assert list(ds.vegetation_class.values) == ["ENF", "GRA"]
    units = dict(zip(ds.feature.values, ds.feature_units.values, strict=True))
    assert units == {"elevation": "m", "sand": "%"}  # text column 'note' is skipped
    np.testing.assert_array_equal(ds.env.sel(feature="elevation"), [100.0, 200.0])
    np.testing.assert_array_equal(ds.env.sel(feature="sand"), [30.5, 40.0])
    x, names = env_matrix(ds)
    assert names == ["elevation", "sand", "vegetation_class=ENF", "vegetation_class=GRA"]
    assert x.shape == (2, 4)


def test_csv_units_mapping_and_errors(tmp_path, fluxnet_dir):
    ds = read_fluxnet_sites(fluxnet_dir, sites=["US-Var", "DE-Hai"])
    units = {
        "lon": "degrees_east",
        "lat": "degrees_north",
        "ELEV": "m",
        "MAP": "mm yr-1",
        "MAT": "degC",
        "start_year": "1",
        "end_year": "1",
    }
    out = read_predictors_csv(ds, fluxnet_dir / "site_coords.csv", key="SITE_ID", units=units)
    np.testing.assert_array_equal(out.env.sel(feature="ELEV"), [129.0, 430.0])
    np.testing.assert_array_equal(out.env.sel(feature="elevation"), [129.0, 430.0])
    assert list(out.vegetation_class.values) == ["GRA", "DBF"]
    with pytest.raises(ValueError, match=r"no units.*'ELEV'|'ELEV'.*no units"):
        read_predictors_csv(ds, fluxnet_dir / "site_coords.csv", key="SITE_ID")
    with pytest.raises(ValueError, match="no key column 'station'"):
        read_predictors_csv(ds, fluxnet_dir / "site_coords.csv", key="station")
    p = tmp_path / "few.csv"
    p.write_text("site,x\nunits,m\nUS-Var,1\n")
    with pytest.raises(ValueError, match=r"1 of 2 sites.*\['DE-Hai'\]"):
        read_predictors_csv(ds, p)
    p.write_text("site,x\nUS-Var,1\nUS-Var,2\nDE-Hai,3\n")
    with pytest.raises(ValueError, match="repeat"):
        read_predictors_csv(ds, p, units={"x": "m"})
    with pytest.raises(FileNotFoundError):
        read_predictors_csv(ds, tmp_path / "none.csv")


def test_derived_values_daily_and_monthly():
    daily = _toy()
    out = derive_predictors(daily)
    env = out.env.to_pandas()
    t = 0.5 * (daily.t_min + daily.t_max)
    np.testing.assert_allclose(env["mat"], t.mean("time"), rtol=1e-12)
    np.testing.assert_allclose(env["map"], [2.0 * 365.25, 365.25], rtol=1e-12)
    clim = t.groupby("time.month").mean()
    np.testing.assert_allclose(env["t_seasonality"], clim.std("month"), rtol=1e-12)
    np.testing.assert_allclose(env["p_seasonality"], [0.0, 0.0], atol=1e-12)
    pet = 0.0135 * 0.408 * 15.0 * (t + 17.8)
    np.testing.assert_allclose(env["aridity"], [2.0, 1.0] / pet.mean("time"), rtol=1e-12)
    units = dict(zip(out.feature.values, out.feature_units.values, strict=True))
    assert units == {
        "mat": "degC",
        "map": "mm yr-1",
        "t_seasonality": "degC",
        "p_seasonality": "mm d-1",
        "aridity": "1",
    }
    # monthly steps are weighted by their days: a constant rate gives the same MAP
    monthly = derive_predictors(daily.resample(time="MS").mean(), which=("map",))
    np.testing.assert_allclose(monthly.env.sel(feature="map"), env["map"], rtol=1e-12)
    with pytest.raises(ValueError, match="unknown predictors"):
        derive_predictors(daily, which=("mat", "npp"))


def test_derived_units_are_converted_and_record_respected():
    ds = _toy()
    kelvin = ds.copy()
    kelvin["t_min"] = (ds.t_min + 273.15).assign_attrs(units="K")
    kelvin["t_max"] = (ds.t_max + 273.15).assign_attrs(units="K")
    a = derive_predictors(ds, which=("mat",)).env.values
    b = derive_predictors(kelvin, which=("mat",)).env.values
    np.testing.assert_allclose(a, b, rtol=1e-9)
    # only the site's record counts: garbage outside it is ignored
    valid = np.ones((2, ds.sizes["time"]), bool)
    valid[0, 365:] = False
    gap = ds.copy(deep=True)
    gap["site_time_valid"] = (("site", "time"), valid)
    gap["t_min"][0, 365:] = np.nan
    gap["t_max"][0, 365:] = 1e6
    first_year = ds.isel(time=slice(0, 365))
    want = float(0.5 * (first_year.t_min + first_year.t_max).isel(site=0).mean())
    got = derive_predictors(gap, which=("mat",)).env.sel(feature="mat").values[0]
    assert got == pytest.approx(want, rel=1e-12)


def test_derived_on_fluxnet_sites_match_published_climate(fluxnet_dir):
    ds = read_fluxnet_sites(fluxnet_dir, sites=["US-Var", "FI-Hyy", "AU-How"])
    published = ds.env.to_pandas()
    derived = derive_predictors(ds).env.to_pandas()
    assert list(derived.columns) == [
        "elevation",
        "mat",
        "map",
        "t_seasonality",
        "p_seasonality",
        "aridity",
    ]
    np.testing.assert_allclose(derived["mat"], published["mat"], atol=1.5)
    np.testing.assert_allclose(derived["map"], published["map"], rtol=0.25)
    assert derived.loc["US-Var", "aridity"] < 0.65 < derived.loc["AU-How", "aridity"]


def test_seasonal_timing_predictors_place_the_peak_in_either_hemisphere():
    # temperature peaking on day ~190 (north) and half a year later (south); rain peaking
    # in late January at both
    time = pd.date_range("2001-01-01", periods=48, freq="MS")
    mid = np.asarray(time.day_of_year, float) + 0.5 * np.asarray(time.days_in_month) - 1.0
    turn = 2 * np.pi * mid / 365.25
    peak_t = np.array([190.0, 190.0 - 182.625])
    t = 12.0 + 9.0 * np.cos(turn[None, :] - 2 * np.pi * peak_t[:, None] / 365.25)
    p = 3.0 + 2.0 * np.cos(turn - 2 * np.pi * 25.0 / 365.25)
    ds = xr.Dataset(
        {
            "t_min": (("site", "time"), t - 5, {"units": "degC"}),
            "t_max": (("site", "time"), t + 5, {"units": "degC"}),
            "swrad": (("site", "time"), np.full(t.shape, 15.0), {"units": "MJ m-2 d-1"}),
            "precip": (("site", "time"), np.broadcast_to(p, t.shape), {"units": "mm d-1"}),
        },
        coords={"site": ["N", "S"], "time": time, "lat": ("site", [45.0, -35.0])},
    )
    env = derive_predictors(ds, which=("t_cos", "t_sin", "p_cos", "p_sin")).env.to_pandas()
    for prefix, amp, peaks in (("t", 9.0, peak_t), ("p", 2.0, [25.0, 25.0])):
        c, s = env[f"{prefix}_cos"].to_numpy(), env[f"{prefix}_sin"].to_numpy()
        day = np.mod(np.degrees(np.arctan2(s, c)), 360.0) / 360.0 * 365.25
        np.testing.assert_allclose(day, peaks, atol=4.0)  # monthly sampling of a cosine
        np.testing.assert_allclose(np.hypot(c, s), amp, rtol=0.03)
    # the two temperature cycles point in opposite directions (the hemisphere)
    assert env["t_cos"]["N"] < 0 < env["t_cos"]["S"]
