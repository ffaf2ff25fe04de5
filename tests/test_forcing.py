"""Building forcing from xarray datasets: published conventions, units, validation."""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from _reference import load_reference_groups
from differland_bayes.forcing import ForcingError, build_forcing, monthly_means
from differland_bayes.io import read_fluxnet_site
from differland_bayes.process import get_model


def _reference_sites(reference_dir, name):
    ds = xr.open_dataset(reference_dir / name)
    return [str(s) for s in ds.site.values]


def test_daily_site_forcing_reproduces_published_dalec990_matrix(reference_dir, fluxnet_dir):
    group = load_reference_groups(reference_dir / "dalec990_reference.nc")
    sites = _reference_sites(reference_dir, "dalec990_reference.nc")
    model = get_model("dalec990")
    with jax.enable_x64(True):
        for g in group:
            for k, case in enumerate(g.cases):
                ds = read_fluxnet_site(fluxnet_dir / f"{sites[case]}.nc")
                mat = np.stack(build_forcing(ds, model), axis=-1)
                np.testing.assert_allclose(mat, g.forcing[k], rtol=1e-12, atol=1e-12)


def test_monthly_site_forcing_reproduces_published_dalec993_matrix(reference_dir, fluxnet_dir):
    (group,) = load_reference_groups(reference_dir / "dalec993_reference.nc")
    sites = _reference_sites(reference_dir, "dalec993_reference.nc")
    model = get_model("dalec993")
    fire_col = model.Forcing._fields.index("burned_area")
    with jax.enable_x64(True):
        for k in range(0, len(group.cases), 4):  # one case per site (forcing is per site)
            ds = monthly_means(read_fluxnet_site(fluxnet_dir / f"{sites[k]}.nc"))
            mat = np.stack(build_forcing(ds, model, step_length="calendar"), axis=-1)
            ref = group.forcing[k]
            assert mat.shape == ref.shape
            assert not ref[:, fire_col].any()
            np.testing.assert_allclose(mat, ref, rtol=1e-12, atol=1e-12)


def _toy(n_time=24, freq="MS", sites=None):
    time = pd.date_range("2005-01-01", periods=n_time, freq=freq)
    shape = (len(sites), n_time) if sites else (n_time,)
    dims = ("site", "time") if sites else ("time",)
    rng = np.random.default_rng(0)
    t = 10 + 8 * np.sin(2 * np.pi * np.arange(n_time) / 12) + rng.normal(0, 0.1, shape)
    data = {
        "t_min": (dims, t - 5, {"units": "degC"}),
        "t_max": (dims, t + 5, {"units": "degC"}),
        "swrad": (dims, np.full(shape, 15.0), {"units": "MJ m-2 d-1"}),
        "co2": (dims, np.full(shape, 400.0), {"units": "ppm"}),
        "vpd": (dims, np.full(shape, 8.0), {"units": "hPa"}),
        "precip": (dims, np.full(shape, 2.0), {"units": "mm d-1"}),
    }
    coords = {"time": time}
    if sites:
        coords["site"] = sites
        coords["lat"] = ("site", np.linspace(-30, 60, len(sites)), {"units": "degrees_north"})
    else:
        coords["lat"] = ((), 45.0, {"units": "degrees_north"})
    return xr.Dataset(data, coords=coords)


def test_conversions_give_the_same_forcing():
    model = get_model("dalec993")
    ds = _toy()
    ref = build_forcing(ds, model)
    alt = ds.copy()
    alt["t_min"] = (ds.t_min + 273.15).assign_attrs(units="K")
    alt["swrad"] = (ds.swrad / 0.0864).assign_attrs(units="W m-2")
    alt["vpd"] = (ds.vpd / 10).assign_attrs(units="kPa")
    alt["precip"] = (ds.precip / 86400).assign_attrs(units="kg m-2 s-1")
    alt["t_max"] = ds.t_max.assign_attrs(units="deg C")
    got = build_forcing(alt, model)
    for name in model.Forcing._fields:
        np.testing.assert_allclose(getattr(got, name), getattr(ref, name), rtol=1e-5, err_msg=name)


