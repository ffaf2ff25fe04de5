"""Predictors from the satellite leaf-area record (level, seasonality, timing)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from differland_bayes.io import derive_predictors
from differland_bayes.io.lai_climatology import MIN_LAI_MONTHS, lai_climatology

LAI_NAMES = ("lai_mean", "lai_amplitude", "lai_cos", "lai_sin")


def _lai_world(peaks=(6.5, 0.5), years=3, level=2.0, amp=1.0) -> xr.Dataset:
    """Monthly LAI ``level + amp cos(2 pi (m - 0.5 - (peak - 0.5)) / 12)`` per site."""
    time = pd.date_range("2003-01-01", periods=12 * years, freq="MS")
    m = np.asarray(time.month, float)
    lai = np.stack([level + amp * np.cos(2 * np.pi * (m - peak) / 12) for peak in peaks])
    return xr.Dataset(
        {"lai": (("site", "time"), lai, {"units": "m2 m-2"})},
        coords={"site": [f"S{i}" for i in range(len(peaks))], "time": time},
    )


def test_harmonic_recovers_level_amplitude_and_peak_month():
    ds = _lai_world(peaks=(6.5, 0.5, 3.5))
    env = derive_predictors(ds, which=LAI_NAMES).env.to_pandas()
    np.testing.assert_allclose(env["lai_mean"], 2.0, atol=1e-12)
    np.testing.assert_allclose(env["lai_amplitude"], 1.0 / np.sqrt(2.0), atol=1e-12)
    # the angle of (cos, sin) is the peak's calendar time (mid-month m - 0.5 of 12)
    angle = np.arctan2(env["lai_sin"], env["lai_cos"])
    want = 2 * np.pi * (np.array([6.5, 0.5, 3.5]) - 0.5) / 12
    np.testing.assert_allclose(np.angle(np.exp(1j * (angle - want))), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.hypot(env["lai_cos"], env["lai_sin"]), 1.0, atol=1e-12)
    units = dict(zip(env.columns, derive_predictors(ds, which=LAI_NAMES).feature_units.values,
                     strict=True))  # fmt: skip
    assert set(units.values()) == {"m2 m-2"}


def test_missing_months_are_interpolated_around_the_year():
    ds = _lai_world(peaks=(6.5,))
    full = lai_climatology(ds)[0]
    gap = ds.copy(deep=True)
    month = pd.DatetimeIndex(ds.time.values).month
    gap["lai"][0, np.isin(month, [12, 1, 2])] = np.nan  # a northern winter without data
    filled = lai_climatology(gap)[0]
    np.testing.assert_allclose(filled[2:11], full[2:11], atol=1e-12)
    # December, January, February lie on the line from November to March (around the year)
    nov, mar = full[10], full[2]
    np.testing.assert_allclose(filled[[11, 0, 1]], nov + (mar - nov) * np.array([1, 2, 3]) / 4,
                               atol=1e-12)  # fmt: skip


def test_too_little_lai_gives_nan_and_no_lai_is_an_error(caplog):
    ds = _lai_world(peaks=(6.5, 6.5))
    month = pd.DatetimeIndex(ds.time.values).month
    ds["lai"][1, month > MIN_LAI_MONTHS - 1] = np.nan  # site S1 keeps 5 calendar months
    env = derive_predictors(ds, which=("lai_mean",)).env.to_pandas()
    assert np.isfinite(env.loc["S0", "lai_mean"]) and np.isnan(env.loc["S1", "lai_mean"])
    assert "S1" in caplog.text
    with pytest.raises(ValueError, match="'lai' variable"):
        derive_predictors(ds.drop_vars("lai"), which=("lai_cos",))


def test_feature_order_follows_the_request():
    ds = _lai_world()
    out = derive_predictors(ds, which=("lai_sin", "lai_mean"))
    assert list(out.feature.values) == ["lai_sin", "lai_mean"]
