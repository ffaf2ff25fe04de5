"""NUTS posterior -> DataTree with (chain, draw) dims (analysis.nuts_datatree)."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import xarray as xr

from differland_bayes.analysis.loo import loo
from differland_bayes.analysis.nuts_datatree import NUTS_GROUPS, nuts_to_datatree
from differland_bayes.bayes import ModelConfig, NetworkConfig, init_prior_net, pack
from differland_bayes.bayes.mcmc import fit_nuts
from differland_bayes.process import get_model
from differland_bayes.synthetic import synthesize

FREE = ("canopy_efficiency", "LCMA")
CHAINS, DRAWS = 2, 100


@pytest.fixture(scope="module")
def setup():
    process = get_model("dalec993")
    world = synthesize(1, years=1, seed=0)
    base = world["true_parameters"].isel(site=0)
    fixed = {n: float(base.sel(parameter=n)) for n in process.table.names if n not in FREE}
    config = ModelConfig(network=NetworkConfig(hidden=(4,)), fixed_parameters=fixed)
    data = pack(world, process)[0]
    net = init_prior_net(data.env.shape[1], process, config, key=jax.random.key(0))
    kw = {"process": process, "net": net, "config": config}
    fit = fit_nuts(data, **kw, key=jax.random.key(1), num_warmup=DRAWS, num_samples=DRAWS,
                   num_chains=CHAINS, chain_method="vectorized")  # fmt: skip
    dt = nuts_to_datatree(fit, data, **kw, ds=world, key=jax.random.key(2))
    return dt, data, world, process


def test_groups_and_dims(setup):
    dt, data, world, _ = setup
    assert set(NUTS_GROUPS) <= set(dt.children)
    post = dt["posterior"]
    assert post["parameters"].dims == ("chain", "draw", "site", "parameter")
    assert post["parameters"].shape == (CHAINS, DRAWS, 1, len(FREE))
    assert post["sigma"].dims == ("chain", "draw", "parameter")
    assert list(post["parameter"].values) == list(FREE)
    for s in data.streams:
        assert dt["posterior_predictive"][s].dims == ("chain", "draw", "site", "time")
        assert dt["log_likelihood"][s].dims == ("chain", "draw", "site", "time")
        assert dt["observed_data"][s].dims == ("site", "time")
    assert dt["sample_stats"]["diverging"].dtype == bool
    assert dt["sample_stats"]["diverging"].shape == (CHAINS, DRAWS)
    assert list(dt["posterior"]["site"].values) == list(np.asarray(world["site"].values, str))
    assert dt.attrs["inference"] == "nuts"


def test_units_and_bounds(setup):
    dt, _, _, process = setup
    post = dt["posterior"]
    assert post["parameters"].attrs["units"] == "see parameter_units"
    for i, name in enumerate(FREE):
        row = process.table[name]
        assert post["parameter_units"].values[i] == row.units
        vals = post["parameters"].sel(parameter=name).values
        assert np.all((vals >= row.lower) & (vals <= row.upper))


def test_log_likelihood_nan_exactly_where_masked(setup):
    dt, data, _, _ = setup
    for s, sd in data.streams.items():
        mask = np.asarray(sd.mask, bool)
        assert mask.any() and (~mask).any()  # synthetic data have gaps
        ll = dt["log_likelihood"][s].values
        assert np.all(np.isfinite(ll[..., mask]))
        assert np.all(np.isnan(ll[..., ~mask]))
        assert np.array_equal(np.isfinite(dt["observed_data"][s].values), mask)
        assert np.all(np.isfinite(dt["posterior_predictive"][s].values))


def test_arviz_stats_and_loo(setup):
    import arviz_stats as azs

    dt, data, _, _ = setup
    rhat = azs.rhat(dt, group="posterior", var_names=["parameters"])
    assert np.all(np.isfinite(rhat["parameters"].values))
    summary = azs.summary(dt, var_names=["sigma"])
    assert len(summary) == len(FREE)
    res = loo(dt)
    assert np.isfinite(float(res.elpd))
    n_obs = sum(int(np.asarray(sd.mask).sum()) for sd in data.streams.values())
    assert int(res.n_data_points) == n_obs
    assert res.pareto_k.size == n_obs
    assert np.isfinite(float(loo(dt, var_name=next(iter(data.streams))).elpd))
    assert isinstance(dt["constant_data"]["network_input"], xr.DataArray)