def test_step_length_and_time_stamps():
    ds = _toy(n_time=3)
    faithful = build_forcing(ds, get_model("dalec993"))
    conserving = build_forcing(ds, get_model("dalec993", mode="conserving"))
    np.testing.assert_array_equal(faithful.delta_t, [30, 30, 30])
    np.testing.assert_array_equal(conserving.delta_t, [31, 28, 31])
    # floor of the mid-month date, days since 2000-01-01; day of year of that date
    expected = pd.to_datetime(["2005-01-16", "2005-02-15", "2005-03-16"])
    np.testing.assert_array_equal(faithful.days, (expected - pd.Timestamp("2000-01-01")).days)
    np.testing.assert_array_equal(faithful.doy, expected.day_of_year)


def test_multi_site_dataset_gives_site_by_time_fields():
    ds = _toy(sites=["a", "b", "c"])
    f = build_forcing(ds, get_model("dalec993"))
    assert f.t_min.shape == (3, 24)
    np.testing.assert_allclose(f.lat[:, 0], [-30, 15, 60])
    np.testing.assert_allclose(
        f.t_mean_longterm[:, 0], ((ds.t_min + ds.t_max) / 2).mean("time"), rtol=1e-6
    )


def test_every_problem_reported_at_once():
    ds = _toy(sites=["a", "b"])
    ds = ds.drop_vars("co2")
    ds["vpd"].attrs["units"] = "furlongs"
    t = ds.t_min.values.copy()
    t[1, 5] = np.nan
    ds["t_min"] = (("site", "time"), t, {"units": "degC"})
    p = ds.precip.values.copy()
    p[0, 2] = -1.0
    ds["precip"] = (("site", "time"), p, {"units": "mm d-1"})
    with pytest.raises(ForcingError) as err:
        build_forcing(ds, get_model("dalec993"))
    msg = str(err.value)
    assert "missing required variable 'co2'" in msg
    assert "'vpd': unknown units 'furlongs'" in msg and "'hPa'" in msg
    assert "t_min: expected finite values, found 1 non-finite at (site=b, time=2005-06-01)" in msg
    assert "precip: precipitation must be >= 0" in msg and "site=a, time=2005-03-01" in msg


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda ds: ds.assign(t_min=ds.t_max + 1), "t_min > t_max"),
        (lambda ds: ds.assign(swrad=-ds.swrad), "radiation must be >= 0"),
        (lambda ds: ds.assign(vpd=ds.vpd * 0 - 1), "VPD must be >= 0"),
        (lambda ds: ds.drop_vars("lat"), "missing latitude"),
        (lambda ds: ds.isel(time=[0, 1, 3]), "consecutive calendar months"),
        (
            lambda ds: ds.assign(precip=ds.precip.assign_attrs(units=None) * 1),
            "no 'units' attribute",
        ),
    ],
)
def test_each_validation_rule(mutate, message):
    ds = mutate(_toy())
    for name in ds.data_vars:
        if ds[name].attrs.get("units", "x") is None:
            del ds[name].attrs["units"]
    with pytest.raises(ForcingError, match=message):
        build_forcing(ds, get_model("dalec993"))


def test_daily_data_for_the_monthly_model_is_refused_with_advice():
    ds = _toy(n_time=59, freq="D")  # January and February
    with pytest.raises(ForcingError, match="monthly_means"):
        build_forcing(ds, get_model("dalec993"))
    f = build_forcing(monthly_means(ds), get_model("dalec993"))
    assert f.t_min.shape == (2,)


def test_input_dataset_is_not_modified():
    ds = _toy()
    ds["t_min"] = (ds.t_min + 273.15).assign_attrs(units="K")
    before = ds.copy(deep=True)
    build_forcing(ds, get_model("dalec993"))
    xr.testing.assert_identical(ds, before)
