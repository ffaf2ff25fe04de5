"""The parameter-expansion step of mean-field SVI (sigma vs eps of the non-centred hierarchy)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro import handlers
from numpyro.infer import Trace_ELBO
from numpyro.infer.autoguide import AutoNormal

from differland_bayes.bayes.expansion import expansion_step, optimal_log_scale
from differland_bayes.bayes.fitconfig import ConfigError, config_with, load_config
from differland_bayes.bayes.svi import fit_svi, make_optimizer

S, P = 40, 3
PRIOR_SCALE, PRIOR_LOG_SD = 0.3, 1.0


def model(y, subsample_size=None):
    """``z = mu + sigma * eps`` per site and parameter; ``y ~ Normal(z, 0.2)``."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 3.0).expand([P]).to_event(1))
    with numpyro.plate("parameter", P, dim=-1):
        sigma = numpyro.sample("sigma", dist.LogNormal(math.log(PRIOR_SCALE), PRIOR_LOG_SD))
    with numpyro.plate("site", S, subsample_size=subsample_size, dim=-2) as idx:
        with numpyro.plate("parameter", P, dim=-1):
            eps = numpyro.sample("eps", dist.Normal(0.0, 1.0))
            numpyro.sample("y", dist.Normal(mu + sigma * eps, 0.2), obs=y[idx])


@pytest.fixture(scope="module")
def y():
    rng = np.random.default_rng(0)
    z = np.array([0.0, 1.0, -1.0]) + np.array([0.5, 1.0, 0.1]) * rng.standard_normal((S, P))
    return jnp.asarray(z + 0.2 * rng.standard_normal((S, P)), dtype=jnp.float32)


def _unconverged_params(y):
    """AutoNormal params of the shape SVI leaves behind: eps shrunk, sigma inflated."""
    guide = AutoNormal(model)
    with handlers.seed(rng_seed=0):
        guide(y)
    rng = np.random.default_rng(1)
    eps = np.asarray(y - y.mean(0)) / 4.0  # E[eps**2] well below 1 ...
    return guide, {
        "mu_auto_loc": jnp.asarray(y.mean(0)),
        "mu_auto_scale": jnp.full((P,), 0.05),
        "sigma_auto_loc": jnp.log(4.0 * jnp.asarray(y.std(0))),  # ... sigma 4x too large
        "sigma_auto_scale": jnp.full((P,), 0.1),
        "eps_auto_loc": jnp.asarray(eps, dtype=jnp.float32),
        "eps_auto_scale": jnp.asarray(0.02 + 0.01 * rng.random((S, P)), dtype=jnp.float32),
    }


def test_newton_solution_is_the_stationary_point():
    a = jnp.array([5.0, 40.0, 400.0])
    m = jnp.array([0.0, -1.0, 2.0])
    u = optimal_log_scale(a, 40, m, math.log(0.3), 1.0)
    grad = -a * jnp.exp(-2 * u) + 40 + (m + u - math.log(0.3)) / 1.0**2
    np.testing.assert_allclose(grad, 0.0, atol=1e-4)  # float32, terms of size 40
    # a vanishing prior term leaves the mean E[eps**2] at exactly 1
    u_flat = optimal_log_scale(a, 40, m, 0.0, 1e6)
    np.testing.assert_allclose(a * jnp.exp(-2 * u_flat) / 40, 1.0, rtol=1e-6)


def test_step_keeps_every_z_and_lowers_the_negative_elbo(y):
    guide, params = _unconverged_params(y)
    new = expansion_step(params, sigma_prior_scale=PRIOR_SCALE, sigma_prior_log_sd=PRIOR_LOG_SD)
    assert new["mu_auto_loc"] is params["mu_auto_loc"]  # untouched params are the same objects

    def z_draws(p, key):
        tr = handlers.trace(handlers.seed(handlers.substitute(guide, data=p), key)).get_trace(y)
        return tr["sigma"]["value"] * tr["eps"]["value"]

    for k in range(3):  # the same noise gives the same sigma * eps, hence the same likelihood
        np.testing.assert_allclose(z_draws(new, k), z_draws(params, k), rtol=1e-5, atol=1e-6)
    e2 = jnp.mean(new["eps_auto_loc"] ** 2 + new["eps_auto_scale"] ** 2, axis=0)
    np.testing.assert_allclose(e2, 1.0, atol=0.05)  # near 1 (the sigma prior pulls a little)
    elbo = Trace_ELBO(num_particles=64)
    before = float(elbo.loss(jax.random.key(3), params, model, guide, y))
    after = float(elbo.loss(jax.random.key(3), new, model, guide, y))
    assert after < before - 10.0
    # a second step from the optimum changes (almost) nothing
    again = expansion_step(new, sigma_prior_scale=PRIOR_SCALE, sigma_prior_log_sd=PRIOR_LOG_SD)
    np.testing.assert_allclose(again["sigma_auto_loc"], new["sigma_auto_loc"], atol=1e-5)


