"""Observation operators, temporal aggregation and packing a dataset for a fit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from differland_bayes.bayes.data import pack
from differland_bayes.bayes.operators import (
    aggregate,
    aggregation_index,
    model_streams,
    predict_stream,
)
from differland_bayes.process import get_model, simulate
from differland_bayes.synthetic import synthesize


@pytest.fixture(scope="module")
def world():
    return synthesize(6, years=2, seed=3)


def test_daily_to_monthly_aggregation_is_a_mean_per_month():
    days = pd.date_range("2003-01-01", "2003-12-31", freq="D")
    months = pd.date_range("2003-01-01", periods=12, freq="MS")
    idx = aggregation_index(days, months)
    assert np.bincount(idx).tolist() == list(days.to_series().groupby(days.month).size())
    values = jnp.asarray(np.vstack([np.arange(365.0), np.ones(365)]))
    monthly = aggregate(values, jnp.asarray(idx), 12)
    expected = pd.Series(np.arange(365.0), index=days).groupby(days.month).mean().to_numpy()
    np.testing.assert_allclose(monthly[0], expected, rtol=1e-6)
    np.testing.assert_allclose(monthly[1], 1.0)
    # total over the year is conserved when weighted by days per month
    np.testing.assert_allclose(float(jnp.sum(monthly[0] * np.bincount(idx))), np.arange(365).sum())
    assert aggregate(values, None, 365) is values


def test_steps_outside_the_observation_span_are_dropped():
    days = pd.date_range("2002-12-25", "2003-02-05", freq="D")
    idx = aggregation_index(days, pd.date_range("2003-01-01", periods=1, freq="MS"))
    assert (idx == 0).sum() == 31 and (idx == 1).sum() == len(days) - 31


def test_operators_match_model_outputs():
    model = get_model("dalec993")
    params, pools0 = model.split(model.table.default)
    met = np.tile(np.array([7335.0, 5, 15, 15, 400, 100, 0.01, 8, 2, 45, 30, 10, 2]), (6, 1))
    out = simulate(model, params, pools0, model.forcing_from_matrix(met))
    np.testing.assert_allclose(predict_stream("reco", out), out.gpp + out.nee)
    np.testing.assert_allclose(
        predict_stream("biomass", out),
        out.next_labile_pool + out.next_foliar_pool + out.next_root_pool + out.next_wood_pool,
    )
    assert "sif" in model_streams(model) and "sif" not in model_streams(get_model("dalec990"))
    with pytest.raises(KeyError, match="no observation operator"):
        predict_stream("swc", out)


def test_pack_masks_splits_and_spinup(world):
    model = get_model("dalec993")
    data, meta = pack(world, model)
    assert set(data.streams) == {"gpp", "nee", "et", "lai"}
    gpp = data.streams["gpp"]
    expected = (
        np.isfinite(world.gpp.values) & world.gpp_mask.values & (world.split_time.values == 1)
    )
    np.testing.assert_array_equal(gpp.mask, expected)
    assert np.all(np.isfinite(np.asarray(gpp.value))) and np.all(
        np.asarray(gpp.value)[~expected] == 0
    )
    np.testing.assert_allclose(np.asarray(data.env).mean(0)[: len(meta.env_mean)], 0.0, atol=1e-6)
    all_data, _ = pack(world, model, split=None, spinup_steps=3)
    assert not np.asarray(all_data.streams["gpp"].mask)[:, :3].any()
    assert int(all_data.streams["gpp"].mask.sum()) > int(gpp.mask.sum())
    # prediction at new sites reuses the training standardisation
    new, _ = pack(world.isel(site=[0, 1]), model, env_spec=meta)
    np.testing.assert_allclose(new.env, data.env[:2], rtol=1e-6)


def test_pack_errors_name_the_problem(world):
    with pytest.raises(ValueError, match="streams \\['sif'\\]"):
        pack(world, get_model("dalec993"), streams=["sif"])
    with pytest.raises(ValueError, match="no observation left"):
        pack(world, get_model("dalec993"), split=7)


# --------------------------------------------------------------------------- union axis
# DE-Hai 2001-2009, US-Var 2002-2010, FI-Hyy 2006-2014: one 2001-2014 axis, three records
UNION_SITES = ["DE-Hai", "US-Var", "FI-Hyy"]
FORCING = ["t_min", "t_max", "swrad", "co2", "vpd", "precip"]


@pytest.fixture(scope="module")
def union(fluxnet_dir):
    from differland_bayes.io import read_fluxnet_sites

    return read_fluxnet_sites(fluxnet_dir, sites=UNION_SITES, period="union")


@pytest.fixture(scope="module")
def union_packed(union):
    with jax.enable_x64(True):
        return pack(union, get_model("dalec990"))


def _climatology_by_hand(values: np.ndarray, valid: np.ndarray, time: pd.DatetimeIndex):
    """Mean over the valid days of each calendar day, 29 February counted as 28 February."""
    month, day = np.asarray(time.month), np.asarray(time.day)
    day = np.where((month == 2) & (day == 29), 28, day)
    s = pd.Series(values[valid], index=pd.MultiIndex.from_arrays([month[valid], day[valid]]))
    clim = s.groupby(level=[0, 1]).mean()
    return clim.reindex(pd.MultiIndex.from_arrays([month, day])).to_numpy()


def test_union_axis_forcing_is_the_site_climatology_outside_its_record(union, union_packed):
    data, _ = union_packed
    time = pd.DatetimeIndex(union.time.values)
    valid = union.site_time_valid.values
    assert (~valid).any(axis=1).all()  # every site has steps outside its record
    for name in FORCING:
        got = np.asarray(getattr(data.forcing, name))
        assert np.all(np.isfinite(got))
        for i in range(len(UNION_SITES)):
            raw = union[name].values[i]
            np.testing.assert_allclose(got[i, valid[i]], raw[valid[i]], rtol=1e-12)
            clim = _climatology_by_hand(raw, valid[i], time)
            np.testing.assert_allclose(got[i, ~valid[i]], clim[~valid[i]], rtol=1e-10)


def test_union_axis_forcing_on_a_record_is_that_of_the_site_alone(union, union_packed):
    from differland_bayes.forcing import build_forcing
    from differland_bayes.io import select_site

    data, _ = union_packed
    model = get_model("dalec990")
    for i, site in enumerate(UNION_SITES):
        valid = union.site_time_valid.values[i]
        with jax.enable_x64(True):
            alone = build_forcing(select_site(union, site), model)
        for name in model.Forcing._fields:
            # end_of_year (unused by the process) also marks a record's last 31 December
            # when the axis goes on
            n = -1 if name == "end_of_year" else None
            np.testing.assert_allclose(
                np.asarray(getattr(data.forcing, name))[i, valid][:n],
                np.asarray(getattr(alone, name))[0][:n],
                rtol=1e-10,
                atol=1e-12,
                err_msg=f"{site} {name}",
            )


def test_union_axis_observations_outside_the_records_are_masked(union, union_packed):
    data, meta = union_packed
    valid = union.site_time_valid.values
    assert set(data.streams) >= {"gpp", "nee", "et", "lai"}
    for name, s in data.streams.items():
        mask = np.asarray(s.mask)
        assert not mask[~valid].any(), name
        expected = union[f"{name}_mask"].values & (union.split_time.values == 1) & valid
        np.testing.assert_array_equal(mask, expected)
        assert mask.any(axis=1).all(), f"{name}: every site keeps observations"
        assert np.all(np.isfinite(np.asarray(s.value))) and np.all(np.isfinite(np.asarray(s.unc)))
    assert meta.time.shape == (union.sizes["time"],)


def test_union_axis_model_runs_finite_and_spinup_counts_axis_steps(union, union_packed):
    from differland_bayes.bayes.model import simulate_sites

    data, _ = union_packed
    model = get_model("dalec990")
    params, pools0 = model.split(jnp.broadcast_to(model.table.default, (3, len(model.table))))
    with jax.enable_x64(True):
        out = simulate_sites(model, params, pools0, data.forcing)
    for name in ("gpp", "nee", "et", "lai"):
        assert np.all(np.isfinite(np.asarray(predict_stream(name, out)))), name
    # spinup_steps counts steps of the shared axis: FI-Hyy (from 2006) loses nothing
    with jax.enable_x64(True):
        spun, _ = pack(union, model, streams=["gpp"], spinup_steps=400)
    m, ref = np.asarray(spun.streams["gpp"].mask), np.asarray(data.streams["gpp"].mask)
    assert not m[:, :400].any()
    np.testing.assert_array_equal(m[:, 400:], ref[:, 400:])
    np.testing.assert_array_equal(m[2], ref[2])


def test_union_axis_with_monthly_observations(union):
    with jax.enable_x64(True):
        data, meta = pack(union, get_model("dalec990"), observation_step="monthly")
    months = pd.DatetimeIndex(meta.obs_time)
    assert months[0] == pd.Timestamp("2001-01-01") and len(months) == 14 * 12
    fi_start = list(months).index(pd.Timestamp("2006-01-01"))
    assert not np.asarray(data.streams["gpp"].mask)[2, :fi_start].any()
    assert np.asarray(data.streams["gpp"].mask)[2, fi_start:].any()


def test_union_axis_monthly_forcing_uses_the_calendar_month_climatology(union):
    from differland_bayes.io import to_monthly

    monthly = to_monthly(union)
    with jax.enable_x64(True):
        data, _ = pack(monthly, get_model("dalec993"))
    valid = monthly.site_time_valid.values
    month = pd.DatetimeIndex(monthly.time.values).month
    for i in range(len(UNION_SITES)):
        raw = monthly["t_max"].values[i]
        clim = pd.Series(raw[valid[i]]).groupby(month[valid[i]]).mean()
        np.testing.assert_allclose(
            np.asarray(data.forcing.t_max)[i, ~valid[i]],
            clim.reindex(month[~valid[i]]).to_numpy(),
            rtol=1e-10,
        )


def test_a_record_shorter_than_a_year_cannot_be_filled(union):
    short = union.copy()
    valid = union.site_time_valid.values.copy()
    start = int(np.flatnonzero(valid[1])[0])
    valid[1] = False
    valid[1, start : start + 200] = True
    short["site_time_valid"] = (("site", "time"), valid)
    for name in FORCING:
        short[name] = union[name].where(short.site_time_valid)
    with pytest.raises(ValueError) as err:
        pack(short, get_model("dalec990"))
    msg = str(err.value)
    assert "site 'US-Var'" in msg  # the site
    assert "every day of the year" in msg and "365" in msg  # what was expected
    assert "found 200 daily step(s)" in msg and "2002-01-01..2002-07-19" in msg  # found
    assert "covering 200 of 365" in msg


def test_fit_path_loads_union_data(fluxnet_dir, monkeypatch):
    from differland_bayes.bayes.fit_data import load_dataset
    from differland_bayes.bayes.fitconfig import FitConfig, config_with

    monkeypatch.setenv("DIFFERLAND_DATA_DIR", str(fluxnet_dir.parent))
    cfg = config_with(
        FitConfig(),
        {
            "data.source": "fluxnet-sites",
            "data.sites": ["DE-Hai", "FI-Hyy"],
            "data.period": "union",
            "data.observation_step": "monthly",
            "model.process": "dalec990",
        },
    )
    ds, _ = load_dataset(cfg)
    assert not bool(ds.site_time_valid.all())
    with jax.enable_x64(True):
        data, meta = pack(ds, get_model("dalec990"), observation_step="monthly")
    assert meta.sites.tolist() == ["DE-Hai", "FI-Hyy"]
    assert np.all(np.isfinite(np.asarray(data.forcing.t_min)))
