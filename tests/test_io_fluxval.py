"""Reader of CARDAMOM-FluxVal v1.0 (``data/cardamom-fluxval``)."""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from differland_bayes.dataset import STREAMS, env_matrix, read_dataset, write_dataset
from differland_bayes.forcing import build_forcing
from differland_bayes.io import read_fluxval
from differland_bayes.process import get_model

FORCING = {
    "t_min": "degC",
    "t_max": "degC",
    "swrad": "MJ m-2 d-1",
    "co2": "ppm",
    "vpd": "hPa",
    "precip": "mm d-1",
}


@pytest.fixture(scope="module")
def fluxval_dir(data_dir):
    path = data_dir / "cardamom-fluxval"
    if not path.is_dir():
        pytest.fail(f"{path} missing from the shared data folder")
    return path


@pytest.fixture(scope="module")
def fv(fluxval_dir):
    # the site table is checked against the file (ids, coordinates, IGBP, month counts)
    return read_fluxval(fluxval_dir / "fluxval_monthly.nc", fluxval_dir / "sites.csv")


@pytest.fixture(scope="module")
def raw(fluxval_dir):
    with xr.open_dataset(fluxval_dir / "fluxval_monthly.nc") as ds:
        return ds.load()


def test_layout(fv):
    assert fv.sizes["site"] == 176 and fv.sizes["time"] == 192
    time = pd.DatetimeIndex(fv.time.values)
    assert time[0] == pd.Timestamp("2001-01-01") and time[-1] == pd.Timestamp("2016-12-01")
    assert (time.day == 1).all()
    assert fv.attrs["step"] == "monthly"
    assert fv.attrs["conventions"] == "differland-canonical-1"
    assert "CC-BY-4.0" in fv.attrs["license"]
    counts = pd.Series(fv.vegetation_class.values).value_counts().to_dict()
    assert counts == {
        "ENF": 42,
        "GRA": 30,
        "DBF": 23,
        "WET": 17,
        "CRO": 17,
        "EBF": 13,
        "OSH": 12,
        "MF": 8,
        "SAV": 6,
        "WSA": 5,
        "CSH": 2,
        "SNO": 1,
    }
    assert -38 < fv.lat.min() < -37 and 78 < fv.lat.max() < 80
    assert "grid_lat" in fv.coords and fv.grid_lat.attrs["units"] == "degrees_north"
    assert float(np.abs(fv.lat - fv.grid_lat).max()) <= 0.25
    assert (fv.split_site.values == "train").all()


def test_forcing(fv, raw):
    for name, units in FORCING.items():
        assert fv[name].dims == ("site", "time")
        assert fv[name].attrs["units"] == units
        assert np.isfinite(fv[name].values).all()
    # CO2 is one series broadcast to every site
    np.testing.assert_array_equal(fv.co2.values, np.broadcast_to(raw.CO2.values, (176, 192)))
    np.testing.assert_array_equal(fv.t_min.values, raw.T2M_MIN.values.astype(float))
    # round-off negatives (-7e-15) of radiation and precipitation are set to 0
    for name, src in (("swrad", "SSRD"), ("precip", "TOTAL_PREC")):
        assert raw[src].values.min() < 0
        assert fv[name].values.min() == 0
        np.testing.assert_allclose(fv[name].values, raw[src].values, atol=1e-6)


def test_streams_masks_split(fv, raw):
    assert {"gpp", "nee", "et", "lai", "biomass"} <= set(fv.data_vars)
    for s in ("gpp", "nee", "et", "lai", "biomass"):
        assert fv[s].attrs["units"] == STREAMS[s].units
        np.testing.assert_array_equal(fv[f"{s}_mask"].values, np.isfinite(fv[s].values))
    np.testing.assert_array_equal(fv.split_time.values, raw.split.values)
    assert fv.split_time.dtype == np.int8
    # each stream has its own mask: ET is missing in about 1 % of flux months
    flux = fv.split_time.values > 0
    assert not fv.gpp_mask.values[~flux].any()
    et_missing = 1 - fv.et_mask.values[flux].mean()
    assert 0.005 < et_missing < 0.02
    assert (fv.gpp_mask != fv.et_mask).any()
    assert (fv.gpp.values[fv.gpp_mask.values] > 0).all()
    assim = (fv.gpp_mask & (fv.split_time == 1)).sum("time").values
    assert 20 <= np.median(assim) <= 26  # "the median site has ~22 assimilation months"
    # biomass: one value per site (168 of 176 sites), in December 2015
    has = fv.biomass_mask.values
    assert has.any(axis=1).sum() == 168 and (has.sum(axis=1) <= 1).all()
    assert set(pd.DatetimeIndex(fv.time.values[np.nonzero(has)[1]])) == {pd.Timestamp("2015-12-01")}


def test_env(fv):
    units = dict(zip(fv.feature.values, fv.feature_units.values, strict=True))
    assert units == {"abs_lat": "degrees", "mat": "degC", "map": "mm yr-1"}
    np.testing.assert_allclose(fv.env.sel(feature="abs_lat"), np.abs(fv.lat))
    t = 0.5 * (fv.t_min + fv.t_max)
    days = xr.DataArray(np.asarray(pd.DatetimeIndex(fv.time.values).days_in_month), dims="time")
    mat = (t * days).sum("time") / days.sum()
    np.testing.assert_allclose(fv.env.sel(feature="mat"), mat, rtol=1e-12)
    assert np.isfinite(fv.env.values).all()
    x, names = env_matrix(fv)
    assert x.shape == (176, 3 + 12) and "vegetation_class=ENF" in names


def test_build_forcing_dalec993(fv):
    model = get_model("dalec993")
    with jax.enable_x64(True):
        f = build_forcing(fv, model)
        g = build_forcing(fv.assign_coords(lat=fv.grid_lat), model)
    assert f.t_min.shape == (176, 192)
    np.testing.assert_array_equal(np.asarray(f.lat)[:, 0], fv.lat.values)
    np.testing.assert_array_equal(np.asarray(g.lat)[:, 0], fv.grid_lat.values)


def test_sites_csv_disagreement_is_reported(fluxval_dir, tmp_path):
    table = pd.read_csv(fluxval_dir / "sites.csv")
    table.loc[table.site == "AT-Neu", "igbp"] = "ENF"
    table.loc[table.site == "AR-Vir", "n_months_gpp_assim"] += 1
    table.to_csv(tmp_path / "sites.csv", index=False)
    with pytest.raises(ValueError, match=r"igbp differs at sites \['AT-Neu'\]") as err:
        read_fluxval(fluxval_dir / "fluxval_monthly.nc", tmp_path / "sites.csv", derive=())
    assert "n_months_gpp_assim" in str(err.value) and "AR-Vir" in str(err.value)


def test_not_a_fluxval_file(fluxval_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.nc"):
        read_fluxval(tmp_path / "nope.nc")
    xr.Dataset({"x": ("t", [1.0])}).to_netcdf(tmp_path / "other.nc")
    with pytest.raises(ValueError, match="missing variables"):
        read_fluxval(tmp_path / "other.nc")


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_round_trip(fv, tmp_path, suffix):
    path = write_dataset(fv, tmp_path / f"fluxval{suffix}")
    back = read_dataset(path)
    xr.testing.assert_identical(back, fv)
    assert back.attrs == fv.attrs
    for v in fv.variables:
        assert back[v].dtype == fv[v].dtype or fv[v].dtype.kind == "U", v
