"""Multi-site reader of the daily FLUXNET site drivers (``data/fluxnet-sites``)."""

from __future__ import annotations

import math

import jax
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from differland_bayes.dataset import STREAMS, read_dataset, write_dataset
from differland_bayes.forcing import ForcingError, build_forcing, monthly_means
from differland_bayes.io import read_fluxnet_site, read_fluxnet_sites, select_site, to_monthly
from differland_bayes.process import get_model

FORCING = ["t_min", "t_max", "swrad", "co2", "vpd", "precip"]
OBS = ["gpp", "nee", "reco", "et", "lai", "swc", "ewt"]


@pytest.fixture(scope="module")
def daily(fluxnet_dir):
    return read_fluxnet_sites(fluxnet_dir)


@pytest.fixture(scope="module")
def monthly(daily):
    return to_monthly(daily)


@pytest.fixture(scope="module")
def table(fluxnet_dir):
    return pd.read_csv(fluxnet_dir / "sites.csv").set_index("site_id")


def test_layout(daily, table):
    assert daily.sizes["site"] == 16
    assert sorted(daily.site.values.tolist()) == sorted(table.index)
    time = pd.DatetimeIndex(daily.time.values)
    assert time[0] == pd.Timestamp("1999-01-01")
    assert time[-1] == pd.Timestamp("2019-12-30")  # AU-Dry lacks its last 31 December
    assert (np.diff(time.values) == np.timedelta64(1, "D")).all()
    assert daily.attrs["conventions"] == "differland-canonical-1"
    assert daily.attrs["step"] == "daily"
    for v in FORCING + OBS + ["split_time", "site_time_valid"]:
        assert daily[v].dims == ("site", "time"), v
    for v in FORCING:
        assert daily[v].attrs["units"] in ("degC", "MJ m-2 d-1", "ppm", "hPa", "mm d-1")
    for s in OBS:
        assert daily[s].attrs["units"] == STREAMS[s].units
        assert daily[f"{s}_mask"].dtype == bool
    np.testing.assert_allclose(daily.lat.values, table.loc[daily.site.values, "lat"].values)
    np.testing.assert_allclose(daily.lon.values, table.loc[daily.site.values, "lon"].values)
    assert (daily.vegetation_class.values == table.loc[daily.site.values, "igbp"].values).all()
    assert daily.sel(site="US-Var").vegetation_class.item() == "GRA"
    assert (daily.split_site.values == "train").all()


def test_site_records(daily, table):
    for s in daily.site.values:
        one = daily.sel(site=s)
        valid = one.site_time_valid.values
        days = pd.DatetimeIndex(one.time.values[valid])
        assert valid.sum() == table.loc[s, "n_days"]
        assert days[0] == pd.Timestamp(table.loc[s, "start"])
        assert days[-1] == pd.Timestamp(table.loc[s, "end"])
        for v in FORCING:  # forcing defined exactly on the site's record
            np.testing.assert_array_equal(np.isfinite(one[v].values), valid)
        assert (one.split_time.values[~valid] == 0).all()
        for s_ in OBS:
            assert not one[f"{s_}_mask"].values[~valid].any()


def test_values_against_readme(daily, table):
    var = daily.sel(site="US-Var")
    valid = var.site_time_valid.values
    assert round(float(var.t_min.values[valid].min()), 2) == -1.99
    assert round(float(var.t_min.values[valid].max()), 2) == 28.99
    # missing fractions of every stream at every site match the data README's index
    columns = {
        "gpp": "miss_GPP",
        "nee": "miss_NEE",
        "reco": "miss_RECO",
        "et": "miss_ET",
        "lai": "miss_LAI",
        "swc": "miss_SWC",
        "ewt": "miss_EWT",
        "gpp_unc": "miss_GPPunc",
        "nee_unc": "miss_NEEunc",
        "et_unc": "miss_ETunc",
    }
    for s in daily.site.values:
        one = daily.sel(site=s)
        valid = one.site_time_valid.values
        for v, col in columns.items():
            missing = 1 - np.isfinite(one[v].values[valid]).mean()
            assert missing == pytest.approx(table.loc[s, col], abs=6e-5), (s, v)
    assert table.loc["US-Var", "miss_GPP"] == 0.1545 and table.loc["US-Var", "miss_NEE"] == 0.0216


def test_masks_are_isfinite_and_per_stream(daily):
    for s in OBS:
        np.testing.assert_array_equal(daily[f"{s}_mask"].values, np.isfinite(daily[s].values))
    us_var = daily.sel(site="US-Var")
    assert (us_var.gpp_mask != us_var.nee_mask).any()
    assert (us_var.gpp_mask != us_var.et_mask).any()