def test_fit_svi_applies_the_step_and_stays_resumable(y, tmp_path):
    start = _unconverged_params(y)[1]  # where a MAP warm start leaves the guide

    def run(steps, **kw):
        return fit_svi(
            model,
            AutoNormal(model, init_scale=0.02),
            key=jax.random.key(5),
            num_steps=steps,
            optimizer=make_optimizer(0.01, total_steps=80),
            model_args=(y,),
            model_kwargs={"subsample_size": 8},
            progress_bar=False,
            param_transform=lambda p: expansion_step(
                p, sigma_prior_scale=PRIOR_SCALE, sigma_prior_log_sd=PRIOR_LOG_SD
            ),
            transform_every=20,
            init_params=start,
            **kw,
        )

    plain = fit_svi(model, AutoNormal(model, init_scale=0.02), key=jax.random.key(5),
                    num_steps=80, optimizer=make_optimizer(0.01, total_steps=80),
                    model_args=(y,), model_kwargs={"subsample_size": 8},
                    progress_bar=False, init_params=start)  # fmt: skip
    full = run(80)

    def mean_e2(p):
        return float(jnp.mean(p["eps_auto_loc"] ** 2 + p["eps_auto_scale"] ** 2))

    assert mean_e2(plain.params) < 0.5 < 0.8 < mean_e2(full.params)
    assert np.all(np.asarray(full.params["sigma_auto_loc"])
                  < np.asarray(plain.params["sigma_auto_loc"]))  # fmt: skip
    first = run(30, checkpoint_dir=tmp_path / "ck", checkpoint_every=10)
    assert len(first.losses) == 30
    resumed = run(80, checkpoint_dir=tmp_path / "ck", checkpoint_every=10, resume=True)
    np.testing.assert_array_equal(resumed.losses, full.losses)
    for k in full.params:
        np.testing.assert_array_equal(np.asarray(resumed.params[k]), np.asarray(full.params[k]))
    with pytest.raises(ValueError, match="go together"):
        fit_svi(model, AutoNormal(model), key=jax.random.key(0), num_steps=2,
                optimizer=make_optimizer(0.01, schedule="constant"), model_args=(y,),
                transform_every=5)  # fmt: skip


def test_config_requires_mean_field_guide_and_no_floor():
    from conftest import REPO

    cfg = load_config(REPO / "examples" / "configs" / "fluxval.toml")
    assert config_with(cfg, {"svi.px_every": 100}).svi.px_every == 100
    with pytest.raises(ConfigError, match="svi.px_every.*guide = 'normal'"):
        config_with(cfg, {"svi.px_every": 100, "svi.guide": "lowrank"})
    with pytest.raises(ConfigError, match="svi.px_every.*sigma_floor = 0"):
        config_with(cfg, {"svi.px_every": 100, "prior.sigma_floor": 0.05})


# -- the seasonal discrepancy's (tau, eta) ----------------------------------------------------
K, M = 2, 12
TAU_PRIOR = jnp.array([1.0, 0.5])


def disc_model(y):
    """``delta = tau_k * eta_skm`` (stream-major like the hybrid model); ``y ~ N(delta, 0.2)``."""
    tau = numpyro.sample("discrepancy_sd", dist.HalfNormal(TAU_PRIOR).to_event(1))
    with numpyro.plate("site", S, dim=-2), numpyro.plate("stream_month", K * M, dim=-1):
        eta = numpyro.sample("discrepancy_eps", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Normal(jnp.repeat(tau, M) * eta, 0.2), obs=y)


def test_newton_solution_of_the_halfnormal_scale_is_the_stationary_point():
    from differland_bayes.bayes.expansion import optimal_halfnormal_log_scale

    a = jnp.array([5.0, 400.0, 4000.0])
    c = jnp.array([4.0, 0.01, 1.0])
    s = jnp.array([1.0, 0.3, 2.0])
    u = optimal_halfnormal_log_scale(a, 480, c, s)
    grad = -a * jnp.exp(-2 * u) + 479 + c * jnp.exp(2 * u) / s**2
    np.testing.assert_allclose(grad, 0.0, atol=1e-2)  # float32, terms of size 480


