"""A daily model (DALEC990) against monthly observations: ``observation_step="monthly"``.

The observations are aggregated to calendar months (``io.to_monthly``) and the daily
prediction is averaged over the same days inside the likelihood.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from numpyro import handlers
from numpyro.infer.util import log_density

from differland_bayes.bayes import ModelConfig, NetworkConfig, hybrid_model, init_prior_net
from differland_bayes.bayes.data import pack
from differland_bayes.bayes.fit_data import load_dataset
from differland_bayes.bayes.fit_problem import build_problem
from differland_bayes.bayes.fitconfig import ConfigError, FitConfig, config_with
from differland_bayes.bayes.operators import aggregate, predict_observed, predict_stream
from differland_bayes.bayes.svi import fit_svi
from differland_bayes.process import get_model
from differland_bayes.synthetic import synthesize

FREE = ("canopy_efficiency", "LCMA", "Q10")
STREAMS = ["gpp", "nee", "lai"]


@pytest.fixture(scope="module")
def process():
    return get_model("dalec990")


@pytest.fixture(scope="module")
def world(process):
    return synthesize(3, model=process, years=1, seed=5, streams=STREAMS, gap_fraction=0.2)


@pytest.fixture(scope="module")
def config(world, process):
    base = world["true_parameters"].isel(site=0)
    fixed = {n: float(base.sel(parameter=n)) for n in process.table.names if n not in FREE}
    return ModelConfig(network=NetworkConfig(hidden=(4,)), fixed_parameters=fixed)


def _kw(process, config, data):
    net = init_prior_net(data.env.shape[1], process, config, key=jax.random.key(0))
    return {"process": process, "net": net, "config": config}


def _latents(data, kw):
    tr = handlers.trace(handlers.seed(hybrid_model, 1)).get_trace(data, **kw)
    return tr, {
        k: s["value"]
        for k, s in tr.items()
        if (s["type"] == "sample" and not s["is_observed"]) or s["type"] == "param"
    }


def _log_lik(data, kw, values):
    tr = handlers.trace(handlers.substitute(hybrid_model, values)).get_trace(data, **kw)
    total = 0.0
    for k, s in tr.items():
        if k.startswith("obs_"):
            lp = s["fn"].log_prob(s["value"])  # masked by handlers.mask
            if s.get("mask") is not None:
                lp = jnp.where(s["mask"], lp, 0.0)
            total = total + jnp.sum(lp)
    return float(total)


def _by_hand(daily: np.ndarray, weight: np.ndarray, time: pd.DatetimeIndex) -> np.ndarray:
    """Monthly means over the weighted days, site by site, with pandas."""
    out = []
    for y, w in zip(daily, weight, strict=True):
        s = pd.Series(np.where(w > 0, y, np.nan), index=time)
        out.append(s.resample("MS").mean().to_numpy())
    return np.nan_to_num(np.asarray(out))


# --------------------------------------------------------------------------- operator


def test_weighted_aggregate_is_a_mean_over_the_weighted_days():
    days = pd.date_range("2003-01-01", "2003-03-31", freq="D")
    idx = jnp.asarray(np.asarray(days.month - 1))
    rng = np.random.default_rng(0)
    y = rng.normal(size=(2, len(days)))
    w = (rng.random((2, len(days))) > 0.4).astype(float)
    got = np.asarray(aggregate(jnp.asarray(y), idx, 3, weight=jnp.asarray(w)))
    np.testing.assert_allclose(got, _by_hand(y, w, days), rtol=1e-5, atol=1e-6)
    # weight 1 everywhere is the plain calendar-month mean; zero weight gives 0, not NaN
    ones = np.asarray(aggregate(jnp.asarray(y), idx, 3, weight=jnp.ones_like(jnp.asarray(y))))
    np.testing.assert_allclose(ones, np.asarray(aggregate(jnp.asarray(y), idx, 3)), rtol=1e-6)
    zero = aggregate(jnp.asarray(y), idx, 3, weight=jnp.zeros_like(jnp.asarray(y)))
    assert np.all(np.asarray(zero) == 0.0)


def test_aggregated_prediction_equals_the_monthly_mean_of_the_daily_prediction(world, process):
    data, meta = pack(world, process, observation_step="monthly", split=None)
    time = pd.DatetimeIndex(meta.time)
    assert meta.observation_step == "monthly"
    np.testing.assert_array_equal(
        pd.DatetimeIndex(meta.obs_time), pd.date_range("2001-01-01", periods=12, freq="MS")
    )
    params, pools0 = process.split(jnp.asarray(world["true_parameters"].values))
    from differland_bayes.bayes.model import simulate_sites

    out = simulate_sites(process, params, pools0, data.forcing)
    for name in STREAMS:
        daily = np.asarray(predict_stream(name, out))
        w = np.asarray(data.aggregation.weight[name])
        expected_w = np.isfinite(world[name].values) & world[f"{name}_mask"].values
        np.testing.assert_array_equal(w, expected_w.astype(float))
        got = np.asarray(predict_observed(name, out, 12, data.aggregation))
        np.testing.assert_allclose(got, _by_hand(daily, w, time), rtol=1e-5, atol=1e-7)
    # a fully observed stream: the calendar-month mean of the daily prediction
    full = world.copy()
    full["lai"] = full["true_lai"]
    full["lai_mask"] = full["lai"].notnull()
    data_f, _ = pack(full, process, streams=["lai"], observation_step="monthly", split=None)
    assert np.all(np.asarray(data_f.aggregation.weight["lai"]) == 1.0)
    daily = pd.DataFrame(np.asarray(out.lai).T, index=time)
    np.testing.assert_allclose(
        np.asarray(predict_observed("lai", out, 12, data_f.aggregation)),
        daily.resample("MS").mean().to_numpy().T,
        rtol=1e-5,
    )
    # the monthly observations are the io.to_monthly means of the daily ones
    np.testing.assert_allclose(
        np.asarray(data_f.streams["lai"].value),
        pd.DataFrame(full["lai"].values.T, index=time).resample("MS").mean().to_numpy().T,
        rtol=1e-5,
    )


# --------------------------------------------------------------------------- masks


def _thin(ds, site: int, month: int, n_keep: int, value: float | None = None):
    """Keep only ``n_keep`` observed gpp days in one month of one site."""
    out = ds.copy()
    out["gpp"] = ds["gpp"].copy()
    out["gpp_mask"] = ds["gpp_mask"].copy()
    time = pd.DatetimeIndex(ds.time.values)
    days = np.flatnonzero(time.month == month)
    out["gpp"][site, days] = np.asarray(ds["true_gpp"].values[site, days])
    out["gpp_mask"][site, days] = False
    out["gpp_mask"][site, days[:n_keep]] = True
    if value is not None:
        out["gpp"][site, days[:n_keep]] = value
    return out


def test_months_with_too_few_observed_days_are_masked_and_do_not_count(world, process, config):
    # March has 31 days: 16 observed days count (>= 50 %), 15 do not
    d16, _ = pack(_thin(world, 0, 3, 16), process, observation_step="monthly", split=None)
    d15, _ = pack(_thin(world, 0, 3, 15), process, observation_step="monthly", split=None)
    assert bool(d16.streams["gpp"].mask[0, 2]) and not bool(d15.streams["gpp"].mask[0, 2])
    wild, _ = pack(
        _thin(world, 0, 3, 15, value=1e3), process, observation_step="monthly", split=None
    )
    assert not bool(wild.streams["gpp"].mask[0, 2])
    kw = _kw(process, config, d15)
    _, values = _latents(d15, kw)
    assert _log_lik(wild, kw, values) == pytest.approx(_log_lik(d15, kw, values), rel=1e-12)
    # the same 15 days do count with a lower threshold, and then the wild values matter
    lax, _ = pack(
        _thin(world, 0, 3, 15, value=1e3),
        process,
        observation_step="monthly",
        split=None,
        min_fraction=0.4,
    )
    assert bool(lax.streams["gpp"].mask[0, 2])
    assert _log_lik(lax, kw, values) < _log_lik(d15, kw, values) - 1e3
    # ... while a counted month with wild values does change it
    wild16, _ = pack(
        _thin(world, 0, 3, 16, value=1e3), process, observation_step="monthly", split=None
    )
    assert _log_lik(wild16, kw, values) < _log_lik(d16, kw, values) - 1e3


def test_spinup_masks_every_month_it_overlaps(world, process):
    data, _ = pack(world, process, observation_step="monthly", split=None, spinup_steps=40)
    ref, _ = pack(world, process, observation_step="monthly", split=None)
    for name in STREAMS:
        m, r = np.asarray(data.streams[name].mask), np.asarray(ref.streams[name].mask)
        assert not m[:, :2].any()  # January and February (day 40 is in February)
        np.testing.assert_array_equal(m[:, 2:], r[:, 2:])


def test_monthly_data_need_no_aggregation_and_bad_values_are_named(world, process):
    with pytest.raises(ValueError, match="observation_step: expected one of.*found 'weekly'"):
        pack(world, process, observation_step="weekly")
    monthly = synthesize(2, years=1, seed=0)  # dalec993 world: monthly steps
    data, meta = pack(monthly, get_model("dalec993"), observation_step="monthly")
    assert data.aggregation is None and meta.obs_time is None


# --------------------------------------------------------------------------- inference


def test_log_density_and_its_gradient_are_finite(world, process, config):
    data, _ = pack(world, process, observation_step="monthly")
    kw = _kw(process, config, data)
    tr, values = _latents(data, kw)
    assert tr["obs_gpp"]["value"].shape == (3, 12)

    def joint(eps):
        return log_density(hybrid_model, (data,), kw, {**values, "eps": eps})[0]

    value, grad = jax.value_and_grad(joint)(values["eps"])
    assert np.isfinite(float(value))
    assert np.all(np.isfinite(np.asarray(grad))) and np.any(np.asarray(grad) != 0)


def test_minibatches_carry_the_weights_of_their_sites(world, process, config):
    from differland_bayes.bayes.model import _take_sites

    data, _ = pack(world, process, observation_step="monthly")
    idx = jnp.asarray([2, 0])
    sub = _take_sites(data, idx)
    for name in STREAMS:
        np.testing.assert_array_equal(
            sub.aggregation.weight[name], np.asarray(data.aggregation.weight[name])[[2, 0]]
        )
    np.testing.assert_array_equal(sub.aggregation.index, data.aggregation.index)
    kw = _kw(process, config, data)
    tr = handlers.trace(handlers.seed(hybrid_model, 0)).get_trace(data, **kw, subsample_size=2)
    assert tr["obs_gpp"]["value"].shape == (2, 12)
    assert np.isfinite(float(jnp.sum(tr["obs_gpp"]["fn"].log_prob(tr["obs_gpp"]["value"]))))


def test_fit_config_key_and_a_tiny_svi_fit(tmp_path):
    with pytest.raises(ConfigError, match="data.observation_step"):
        config_with(FitConfig(), {"data.observation_step": "weekly"})
    cfg = config_with(
        FitConfig(),
        {
            "data.synthetic.sites": 3,
            "data.synthetic.years": 1,
            "data.synthetic.free_parameters": list(FREE),
            "data.synthetic.streams": STREAMS,
            "data.site_split": "all",
            "data.observation_step": "monthly",
            "model.process": "dalec990",
            "model.free_parameters": list(FREE),
            "network.hidden": [4],
            "svi.steps": 3,
            "svi.schedule": "constant",
        },
    )
    ds, _ = load_dataset(cfg)
    problem = build_problem(cfg, ds)
    assert problem.data.aggregation is not None
    assert problem.data.streams["gpp"].value.shape == (3, 12)
    assert problem.meta.observation_step == "monthly"
    fit = fit_svi(
        hybrid_model,
        problem.guide,
        key=problem.key,
        num_steps=3,
        optimizer=problem.optimizer,
        model_args=(problem.data,),
        model_kwargs=problem.model_kwargs,
        progress_bar=False,
    )
    assert np.all(np.isfinite(np.asarray(fit.losses)))