def test_swc_sentinel_becomes_nan(daily, fluxnet_dir):
    for s, missing in (("RU-Fyo", 1209), ("US-SRG", 52), ("US-Ton", 111)):
        with xr.open_dataset(fluxnet_dir / f"{s}.nc", decode_times=False) as raw:
            assert int((raw.SWC.values == -9999).sum()) == missing
        one = daily.sel(site=s)
        assert not (one.swc.values == -9999).any()
        assert np.nanmin(one.swc.values) >= 0
    for v in daily.data_vars:
        if daily[v].dtype.kind == "f":
            assert not (daily[v].values == -9999).any(), v


def test_ewt_gaps(daily):
    for s in daily.site.values:
        one = daily.sel(site=s)
        ewt = one.ewt.values[one.site_time_valid.values]
        days = pd.DatetimeIndex(one.time.values[one.site_time_valid.values])
        lead = 105 if s == "DE-Tha" else 44
        assert np.isnan(ewt[:lead]).all(), s
        assert np.isnan(ewt[-1]), s
        first = days[np.isfinite(ewt)][0]
        assert first >= max(days[lead], pd.Timestamp("2002-09-15")), s


def test_uncertainties(daily):
    assert "ewt_unc" not in daily  # missing at every site
    for s in ("gpp", "nee", "reco", "et", "lai"):
        assert daily[f"{s}_unc"].attrs["units"] == STREAMS[s].units
    for s in ("AU-DaS", "AU-Dry", "AU-Stp"):
        assert np.isnan(daily.sel(site=s).nee_unc.values).all()
    # GPP uncertainty exists exactly where GPP does
    np.testing.assert_array_equal(np.isfinite(daily.gpp_unc.values), daily.gpp_mask.values)


def test_env_and_split(daily, fluxnet_dir):
    coords = pd.read_csv(fluxnet_dir / "site_coords.csv").set_index("SITE_ID")
    assert daily.env.dims == ("site", "feature")
    assert dict(zip(daily.feature.values, daily.feature_units.values, strict=True)) == {
        "elevation": "m",
        "map": "mm yr-1",
        "mat": "degC",
    }
    env = daily.env.to_pandas()
    np.testing.assert_allclose(env["elevation"], coords.loc[env.index, "ELEV"])
    np.testing.assert_allclose(env["map"], coords.loc[env.index, "MAP"])
    np.testing.assert_allclose(env["mat"], coords.loc[env.index, "MAT"])
    for s in daily.site.values:
        one = select_site(daily, s, drop=True)
        time = pd.DatetimeIndex(one.time.values)
        n_years = round(len(time) / 365.25)
        train = time.year < time[0].year + math.ceil(n_years / 2)
        np.testing.assert_array_equal(one.split_time.values, np.where(train, 1, 2))
    us_var = select_site(daily, "US-Var", drop=True)
    years = pd.DatetimeIndex(us_var.time.values).year
    assert set(years[us_var.split_time.values == 1]) == {2002, 2003, 2004, 2005, 2006}


def test_select_site_is_the_single_site_reader(daily, fluxnet_dir):
    model = get_model("dalec990")
    for s in ("US-Ha1", "AU-DaS"):
        one = select_site(daily, s, drop=True)
        ref = read_fluxnet_site(fluxnet_dir / f"{s}.nc")
        np.testing.assert_array_equal(one.time.values, ref.time.values)
        for v in FORCING + OBS:
            np.testing.assert_array_equal(one[v].values, ref[v].values)
        with jax.enable_x64(True):
            got = np.stack(build_forcing(one, model), -1)
            want = np.stack(build_forcing(ref, model), -1)
        np.testing.assert_array_equal(got, want)
        kept = select_site(daily, s)
        assert kept.sizes["site"] == 1 and kept.site_time_valid.all()
    with pytest.raises(KeyError, match="XX-Nop.*available sites"):
        select_site(daily, "XX-Nop")


def test_union_forcing_has_gaps_so_build_forcing_refuses(daily):
    with pytest.raises(ForcingError, match="non-finite"):
        build_forcing(daily.isel(time=slice(0, 800)), get_model("dalec990"))


def test_every_site_can_be_filled_outside_its_record(daily, monthly):
    from differland_bayes.bayes.records import fill_outside_records

    for ds in (daily, monthly):
        filled = fill_outside_records(ds)
        valid = ds.site_time_valid.values
        for name in FORCING:
            assert np.all(np.isfinite(filled[name].values)), name
            np.testing.assert_array_equal(filled[name].values[valid], ds[name].values[valid])
            assert "climatology" in filled[name].attrs["fill_outside_record"]
        # observations, masks and the record flag are left alone
        for name in OBS:
            np.testing.assert_array_equal(filled[f"{name}_mask"].values, ds[f"{name}_mask"].values)
        np.testing.assert_array_equal(filled.site_time_valid.values, valid)
    # the whole axis of the 16 sites builds a model forcing once filled
    f = build_forcing(fill_outside_records(monthly), get_model("dalec993"))
    assert f.t_min.shape == (16, monthly.sizes["time"])


