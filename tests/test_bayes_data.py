"""Observation operators, temporal aggregation and packing a dataset for a fit."""

from __future__ import annotations

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
