"""The environment mean of the seasonal discrepancy (``discrepancy_mean = "environment"``):
its basis and arithmetic, the program's sites, the configuration's checks, and the
transfer of a known environment-driven discrepancy to sites the fit has not seen."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import xarray as xr
from numpyro import handlers
from numpyro.infer import SVI, Trace_ELBO

from conftest import truth_of_first_site
from differland_bayes.bayes import (
    LikelihoodConfig,
    ModelConfig,
    NetworkConfig,
    hybrid_model,
    init_prior_net,
    pack,
)
from differland_bayes.bayes.discrepancy import (
    DISCREPANCY_GLOBALS,
    MONTHS,
    calendar_month,
    discrepancy_mean,
    harmonic_basis,
    harmonic_names,
    southern_sites,
)
from differland_bayes.bayes.guides import make_guide
from differland_bayes.bayes.model import _take_sites, initial_values
from differland_bayes.synthetic import synthesize

FREE = ("canopy_efficiency", "Q10")


def _config(fixed, streams=("nee",), harmonics=1, **lik):
    return ModelConfig(
        network=NetworkConfig(hidden=(8,)),
        fixed_parameters=fixed,
        likelihood=LikelihoodConfig(discrepancy=tuple(streams), discrepancy_mean="environment",
                                    discrepancy_harmonics=harmonics, **lik),
    )  # fmt: skip


# -- basis and arithmetic --------------------------------------------------------------------
@pytest.mark.parametrize("h", [0, 1, 2, 5])
def test_the_harmonic_basis_is_orthogonal_on_the_calendar_months(h):
    b = harmonic_basis(h)
    assert b.shape == (1 + 2 * h, MONTHS)
    assert harmonic_names(h)[: 1 + 2 * min(h, 1)] == ["mean", "cos1", "sin1"][: 1 + 2 * min(h, 1)]
    assert len(harmonic_names(h)) == b.shape[0]
    gram = b @ b.T
    np.testing.assert_allclose(gram, np.diag(np.diag(gram)), atol=1e-9)
    # constant row: 12; each harmonic row: 6 (sum of cos^2 over a full period)
    np.testing.assert_allclose(np.diag(gram), [12.0] + [6.0] * (2 * h))


def test_the_mean_is_linear_in_the_environment_on_the_basis():
    basis = harmonic_basis(1)
    env = jnp.asarray([[0.0, 0.0], [1.0, 0.0], [0.0, -2.0]])
    coef = np.zeros((2, 3, 3))  # streams x (mean, cos1, sin1) x (intercept, x0, x1)
    coef[0, 0, 0] = 0.5  # stream 0: +0.5 everywhere
    coef[0, 1, 1] = 2.0  # ... and 2 x0 cos(2 pi m / 12)
    coef[1, 2, 2] = 1.0  # stream 1: x1 sin(2 pi m / 12)
    mu = np.asarray(discrepancy_mean(jnp.asarray(coef), env, basis))
    assert mu.shape == (3, 2, MONTHS)
    m = np.arange(MONTHS)
    cos, sin = np.cos(2 * np.pi * m / 12), np.sin(2 * np.pi * m / 12)
    np.testing.assert_allclose(mu[:, 0], 0.5 + 2.0 * np.asarray(env)[:, :1] * cos, atol=1e-6)
    np.testing.assert_allclose(mu[:, 1], np.asarray(env)[:, 1:] * sin, atol=1e-6)
    # a leading sample axis of the coefficients carries through
    many = np.asarray(discrepancy_mean(jnp.stack([jnp.asarray(coef)] * 4), env, basis))
    assert many.shape == (4, 3, 2, MONTHS)
    np.testing.assert_allclose(many[2], mu, atol=1e-6)


def test_southern_sites_take_the_basis_six_months_on():
    basis = harmonic_basis(2)
    env = jnp.asarray([[0.3], [0.3]])
    coef = jnp.asarray(np.random.default_rng(0).normal(size=(1, 5, 2)))
    mu = np.asarray(discrepancy_mean(coef, env, basis, jnp.asarray([False, True])))[:, 0]
    # the same environment: the southern site's January is the northern site's July
    np.testing.assert_allclose(mu[1], np.roll(mu[0], -6), atol=1e-6)
    np.testing.assert_allclose(mu[1, 0], mu[0, 6], atol=1e-6)
    np.testing.assert_allclose(np.asarray(discrepancy_mean(coef, env, basis))[:, 0, :],
                               np.stack([mu[0], mu[0]]), atol=1e-6)  # fmt: skip

    class Forcing:
        lat = jnp.asarray([[45.0, 45.0], [-3.0, -3.0], [0.0, 0.0]])

    np.testing.assert_array_equal(southern_sites(Forcing()), [False, True, False])
    assert southern_sites(object()) is None


# -- the program -------------------------------------------------------------------------------
def test_the_program_adds_the_mean_to_the_site_discrepancy(process):
    world = synthesize(6, years=1, seed=1, free_parameters=list(FREE))
    data = pack(world, process)[0]
    fixed = truth_of_first_site(world, process, FREE)
    config = _config(fixed, streams=("nee", "et"), harmonics=2)
    net = init_prior_net(data.env.shape[1], process, config, key=jax.random.key(0))
    kw = {"process": process, "net": net, "config": config}
    tr = handlers.trace(handlers.seed(hybrid_model, 0)).get_trace(data, **kw)
    n, f = data.env.shape
    assert tr["discrepancy_coef"]["value"].shape == (2, 5, f + 1)
    assert tr["discrepancy_coef"]["scale"] is None  # a global: not scaled by minibatches
    assert "discrepancy_coef" in DISCREPANCY_GLOBALS
    assert initial_values(net, config)["discrepancy_coef"].shape == (2, 5, f + 1)
    tau = np.asarray(tr["discrepancy_sd"]["value"])
    eta = np.asarray(tr["discrepancy_eps"]["value"]).reshape(n, 2, MONTHS)
    south = southern_sites(data.forcing)
    assert np.asarray(south).any() and not np.asarray(south).all()  # both hemispheres
    mu = np.asarray(
        discrepancy_mean(tr["discrepancy_coef"]["value"], data.env, harmonic_basis(2), south)
    )
    delta = np.asarray(tr["discrepancy"]["value"]).reshape(n, 2, MONTHS)
    np.testing.assert_allclose(delta, mu + tau[:, None] * eta, rtol=1e-5, atol=1e-5)
    # the zero mean has no coefficients
    plain = ModelConfig(network=config.network, fixed_parameters=fixed,
                        likelihood=LikelihoodConfig(discrepancy=("nee",)))  # fmt: skip
    tr0 = handlers.trace(handlers.seed(hybrid_model, 0)).get_trace(
        data, process=process, net=net, config=plain
    )
    assert "discrepancy_coef" not in tr0 and "discrepancy_coef" not in initial_values(net, plain)


def test_bad_mean_settings_are_refused_with_their_names():
    with pytest.raises(ValueError, match=r"discrepancy_mean: expected one of \('zero', "):
        LikelihoodConfig(discrepancy=("nee",), discrepancy_mean="network")
    for bad in (-1, 6, 1.5, True):
        with pytest.raises(ValueError, match=r"discrepancy_harmonics: expected an integer in "):
            LikelihoodConfig(discrepancy=("nee",), discrepancy_harmonics=bad)
    assert not LikelihoodConfig(discrepancy_mean="environment").discrepancy_has_mean
    assert LikelihoodConfig(discrepancy=("nee",), discrepancy_mean="environment") \
        .discrepancy_has_mean  # fmt: skip

    from differland_bayes.bayes.fitconfig import ConfigError, config_from_dict

    raw = {"likelihood": {"discrepancy": ["nee"], "discrepancy_mean": "site",
                          "discrepancy_harmonics": 9}}  # fmt: skip
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw, source="my.toml")
    text = str(info.value)
    assert "likelihood.discrepancy_mean: expected one of" in text and "'site'" in text
    assert "likelihood.discrepancy_harmonics: expected an integer" in text and "9" in text
    ok = config_from_dict({"likelihood": {"discrepancy": ["nee"],
                                          "discrepancy_mean": "environment"}})  # fmt: skip
    lik = ok.model_config({}).likelihood
    assert lik.discrepancy_mean == "environment" and lik.discrepancy_harmonics == 2


# -- transfer to new sites ---------------------------------------------------------------------
def test_an_environment_driven_discrepancy_carries_to_new_sites(process):
    """NEE = model NEE + an offset driven by the (standardised) mean temperature.

    The offset of site s in calendar month m is ``x_s (1 + 0.7 cos(2 pi m / 12))`` (``m``
    six months on south of the equator) plus a site residual of sd 0.2. Fitted to 20
    sites, the learned mean must predict the offsets of 10 sites the fit has not seen
    (r >= 0.9 over their site-months, and half the error of the zero mean, i.e. of having
    no mean), and give the driver's coefficients about their true size.
    """
    n_fit, n_new = 20, 10
    world = synthesize(n_fit + n_new, years=2, seed=3, free_parameters=list(FREE))
    data_all, meta = pack(world, process, streams=["gpp", "nee", "et"], split=None)
    j = list(meta.features).index("mat")
    x = np.asarray(data_all.env)[:, j]
    rng = np.random.default_rng(7)
    m = np.arange(MONTHS)
    south = np.asarray(southern_sites(data_all.forcing))
    season = m[None, :] + 6 * south[:, None]  # the months of the site's own seasons
    truth = x[:, None] * (1.0 + 0.7 * np.cos(2 * np.pi * season / MONTHS))
    truth = truth + rng.normal(0.0, 0.2, size=truth.shape)
    month = calendar_month(world["time"].values)
    obs = world.copy()
    obs["nee"] = world["nee"] + xr.DataArray(truth[:, month], dims=("site", "time"))
    data_all = pack(obs, process, streams=["gpp", "nee", "et"], split=None)[0]
    data = _take_sites(data_all, jnp.arange(n_fit))

    fixed = truth_of_first_site(world, process, FREE)
    # prior sd of a feature coefficient: 3 / sqrt(F = 9) = 1, the size of the truth
    config = _config(fixed, harmonics=1, discrepancy_prior_scale={"nee": 3.0})
    net = init_prior_net(data.env.shape[1], process, config, key=jax.random.key(0))
    kw = {"process": process, "net": net, "config": config}
    guide = make_guide(hybrid_model, "delta")
    svi = SVI(hybrid_model, guide, optax.adam(0.03), Trace_ELBO())
    result = svi.run(jax.random.key(0), 1500, data, progress_bar=False, **kw)
    coef = np.asarray(guide.median(result.params)["discrepancy_coef"])[0]  # (3, F + 1)

    new = slice(n_fit, None)
    mu = np.asarray(discrepancy_mean(jnp.asarray(coef[None]), data_all.env[new],
                                     harmonic_basis(1), south[new]))[:, 0]  # fmt: skip
    r = np.corrcoef(mu.ravel(), truth[new].ravel())[0, 1]
    assert r >= 0.9, r
    rmse = np.sqrt(np.mean((mu - truth[new]) ** 2))
    assert rmse < 0.5 * np.sqrt(np.mean(truth[new] ** 2)), rmse
    # the driver's coefficients: mean 1.0 and cos1 0.7 (per standardised mat); they are
    # shared with features correlated with mat (latitude) and shrunk by the prior, so
    # only their rough size is asserted (found: 0.79 and 0.39)
    assert 0.6 < coef[0, 1 + j] < 1.4, coef[0, 1 + j]
    assert 0.2 < coef[1, 1 + j] < 1.2, coef[1, 1 + j]