def test_common_period(fluxnet_dir):
    ds = read_fluxnet_sites(fluxnet_dir, sites=["US-Var", "US-Ton"], period="common")
    assert str(ds.time.values[0])[:10] == "2002-01-01"
    assert str(ds.time.values[-1])[:10] == "2009-12-31"
    assert ds.site_time_valid.all()
    # split from each site's whole record: US-Ton (2001-2009) trains on 2001-2005
    years = pd.DatetimeIndex(ds.time.values).year
    ton = ds.sel(site="US-Ton").split_time.values
    assert set(years[ton == 1]) == {2002, 2003, 2004, 2005}
    with jax.enable_x64(True):
        f = build_forcing(ds, get_model("dalec990"))
    assert f.t_min.shape == (2, ds.sizes["time"])
    with pytest.raises(ValueError, match="share no day"):
        read_fluxnet_sites(fluxnet_dir, sites=["US-Ha1", "AU-Dry"], period="common")


def test_reader_errors(fluxnet_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="XX-Nop"):
        read_fluxnet_sites(fluxnet_dir, sites=["US-Var", "XX-Nop"])
    with pytest.raises(ValueError, match="period"):
        read_fluxnet_sites(fluxnet_dir, sites=["US-Var"], period="all")
    (tmp_path / "US-Var.nc").symlink_to(fluxnet_dir / "US-Var.nc")
    with pytest.raises(FileNotFoundError, match="site_coords.csv"):
        read_fluxnet_sites(tmp_path)


def test_monthly_aggregation(daily, monthly, fluxnet_dir):
    assert monthly.attrs["step"] == "monthly"
    assert (pd.DatetimeIndex(monthly.time.values).day == 1).all()
    for s in ("US-Var", "AU-Dry"):
        got = select_site(monthly, s, drop=True)
        ref = monthly_means(read_fluxnet_site(fluxnet_dir / f"{s}.nc"))
        assert got.sizes["time"] == 108
        for v in FORCING:
            np.testing.assert_allclose(got[v].values, ref[v].values, rtol=1e-12)
    # a month is observed iff >= half of its calendar days were observed
    day = daily.sel(site="US-Var").gpp_mask.to_series()
    n_obs = day.resample("MS").sum()
    days_in_month = n_obs.index.days_in_month
    mon = monthly.sel(site="US-Var")
    in_record = mon.site_time_valid.to_series()
    expected = (n_obs >= 0.5 * days_in_month) & in_record
    np.testing.assert_array_equal(mon.gpp_mask.values, expected.values)
    assert (mon.gpp_mask != mon.nee_mask).any()
    # uncertainty of a monthly mean of independent daily errors
    t0 = pd.Timestamp("2003-07-01")
    sel = daily.sel(site="US-Var", time=slice(t0, "2003-07-31"))
    u = sel.gpp_unc.values[sel.gpp_mask.values]
    want = np.sqrt(np.sum(u**2)) / u.size
    assert float(mon.gpp_unc.sel(time=t0)) == pytest.approx(want, rel=1e-12)
    assert float(mon.gpp.sel(time=t0)) == pytest.approx(np.mean(sel.gpp.values[sel.gpp_mask]))
    for s in OBS:
        np.testing.assert_array_equal(monthly[f"{s}_mask"], np.isfinite(monthly[s]))
    np.testing.assert_array_equal(
        select_site(monthly, "US-Var", drop=True).split_time.values, np.repeat([1, 2], [60, 48])
    )


def test_build_forcing_on_monthly(monthly, fluxnet_dir):
    model = get_model("dalec993")
    with jax.enable_x64(True):
        f = build_forcing(select_site(monthly, "DE-Hai"), model)
        assert f.t_min.shape == (1, 108)
        shared = read_fluxnet_sites(fluxnet_dir, sites=["DE-Hai", "FR-Pue", "US-Ton"], monthly=True)
        assert shared.site_time_valid.all()
        f = build_forcing(shared, model)
        assert f.t_min.shape == (3, 108)
        assert np.isfinite(np.stack(f, -1)).all()


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_round_trip(monthly, daily, tmp_path, suffix):
    for name, ds in (("monthly", monthly), ("daily", daily.isel(site=[0, 15]))):
        path = write_dataset(ds, tmp_path / f"{name}{suffix}")
        back = read_dataset(path)
        xr.testing.assert_identical(back, ds)
        for v in ds.variables:
            assert _same_attrs(back[v].attrs, ds[v].attrs), v
            assert back[v].dtype == ds[v].dtype or ds[v].dtype.kind == "U", v


def _same_attrs(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    return all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in a)


def test_to_monthly_without_record_flag(daily):
    one = daily.isel(site=[15])
    with_flag = to_monthly(one)
    without = to_monthly(one.drop_vars("site_time_valid"))
    xr.testing.assert_identical(with_flag.drop_vars("site_time_valid"), without)
    with pytest.raises(ValueError, match="daily"):
        to_monthly(with_flag)
