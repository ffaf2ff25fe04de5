"""Gridded CF NetCDF / Zarr forcing as a dataset of land pixels (synthetic files)."""

from __future__ import annotations

import logging

import dask.array
import jax
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from differland_bayes.dataset import read_dataset, write_dataset
from differland_bayes.forcing import build_forcing
from differland_bayes.io import iter_site_blocks, read_gridded
from differland_bayes.process import get_model

N_TIME, N_LAT, N_LON = 36, 6, 8
OCEAN = [(0, 0), (0, 1), (0, 2)]  # NaN forcing
MASKED = (1, 1)  # land mask 0, finite forcing


def _grid() -> xr.Dataset:
    """CF-style monthly grid: K, W m-2, kg m-2 s-1, kPa; descending latitude; 0-360 lon."""
    rng = np.random.default_rng(1)
    time = pd.date_range("2001-01-01", periods=N_TIME, freq="MS")
    lat = np.linspace(50.0, 40.0, N_LAT)
    lon = np.linspace(350.0, 357.0, N_LON)
    shape = (N_TIME, N_LAT, N_LON)
    dims = ("time", "latitude", "longitude")
    tmin = 280.0 + rng.normal(0, 3, shape)
    ds = xr.Dataset(
        {
            "tasmin": (dims, tmin, {"units": "K"}),
            "tasmax": (dims, tmin + 8.0, {"units": "K"}),
            "rsds": (dims, rng.uniform(50, 250, shape), {"units": "W m-2"}),
            "pr": (dims, rng.uniform(0, 5e-5, shape), {"units": "kg m-2 s-1"}),
            "vpd": (dims, rng.uniform(0.1, 2, shape), {"units": "kPa"}),
            "co2": ("time", np.linspace(370, 380, N_TIME), {"units": "ppm"}),
            "gpp": (dims, rng.uniform(0, 5, shape), {"units": "gC m-2 d-1"}),
            "land": (("latitude", "longitude"), np.ones((N_LAT, N_LON), np.int8)),
        },
        coords={
            "time": time,
            "latitude": ("latitude", lat, {"units": "degrees_north"}),
            "longitude": ("longitude", lon, {"units": "degrees_east"}),
        },
    )
    for i, j in OCEAN:
        for v in ("tasmin", "tasmax", "rsds", "pr", "vpd"):
            ds[v][:, i, j] = np.nan
    ds["land"][MASKED] = 0
    ds["gpp"][5, 2, 2] = np.nan
    return ds


@pytest.fixture(scope="module")
def grid() -> xr.Dataset:
    return _grid()


@pytest.fixture(scope="module", params=[".nc", ".zarr"])
def path(request, tmp_path_factory, grid):
    p = tmp_path_factory.mktemp("grid") / f"grid{request.param}"
    if request.param == ".nc":
        grid.to_netcdf(p)
    else:
        grid.chunk({"time": 12, "latitude": 3, "longitude": 4}).to_zarr(p, consolidated=False)
    return p


def test_blocks_concatenate_to_the_full_result(path):
    full = read_gridded(path, valid="land", block_size=10)
    assert isinstance(full.t_min.data, dask.array.Array)  # lazy
    assert full.t_min.data.chunks[0] == (10, 10, 10, 10, 4)
    loaded = full.load()
    blocks = list(iter_site_blocks(path, 7, valid="land"))
    assert [b.sizes["site"] for b in blocks] == [7, 7, 7, 7, 7, 7, 2]
    for b in blocks:
        assert not isinstance(b.t_min.data, dask.array.Array)
    xr.testing.assert_identical(xr.concat(blocks, "site"), loaded)


def test_ocean_and_masked_pixels_are_excluded(path, grid):
    ds = read_gridded(path, valid="land").load()
    assert ds.sizes["site"] == N_LAT * N_LON - len(OCEAN) - 1
    lat, lon = grid.latitude.values, grid.longitude.values - 360.0
    ids = set(ds.site.values)
    for i, j in [*OCEAN, MASKED]:
        assert f"lat{lat[i]:.3f}_lon{lon[j]:.3f}" not in ids
    assert "lat50.000_lon-7.000" in ids  # first land pixel of row 0 (lon 353 -> -7)
    assert ds.site.values[0] == "lat50.000_lon-7.000"  # row-major grid order
    # without a mask only the ocean (non-finite forcing) drops out
    assert read_gridded(path).sizes["site"] == N_LAT * N_LON - len(OCEAN)
    mask = grid["land"].values.astype(bool)
    mask[5, :] = False
    assert read_gridded(path, valid=mask).sizes["site"] == N_LAT * N_LON - 3 - 1 - N_LON


