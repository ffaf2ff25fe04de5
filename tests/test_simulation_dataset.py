"""The default site, simulate_dataset and the atomic writers."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from differland_bayes import __version__
from differland_bayes.defaults import default_forcing_dataset, default_theta
from differland_bayes.io.atomic import atomic_path, write_netcdf_atomic
from differland_bayes.process import get_model
from differland_bayes.process.components.carbon import POOL_MAX, POOL_MIN
from differland_bayes.process.dalec990.model import WATER_MAX as WATER_MAX_990
from differland_bayes.process.dalec993.model import WATER_MAX as WATER_MAX_993
from differland_bayes.process.metadata import OUTPUT_INFO
from differland_bayes.simulation import simulate_dataset

FORCING_VARIABLES = ("t_min", "t_max", "swrad", "co2", "vpd", "precip")
DAILY_YEARS = 2  #: shorter daily run to keep the tests fast
#: upper clipping bound of each pool output
POOL_UPPER = {
    **{f"next_{name}_pool": hi for name, hi in zip(POOL_MAX._fields, POOL_MAX, strict=True)},
    "next_water_pool": WATER_MAX_993,
    "next_paw_pool": WATER_MAX_990,
    "next_puw_pool": WATER_MAX_990,
}


@pytest.fixture(scope="module")
def forcing993() -> xr.Dataset:
    return default_forcing_dataset("dalec993")


@pytest.fixture(scope="module")
def forcing990() -> xr.Dataset:
    return default_forcing_dataset("dalec990", years=DAILY_YEARS)


@pytest.fixture(scope="module")
def sim993(forcing993) -> xr.Dataset:
    return simulate_dataset("dalec993", forcing993)


@pytest.fixture(scope="module")
def sim990(forcing990) -> xr.Dataset:
    return simulate_dataset(get_model("dalec990"), forcing990)


# -- the default site ---------------------------------------------------------------------
def test_default_forcing_monthly_layout(forcing993):
    time = pd.DatetimeIndex(forcing993["time"].values)
    assert len(time) == 120
    assert time[0] == pd.Timestamp("2001-01-01")
    assert (time.day == 1).all() and (np.diff(time.month + 12 * time.year) == 1).all()
    assert float(forcing993["lat"]) == pytest.approx(45.0)
    assert forcing993["lat"].attrs["units"] == "degrees_north"


def test_default_forcing_daily_layout(forcing990):
    time = pd.DatetimeIndex(forcing990["time"].values)
    assert time[0] == pd.Timestamp("2001-01-01")
    assert (np.diff(time.values) == np.timedelta64(1, "D")).all()
    assert len(time) == 365 * DAILY_YEARS


@pytest.mark.parametrize("name", ["dalec993", "dalec990"])
def test_default_forcing_is_physically_sensible(name, forcing993, forcing990):
    ds = forcing993 if name == "dalec993" else forcing990
    for var in FORCING_VARIABLES:
        assert ds[var].attrs["units"] and ds[var].attrs["long_name"], var
        assert np.isfinite(ds[var].values).all(), var
    assert (ds["precip"].values >= 0).all()
    assert (ds["t_min"].values <= ds["t_max"].values).all()
    assert (ds["vpd"].values >= 0).all() and (ds["swrad"].values > 0).all()
    month = pd.DatetimeIndex(ds["time"].values).month
    t_mean = 0.5 * (ds["t_min"] + ds["t_max"]).values
    assert t_mean[month == 7].mean() > t_mean[month == 1].mean() + 15.0  # seasonal cycle
    assert ds["swrad"].values[month == 6].mean() > 2.5 * ds["swrad"].values[month == 12].mean()
    annual_precip = ds["precip"].values.mean() * 365.25
    assert 600.0 < annual_precip < 1500.0


def test_default_co2_rises_about_2_ppm_per_year(forcing993):
    annual = forcing993["co2"].groupby("time.year").mean().values
    rate = np.polyfit(np.arange(len(annual)), annual, 1)[0]
    assert rate == pytest.approx(2.0, abs=0.2)


def test_default_forcing_is_deterministic_per_seed():
    a = default_forcing_dataset("dalec993", years=2, seed=3)
    b = default_forcing_dataset("dalec993", years=2, seed=3)
    c = default_forcing_dataset("dalec993", years=2, seed=4)
    xr.testing.assert_identical(a, b)
    assert not np.allclose(a["t_min"].values, c["t_min"].values)


@pytest.mark.parametrize("name", ["dalec993", "dalec990"])
def test_default_theta_is_inside_the_bounds_with_forest_pools(name):
    model = get_model(name)
    theta = default_theta(model)
    assert theta.shape == (len(model.table),)
    model.table.check_physical(theta)
    values = dict(zip(model.table.names, theta, strict=True))
    assert values["Cwood"] == 5000.0 and values["Csom"] == 10000.0
    np.testing.assert_array_equal(default_theta(name), theta)


@pytest.mark.parametrize("name", ["dalec993", "dalec990"])
def test_default_simulation_is_a_plausible_forest(name, sim993, sim990):
    ds = sim993 if name == "dalec993" else sim990
    assert all(np.isfinite(ds[v].values).all() for v in OUTPUT_INFO[name])
    years = ds["time"].dt.year
    annual_lai_max = ds["lai"].groupby(years).max().values
    assert (annual_lai_max > 0.5).all() and (annual_lai_max < 6.0).all()
    assert ds["gpp"].min() >= 0.0 and ds["gpp"].max() < 15.0
    assert ds["gpp"].mean() > 1.0  # a productive forest, not a desert
    for pool, upper in POOL_UPPER.items():
        if pool in ds:
            values = ds[pool].values
            assert not np.all(values <= POOL_MIN), f"{pool} pinned at its minimum"
            assert not np.all(values >= upper), f"{pool} pinned at its maximum"
    # phenology: leaf onset in spring, leaf fall in autumn
    month = ds["time"].dt.month.values
    assert month[int(np.argmax(ds["lrf"].values))] in (4, 5, 6)
    assert month[int(np.argmax(ds["lff"].values))] in (9, 10, 11)


# -- simulate_dataset ---------------------------------------------------------------------
@pytest.mark.parametrize("name", ["dalec993", "dalec990"])
def test_dataset_layout_units_and_attributes(name, sim993, sim990, forcing993, forcing990):
    ds = sim993 if name == "dalec993" else sim990
    forcing = forcing993 if name == "dalec993" else forcing990
    model = get_model(name)
    np.testing.assert_array_equal(ds["time"].values, forcing["time"].values)
    for var, (units, long_name) in OUTPUT_INFO[name].items():
        assert ds[var].dims == ("time",)
        assert ds[var].attrs == {"units": units, "long_name": long_name}
    assert set(ds.data_vars) == {*OUTPUT_INFO[name], "parameters"}
    assert ds["parameters"].dims == ("parameter",)
    assert list(ds["parameter"].values) == list(model.table.names)
    assert list(ds["parameter_units"].values) == list(model.table.units)
    np.testing.assert_array_equal(ds["parameter_lower"].values, model.table.lower)
    np.testing.assert_array_equal(ds["parameter_upper"].values, model.table.upper)
    np.testing.assert_allclose(ds["parameters"].values, default_theta(model))
    assert ds.attrs["model"] == name
    assert ds.attrs["mode"] == "faithful"
    assert ds.attrs["water_stress"] == "default"
    assert ds.attrs["water_stress_class"] == "LinearWaterStress"
    assert ds.attrs["differland_bayes_version"] == __version__
    assert ds["delta_t"].attrs["units"] == "d"


def test_dataset_records_the_model_options(forcing993):
    model = get_model("dalec993", water_stress="nothing", mode="conserving")
    ds = simulate_dataset(model, forcing993.isel(time=slice(0, 24)))
    assert ds.attrs["mode"] == "conserving"
    assert ds.attrs["water_stress"] == "nothing"
    assert ds.attrs["water_stress_class"] == "NoWaterStress"
    np.testing.assert_array_equal(ds["beta"].values, 1.0)
    # conserving mode uses calendar month lengths
    assert set(np.unique(ds["delta_t"].values)) <= {28.0, 29.0, 30.0, 31.0}


def _three_sites(forcing: xr.Dataset) -> xr.Dataset:
    offsets = xr.DataArray([-3.0, 0.0, 2.0], dims="site")
    ds = xr.concat([forcing] * 3, dim="site")
    ds = ds.assign_coords(site=["cold", "mid", "warm"], lat=("site", [52.0, 45.0, 38.0]))
    for var in ("t_min", "t_max"):
        ds[var] = (ds[var] - offsets).assign_attrs(forcing[var].attrs)
    return ds


def test_three_sites_vmap_equals_per_site_runs(forcing993):
    forcing = _three_sites(forcing993.isel(time=slice(0, 36)))
    model = get_model("dalec993")
    theta = np.tile(default_theta(model), (3, 1))
    theta[:, model.table.names.index("canopy_efficiency")] = [12.0, 20.0, 30.0]
    ds = simulate_dataset(model, forcing, theta)
    assert ds["gpp"].dims == ("site", "time")
    assert ds["gpp"].shape == (3, 36)
    assert ds["parameters"].dims == ("site", "parameter")
    assert list(ds["site"].values) == ["cold", "mid", "warm"]
    np.testing.assert_array_equal(ds["lat"].values, [52.0, 45.0, 38.0])
    assert ds["nee"].attrs["units"] == "gC m-2 d-1"
    # sites really differ, and each equals its own single-site run
    assert not np.allclose(ds["gpp"].values[0], ds["gpp"].values[2])
    for i in range(3):
        single = simulate_dataset(model, forcing.isel(site=i), theta[i])
        for var in OUTPUT_INFO["dalec993"]:
            np.testing.assert_allclose(
                ds[var].values[i], single[var].values, rtol=2e-5, atol=1e-5, err_msg=var
            )


def test_one_theta_is_broadcast_to_every_site(forcing993):
    forcing = _three_sites(forcing993.isel(time=slice(0, 24)))
    ds = simulate_dataset("dalec993", forcing)
    assert ds["parameters"].shape == (3, len(get_model("dalec993").table))
    np.testing.assert_allclose(ds["parameters"].values[1], default_theta("dalec993"))


def test_out_of_bounds_theta_is_rejected_naming_the_parameter(forcing993):
    model = get_model("dalec993")
    theta = default_theta(model)
    theta[model.table.names.index("canopy_efficiency")] = 500.0
    with pytest.raises(ValueError, match="canopy_efficiency") as info:
        simulate_dataset(model, forcing993, theta)
    assert "[5, 50]" in str(info.value)


@pytest.mark.parametrize("bad", ["nan", "shape"])
def test_malformed_theta_is_rejected(forcing993, bad):
    model = get_model("dalec993")
    theta = default_theta(model)
    if bad == "nan":
        theta[model.table.names.index("Cwood")] = np.nan
        match = "Cwood"
    else:
        theta = theta[:-1]
        match = "shape"
    with pytest.raises(ValueError, match=match):
        simulate_dataset(model, forcing993, theta)


def test_theta_with_sites_needs_a_site_dimension(forcing993):
    theta = np.tile(default_theta("dalec993"), (2, 1))
    with pytest.raises(ValueError, match="site"):
        simulate_dataset("dalec993", forcing993, theta)


# -- atomic writes ------------------------------------------------------------------------
def test_netcdf_round_trip_keeps_units_and_parameter_metadata(sim993, tmp_path):
    path = write_netcdf_atomic(sim993, tmp_path / "sim.nc")
    with xr.open_dataset(path) as back:
        assert back["gpp"].attrs["units"] == "gC m-2 d-1"
        assert list(back["parameter"].values) == list(sim993["parameter"].values)
        assert list(back["parameter_units"].values) == list(sim993["parameter_units"].values)
        np.testing.assert_allclose(back["gpp"].values, sim993["gpp"].values)
        assert back.attrs["model"] == "dalec993"


def test_atomic_writer_refuses_to_clobber(sim993, tmp_path):
    path = tmp_path / "sim.nc"
    write_netcdf_atomic(sim993, path)
    before = path.read_bytes()
    stat = path.stat()
    with pytest.raises(FileExistsError, match="--overwrite") as info:
        write_netcdf_atomic(sim993.isel(time=slice(0, 12)), path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == stat.st_mtime_ns
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim.nc"]  # no temp files left


def test_atomic_writer_overwrites_when_asked(sim993, tmp_path):
    path = tmp_path / "sim.nc"
    write_netcdf_atomic(sim993, path)
    write_netcdf_atomic(sim993.isel(time=slice(0, 12)), path, overwrite=True)
    with xr.open_dataset(path) as back:
        assert back.sizes["time"] == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim.nc"]


def test_failed_write_leaves_the_original_untouched(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("original\n")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(path, overwrite=True) as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".csv"
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert path.read_text() == "original\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def test_new_files_follow_the_umask(tmp_path):
    path = tmp_path / "new.txt"
    with atomic_path(path) as tmp:
        tmp.write_text("x")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_missing_directory_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with atomic_path(tmp_path / "no" / "such.nc"):
            pass
