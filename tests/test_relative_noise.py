"""Observation noise that grows with the flux (``[likelihood] relative_noise``): its
arithmetic, the program's site, recovery and calibration on synthetic observations, and
the configuration's checks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro import handlers
from numpyro.infer import MCMC, NUTS

from conftest import truth_of_first_site
from differland_bayes.bayes import (
    LikelihoodConfig,
    ModelConfig,
    NetworkConfig,
    hybrid_model,
    init_prior_net,
    pack,
)
from differland_bayes.bayes.likelihood import (
    monthly_magnitude,
    observation_distribution,
    relative_noise_site,
)
from differland_bayes.synthetic import synthesize

FREE = ("canopy_efficiency", "Q10")


# -- arithmetic ----------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["normal", "student_t"])
def test_the_relative_term_is_added_in_quadrature(family):
    pred = jnp.asarray([[-6.0, -1.0, 0.0, 2.0]])
    unc = jnp.asarray([[0.3, 0.3, 0.3, 0.3]])
    cfg = LikelihoodConfig(family=family, relative_noise=("nee",))
    const = observation_distribution(pred, unc, jnp.asarray(0.5), False, cfg)
    np.testing.assert_allclose(const.scale, 0.5)
    rel = observation_distribution(pred, unc, jnp.asarray(0.5), False, cfg, jnp.asarray(0.2))
    np.testing.assert_allclose(rel.scale, np.sqrt(0.25 + (0.2 * np.asarray(pred)) ** 2), rtol=1e-6)
    np.testing.assert_allclose(rel.loc, pred)
    # with the data's own uncertainty as the base scale
    both = observation_distribution(pred, unc, None, True, cfg, jnp.asarray(0.1))
    np.testing.assert_allclose(both.scale, np.sqrt(0.09 + (0.1 * np.asarray(pred)) ** 2), rtol=1e-6)
    # zero fraction: exactly the constant noise
    zero = observation_distribution(pred, unc, jnp.asarray(0.5), False, cfg, jnp.asarray(0.0))
    np.testing.assert_allclose(zero.scale, 0.5)


def test_the_magnitude_is_the_sites_mean_seasonal_cycle():
    month = jnp.asarray([0, 1, 0, 1, 0, 1])
    values = jnp.asarray([[1.0, -2.0, 3.0, -4.0, 100.0, -6.0], [5.0, 5.0, 5.0, 5.0, 5.0, 5.0]])
    mask = jnp.asarray([[True, True, True, True, False, True], [True] * 6])
    got = np.asarray(monthly_magnitude(values, mask, month))
    # site 0: January mean of the counted 1 and 3 (the masked 100 does not count), February -4
    np.testing.assert_allclose(got[0], [2.0, 4.0, 2.0, 4.0, 2.0, 4.0])
    np.testing.assert_allclose(got[1], 5.0)
    np.testing.assert_allclose(np.asarray(monthly_magnitude(values, None, month))[0, 0], 104 / 3)
    # a calendar month with nothing counted: 0; no calendar: each value's magnitude
    none = jnp.zeros_like(mask).at[:, 0].set(True)
    np.testing.assert_allclose(np.asarray(monthly_magnitude(values, none, month))[0], [1, 0] * 3)
    np.testing.assert_allclose(monthly_magnitude(values, mask, None)[0], [1, 2, 3, 4, 0, 6])


# -- the program -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world():
    return synthesize(4, years=2, seed=3, free_parameters=list(FREE))


def test_the_program_samples_a_fraction_per_listed_stream(world, process):
    data = pack(world, process)[0]
    config = ModelConfig(
        network=NetworkConfig(hidden=(8,)),
        fixed_parameters=truth_of_first_site(world, process, FREE),
        likelihood=LikelihoodConfig(use_data_uncertainty=False, relative_noise=("nee",),
                                    relative_noise_prior_scale=0.4),
    )  # fmt: skip
    net = init_prior_net(data.env.shape[1], process, config, key=jax.random.key(0))
    model = handlers.substitute(handlers.seed(hybrid_model, 0), {"relnoise_nee": 0.3})
    tr = handlers.trace(model).get_trace(data, process=process, net=net, config=config)
    site = tr[relative_noise_site("nee")]
    assert isinstance(site["fn"], dist.HalfNormal)
    np.testing.assert_allclose(site["fn"].scale, 0.4)
    assert "relnoise_gpp" not in tr and "relnoise_et" not in tr
    # conditioned: the noise grows with the site's observed mean seasonal cycle
    obs = tr["obs_nee"]["fn"].base_dist
    loc, noise = np.asarray(obs.loc), float(tr["noise_nee"]["value"])
    mask = np.asarray(data.streams["nee"].mask)
    flux = np.where(mask, np.asarray(data.streams["nee"].value), 0.0)
    cycle = np.asarray(monthly_magnitude(jnp.asarray(flux), jnp.asarray(mask), data.month))
    assert cycle.shape == flux.shape and np.ptp(cycle) > 0.5
    np.testing.assert_allclose(obs.scale, np.sqrt(noise**2 + (0.3 * cycle) ** 2), rtol=1e-5)
    gpp = tr["obs_gpp"]["fn"].base_dist
    np.testing.assert_allclose(gpp.scale, float(tr["noise_gpp"]["value"]), rtol=1e-6)
    # masked entries still contribute nothing: the log-likelihood is the masked sum
    lp = np.asarray(tr["obs_nee"]["fn"].log_prob(tr["obs_nee"]["value"]))
    expected = dist.Normal(loc, np.sqrt(noise**2 + (0.3 * flux) ** 2)).log_prob(flux)
    np.testing.assert_allclose(np.where(mask, lp, 0.0), np.where(mask, expected, 0.0),
                               rtol=1e-4, atol=1e-4)  # fmt: skip
    # drawing new observations: the noise grows with the prediction
    pred = handlers.trace(model).get_trace(data, process=process, net=net, config=config,
                                           predict=True)["obs_nee"]["fn"].base_dist  # fmt: skip
    pred_cycle = np.asarray(monthly_magnitude(jnp.asarray(loc), None, data.month))
    np.testing.assert_allclose(pred.scale, np.sqrt(noise**2 + (0.3 * pred_cycle) ** 2),
                               rtol=1e-5)  # fmt: skip


# -- recovery and calibration ------------------------------------------------------------
MONTH = jnp.asarray(np.arange(120) % 12)  # ten years of months


def _seasonal_world(seed):
    """60 sites with seasonal cycles of different amplitude and level; observations with
    sd 0.2 + 25 % of |flux| (in quadrature)."""
    rng = np.random.default_rng(seed)
    amp, level = rng.uniform(0.0, 6.0, (60, 1)), rng.uniform(-3.0, 1.0, (60, 1))
    pred = jnp.asarray(level - amp * np.cos(2 * np.pi * np.asarray(MONTH) / 12))
    sd = np.sqrt(0.2**2 + (0.25 * np.asarray(pred)) ** 2)
    noisy = lambda: jnp.asarray(np.asarray(pred) + sd * rng.normal(size=pred.shape))  # noqa: E731
    return pred, noisy(), noisy()


def _noise_model(pred, obs=None, relative=True, gain=False):
    """Observations around ``pred`` (times a learned ``gain`` if asked), the noise sd
    growing with the observed seasonal cycle (the prediction's when drawing new ones)."""
    cfg = LikelihoodConfig(relative_noise=("nee",) if relative else ())
    noise = numpyro.sample("noise_nee", dist.HalfNormal(1.0))
    rel = numpyro.sample("relnoise_nee", dist.HalfNormal(0.5)) if relative else None
    if gain:
        pred = pred * numpyro.sample("gain", dist.Normal(1.0, 1.0))
    ref = pred if obs is None else obs
    ref = monthly_magnitude(ref, None, MONTH)
    d = observation_distribution(pred, jnp.zeros_like(pred), noise, False, cfg, rel, ref)
    with numpyro.plate("site", pred.shape[0], dim=-2), numpyro.plate("time", pred.shape[1]):
        numpyro.sample("obs", d, obs=obs)


def _posterior(pred, obs, relative, **kw):
    mcmc = MCMC(NUTS(_noise_model), num_warmup=300, num_samples=300, progress_bar=False)
    mcmc.run(jax.random.key(1), pred, obs, relative, **kw)
    return mcmc.get_samples()


def test_a_flux_proportional_noise_is_recovered_and_calibrates_intervals():
    """The fit recovers both terms of the noise, and its 90 % predictive intervals cover
    about 90 % of new observations at small and at large fluxes alike; constant noise
    over-covers the one and under-covers the other."""
    pred, obs, fresh = _seasonal_world(0)
    post = _posterior(pred, obs, relative=True)
    assert abs(float(post["relnoise_nee"].mean()) - 0.25) < 0.015
    assert abs(float(post["noise_nee"].mean()) - 0.2) < 0.05
    small = np.abs(np.asarray(pred)) < 1.5
    large = np.abs(np.asarray(pred)) > 5.0
    for relative in (True, False):
        draws = post if relative else _posterior(pred, obs, relative=False)
        rep = numpyro.infer.Predictive(_noise_model, draws)(jax.random.key(2), pred,
                                                           relative=relative)["obs"]  # fmt: skip
        lo, hi = np.quantile(np.asarray(rep), [0.05, 0.95], axis=0)
        inside = (np.asarray(fresh) >= lo) & (np.asarray(fresh) <= hi)
        cov_small, cov_large = inside[small].mean(), inside[large].mean()
        if relative:
            assert 0.86 <= cov_small <= 0.94 and 0.86 <= cov_large <= 0.94
        else:
            assert cov_small > 0.97 and cov_large < 0.85


def test_the_noise_model_leaves_the_prediction_unbiased():
    """A gain on an unbiased prediction is recovered at 1: the noise's reference is the
    observed seasonal cycle, which no parameter moves, so the density's log-sd term gives
    the fit no reason to shrink its prediction towards zero."""
    pred, obs, _ = _seasonal_world(1)
    gain = _posterior(pred, obs, True, gain=True)["gain"]
    assert abs(float(gain.mean()) - 1.0) < 3 * float(gain.std()) + 0.005


# -- configuration -------------------------------------------------------------------------
def test_bad_relative_noise_settings_are_refused_with_their_names():
    from differland_bayes.bayes.fitconfig import ConfigError, config_from_dict

    with pytest.raises(ValueError, match="LikelihoodConfig.relative_noise: expected a tuple"):
        LikelihoodConfig(relative_noise="nee")
    with pytest.raises(ValueError, match="relative_noise: expected distinct streams"):
        LikelihoodConfig(relative_noise=("nee", "nee"))
    with pytest.raises(ValueError, match="relative_noise_prior_scale"):
        LikelihoodConfig(relative_noise_prior_scale=0.0)
    raw = {
        "data": {"streams": ["gpp", "nee"]},
        "likelihood": {"relative_noise": ["nee", "et"], "relative_noise_prior_scale": -1},
    }
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw, source="my.toml")
    text = str(info.value)
    assert "likelihood.relative_noise: expected streams among data.streams ['gpp', 'nee'], " \
        "found ['et']" in text  # fmt: skip
    assert "likelihood.relative_noise_prior_scale" in text
    cfg = config_from_dict({"likelihood": {"relative_noise": ["nee"]}})
    assert cfg.model_config({}).likelihood.relative_noise == ("nee",)