def test_values_and_units(path, grid, caplog):
    with caplog.at_level(logging.INFO, logger="differland_bayes.units"):
        ds = read_gridded(path, valid="land").load()
    assert "converted tasmin from 'K' to 'degC'" in caplog.text
    assert "converted pr from 'kg m-2 s-1' to 'mm d-1'" in caplog.text
    site = ds.sel(site="lat48.000_lon-5.000")
    src = grid.sel(latitude=48.0, longitude=355.0)
    np.testing.assert_allclose(site.t_min, src.tasmin - 273.15, rtol=1e-12)
    np.testing.assert_allclose(site.swrad, src.rsds * 0.0864, rtol=1e-12)
    np.testing.assert_allclose(site.precip, src.pr * 86400, rtol=1e-12)
    np.testing.assert_allclose(site.vpd, src.vpd * 10, rtol=1e-12)
    np.testing.assert_array_equal(site.co2, grid.co2)
    assert site.lat.item() == 48.0 and site.lon.item() == -5.0
    assert ds.t_min.attrs["units"] == "degC" and ds.swrad.attrs["units"] == "MJ m-2 d-1"
    np.testing.assert_array_equal(ds.gpp_mask, np.isfinite(ds.gpp))
    assert (~ds.gpp_mask).sum() == 1
    assert ds.attrs["step"] == "monthly"
    assert set(np.unique(ds.split_time)) == {1, 2}  # 3 years: 2001-2002 train, 2003 valid
    np.testing.assert_allclose(ds.env.sel(feature="abs_lat"), ds.lat)
    with jax.enable_x64(True):
        f = build_forcing(ds, get_model("dalec993"))
    assert f.t_min.shape == (ds.sizes["site"], N_TIME)


def test_lazy_result_round_trips(path, tmp_path):
    ds = read_gridded(path, valid="land", block_size=16)
    out = write_dataset(ds, tmp_path / "pixels.nc")
    xr.testing.assert_identical(read_dataset(out), ds.load())


def test_errors(tmp_path, grid):
    p = tmp_path / "bad.nc"
    grid.drop_vars("vpd").to_netcdf(p)
    with pytest.raises(ValueError, match=r"missing required forcing \['vpd'\]"):
        read_gridded(p)
    p = tmp_path / "units.nc"
    bad = grid.copy()
    bad["gpp"].attrs["units"] = "kg m-2 s-1"
    bad["tasmin"].attrs["units"] = "furlongs"
    bad.to_netcdf(p)
    with pytest.raises(ValueError, match="furlongs") as err:
        read_gridded(p)
    assert "gpp" in str(err.value)
    with pytest.raises(ValueError, match="for vpd"):
        read_gridded(tmp_path / "bad.nc", variables={"vpd": "pr"})
    grid.to_netcdf(tmp_path / "good.nc")
    with pytest.raises(ValueError, match=r"expected shape \(6, 8\)"):
        read_gridded(tmp_path / "good.nc", valid=np.ones((2, 2), bool))
    with pytest.raises(ValueError, match="'sea' is not a variable"):
        read_gridded(tmp_path / "good.nc", valid="sea")
    with pytest.raises(FileNotFoundError):
        read_gridded(tmp_path / "nope.zarr")
    p = tmp_path / "daily_gap.nc"
    grid.isel(time=[0, 1, 3]).to_netcdf(p)
    with pytest.raises(ValueError, match="consecutive calendar months"):
        read_gridded(p)


def test_mid_month_stamps_and_dataarray_mask(tmp_path, grid):
    mid = grid.assign_coords(time=grid.time.values + np.timedelta64(15, "D"))
    p = tmp_path / "mid.nc"
    mid.to_netcdf(p)
    ds = read_gridded(p, valid=grid["land"] > 0).load()
    ref = read_gridded(_write(tmp_path / "ref.nc", grid), valid="land").load()
    xr.testing.assert_identical(ds.drop_attrs(), ref.drop_attrs())
    assert (pd.DatetimeIndex(ds.time.values).day == 1).all()


def _write(path, ds):
    ds.to_netcdf(path)
    return path