def test_discrepancy_step_keeps_every_delta_and_lowers_the_negative_elbo():
    from differland_bayes.bayes.expansion import discrepancy_expansion_step

    rng = np.random.default_rng(4)
    delta = np.repeat(np.array([0.8, 0.3]), M) * rng.standard_normal((S, K * M))
    y = jnp.asarray(delta + 0.2 * rng.standard_normal((S, K * M)), dtype=jnp.float32)
    guide = AutoNormal(disc_model)
    with handlers.seed(rng_seed=0):
        guide(y)
    # what minibatch SVI leaves: eta shrunk (to a third), tau inflated to match
    params = {
        "discrepancy_sd_auto_loc": jnp.log(jnp.array([2.4, 0.9])),
        "discrepancy_sd_auto_scale": jnp.array([0.05, 0.1]),
        "discrepancy_eps_auto_loc": jnp.asarray(delta / np.repeat([2.4, 0.9], M), jnp.float32),
        "discrepancy_eps_auto_scale": jnp.full((S, K * M), 0.05),
    }
    new = discrepancy_expansion_step(params, prior_scales=TAU_PRIOR)

    def deltas(p, key):
        tr = handlers.trace(handlers.seed(handlers.substitute(guide, data=p), key)).get_trace(y)
        return jnp.repeat(tr["discrepancy_sd"]["value"], M) * tr["discrepancy_eps"]["value"]

    for k in range(3):  # the same noise gives the same delta, hence the same likelihood
        np.testing.assert_allclose(deltas(new, k), deltas(params, k), rtol=1e-5, atol=1e-6)
    e2 = new["discrepancy_eps_auto_loc"] ** 2 + new["discrepancy_eps_auto_scale"] ** 2
    e2 = np.asarray(e2).reshape(S, K, M).mean(axis=(0, 2))
    np.testing.assert_allclose(e2, 1.0, atol=0.1)  # near 1 (the tau prior pulls a little)
    tau = np.exp(np.asarray(new["discrepancy_sd_auto_loc"]))
    np.testing.assert_allclose(tau, [0.8, 0.3], rtol=0.2)
    elbo = Trace_ELBO(num_particles=64)
    before = float(elbo.loss(jax.random.key(3), params, disc_model, guide, y))
    after = float(elbo.loss(jax.random.key(3), new, disc_model, guide, y))
    assert after < before - 10.0
    again = discrepancy_expansion_step(new, prior_scales=TAU_PRIOR)
    np.testing.assert_allclose(again["discrepancy_sd_auto_loc"], new["discrepancy_sd_auto_loc"],
                               atol=1e-5)  # fmt: skip


def test_the_fit_applies_both_steps_when_the_run_has_a_discrepancy(y):
    from conftest import REPO
    from differland_bayes.bayes.fit import _expansion

    cfg = config_with(load_config(REPO / "examples" / "configs" / "fluxval.toml"),
                      {"svi.px_every": 50})  # fmt: skip
    params = dict(_unconverged_params(y)[1])
    rng = np.random.default_rng(0)
    params.update({
        "discrepancy_sd_auto_loc": jnp.log(jnp.array([2.0, 2.0])),
        "discrepancy_sd_auto_scale": jnp.array([0.1, 0.1]),
        "discrepancy_eps_auto_loc": jnp.asarray(0.2 * rng.standard_normal((S, K * M))),
        "discrepancy_eps_auto_scale": jnp.full((S, K * M), 0.05),
    })  # fmt: skip
    kw = _expansion(cfg, (1.0, 0.5))
    assert kw["transform_every"] == 50
    new = kw["param_transform"](params)
    for name in ("sigma_auto_loc", "discrepancy_sd_auto_loc"):
        assert np.all(np.asarray(new[name]) < np.asarray(params[name])), name
    # without a discrepancy only sigma / eps move (and no discrepancy params are needed)
    plain = {k: v for k, v in params.items() if not k.startswith("discrepancy")}
    out = _expansion(cfg)["param_transform"](plain)
    assert set(out) == set(plain)
    assert _expansion(config_with(cfg, {"svi.px_every": 0}), (1.0,)) == {}
