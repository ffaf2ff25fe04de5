"""The ``site_mvn`` guide: a full covariance per site under a subsampled site plate."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro import handlers
from numpyro.infer import SVI, Predictive, Trace_ELBO
from numpyro.infer.autoguide import AutoGuideList, AutoNormal

from differland_bayes.bayes.guides import AutoSiteMVN, make_guide
from differland_bayes.bayes.svi import fit_svi, make_optimizer

N_SITES, D = 24, 2
#: loading of the site latents on the one observation per site (y = A @ eps + noise)
A = np.array([[1.0, 0.6]])
NOISE = 0.5


def linear_model(y, *, subsample_size=None, with_global=True):
    """Site latents ``eps`` (site, D) observed through ``A`` (the hybrid model's layout)."""
    shift = numpyro.sample("shift", dist.Normal(0.0, 1.0)) if with_global else 0.0
    with numpyro.plate("site", y.shape[0], subsample_size=subsample_size, dim=-2) as idx:
        with numpyro.plate("parameter", D, dim=-1):
            eps = numpyro.sample("eps", dist.Normal(0.0, 1.0))
        mean = eps @ jnp.asarray(A.T) + shift
        numpyro.sample("y", dist.Normal(mean, NOISE), obs=y[idx])


def _y(seed: int = 0) -> jnp.ndarray:
    rng = np.random.default_rng(seed)
    eps = rng.standard_normal((N_SITES, D))
    return jnp.asarray(eps @ A.T + NOISE * rng.standard_normal((N_SITES, 1)), jnp.float32)


def _guide(model=linear_model, **kw):
    return make_guide(model, "site_mvn", local_sites="eps", plate=("site", "parameter"), **kw)


def _exact_posterior(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior of every site's eps with ``shift = 0`` (conjugate normal)."""
    prec = np.eye(D) + A.T @ A / NOISE**2
    cov = np.linalg.inv(prec)
    mean = (np.asarray(y) @ A / NOISE**2) @ cov.T
    return mean, cov


def test_params_have_a_block_per_site_and_start_at_init_scale():
    y = _y()
    guide = _guide(init_scale=0.2)
    svi = SVI(linear_model, guide, numpyro.optim.Adam(1e-2), Trace_ELBO())
    state = svi.init(jax.random.key(0), y, subsample_size=5)
    params = svi.get_params(state)
    assert isinstance(guide, AutoGuideList) and isinstance(guide[1], AutoSiteMVN)
    assert isinstance(guide[0], AutoNormal) and "shift_auto_loc" in params  # globals
    assert params["eps_auto_loc"].shape == (N_SITES, D)
    tril = np.asarray(params["eps_auto_scale_tril"])
    assert tril.shape == (N_SITES, D, D)
    np.testing.assert_allclose(tril, np.broadcast_to(0.2 * np.eye(D), tril.shape), rtol=1e-6)
    loss = svi.evaluate(state, y, subsample_size=5)
    assert np.isfinite(float(loss))


def test_minibatch_draws_use_the_params_of_the_plate_indices():
    y = _y()
    guide = _guide(init_scale=1e-4)
    with handlers.seed(rng_seed=0):
        guide(y, subsample_size=5)  # prototype
    loc = jnp.arange(N_SITES * D, dtype=jnp.float32).reshape(N_SITES, D)
    params = {
        "eps_auto_loc": loc,
        "eps_auto_scale_tril": jnp.broadcast_to(1e-4 * jnp.eye(D), (N_SITES, D, D)),
        "shift_auto_loc": jnp.zeros(()),
        "shift_auto_scale": jnp.full((), 0.1),
    }
    for seed in range(3):
        tr = handlers.trace(handlers.seed(handlers.substitute(guide, params), seed)).get_trace(
            y, subsample_size=5
        )
        idx = np.asarray(tr["site"]["value"])
        assert idx.shape == (5,) and len(set(idx.tolist())) == 5
        assert tr["eps"]["value"].shape == (5, D)
        np.testing.assert_allclose(tr["eps"]["value"], loc[idx], atol=1e-2)
        # the model, replayed on the guide's trace, sees the same sites
        model_tr = handlers.trace(handlers.replay(handlers.seed(linear_model, 1), tr)).get_trace(
            y, subsample_size=5
        )
        np.testing.assert_array_equal(model_tr["site"]["value"], idx)
        assert model_tr["eps"]["scale"] == pytest.approx(N_SITES / 5)


def local_model(y, *, subsample_size=None):
    """:func:`linear_model` without its global latent: the exact posterior is known."""
    linear_model(y, subsample_size=subsample_size, with_global=False)


@pytest.fixture(scope="module")
def fitted():
    """site_mvn fitted on minibatches of 8 of the 24 sites."""
    y = _y()
    guide = _guide(local_model)
    steps = 3000
    fit = fit_svi(
        local_model,
        guide,
        key=jax.random.key(2),
        num_steps=steps,
        optimizer=make_optimizer(0.02, total_steps=steps),
        model_args=(y,),
        model_kwargs={"subsample_size": 8},
        num_particles=4,
        progress_bar=False,
    )
    return y, guide, fit


def test_fit_on_minibatches_recovers_the_exact_full_covariance(fitted):
    y, _, fit = fitted
    assert np.all(np.isfinite(fit.losses))
    mean, cov = _exact_posterior(np.asarray(y))
    loc = np.asarray(fit.params["eps_auto_loc"])
    tril = np.asarray(fit.params["eps_auto_scale_tril"])
    fitted_cov = tril @ np.swapaxes(tril, -1, -2)
    np.testing.assert_allclose(loc, mean, atol=0.1)
    sd = np.sqrt(np.diagonal(fitted_cov, axis1=1, axis2=2))
    np.testing.assert_allclose(sd, np.broadcast_to(np.sqrt(np.diag(cov)), sd.shape), rtol=0.15)
    corr = fitted_cov[:, 0, 1] / (sd[:, 0] * sd[:, 1])
    exact_corr = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
    assert exact_corr < -0.5  # a strong trade-off that a mean-field guide cannot represent
    np.testing.assert_allclose(corr, exact_corr, atol=0.1)


def test_draws_at_every_site(fitted):
    y, guide, fit = fitted
    sub = handlers.substitute(guide, data={"site": jnp.arange(N_SITES)})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="subsample_size does not match")
        draws = Predictive(sub, params=fit.params, num_samples=2000)(jax.random.key(3), y)
    eps = np.asarray(draws["eps"])
    assert eps.shape == (2000, N_SITES, D)
    mean, cov = _exact_posterior(np.asarray(y))
    np.testing.assert_allclose(eps.mean(0), mean, atol=0.1)
    emp = np.cov(eps[:, 0].T)
    np.testing.assert_allclose(emp, cov, atol=0.05)

    local = guide[1]  # (NumPyro's AutoNormal part cannot sample_posterior without latents)
    post = local.sample_posterior(jax.random.key(4), fit.params, y, sample_shape=(7,))
    assert post["eps"].shape == (7, N_SITES, D)
    np.testing.assert_array_equal(local.median(fit.params)["eps"], fit.params["eps_auto_loc"])
    q = local.quantiles(fit.params, [0.05, 0.5, 0.95])["eps"]
    assert q.shape == (3, N_SITES, D)
    np.testing.assert_allclose(q[1], fit.params["eps_auto_loc"], atol=1e-6)
    assert np.all(q[0] < q[1]) and np.all(q[1] < q[2])


def test_scalar_site_latents_and_full_batch():
    def model(y):
        with numpyro.plate("site", y.shape[0]):
            eps = numpyro.sample("eps", dist.Normal(0.0, 1.0))
            numpyro.sample("y", dist.Normal(eps, 1.0), obs=y)

    y = jnp.linspace(-1.0, 1.0, 6)
    guide = make_guide(model, "site_mvn", local_sites="eps", plate="site")
    svi = SVI(model, guide, numpyro.optim.Adam(1e-2), Trace_ELBO())
    state = svi.init(jax.random.key(0), y)
    params = svi.get_params(state)
    assert params["eps_auto_loc"].shape == (6, 1)
    tr = handlers.trace(handlers.seed(handlers.substitute(guide, params), 0)).get_trace(y)
    assert tr["eps"]["value"].shape == (6,)
    assert np.isfinite(float(svi.evaluate(state, y)))


def test_errors_name_what_is_wrong():
    with pytest.raises(ValueError, match="site_mvn: expected local_sites and plate"):
        make_guide(linear_model, "site_mvn", local_sites=(), plate="site")
    with pytest.raises(ValueError, match="rank: expected an integer >= 1"):
        make_guide(linear_model, "site_mvn", rank=0)

    def positive(y):
        with numpyro.plate("site", y.shape[0]):
            s = numpyro.sample("s", dist.LogNormal(0.0, 1.0))
            numpyro.sample("y", dist.Normal(0.0, s), obs=y)

    guide = make_guide(positive, "site_mvn", local_sites="s", plate="site")
    with pytest.raises(ValueError, match="site 's': AutoSiteMVN needs a real-valued latent"):
        handlers.seed(guide, 0)(jnp.ones(3))
    guide = AutoSiteMVN(handlers.block(linear_model, expose=["eps"]))
    with pytest.raises(ValueError, match="plate 'site': expected it in the"):
        handlers.seed(guide, 0)(_y())
    with pytest.raises(ValueError, match="init_scale: expected a number > 0"):
        AutoSiteMVN(linear_model, init_scale=0.0)


def test_resume_continues_a_site_mvn_fit_exactly(tmp_path):
    y = _y()
    kw = {
        "key": jax.random.key(5),
        "optimizer": make_optimizer(0.02, schedule="constant"),
        "model_args": (y,),
        "model_kwargs": {"subsample_size": 6},
        "progress_bar": False,
    }
    full = fit_svi(linear_model, _guide(rank=1), num_steps=40, **kw)
    assert "auto_cov_factor" in full.params  # rank: low-rank globals
    fit_svi(linear_model, _guide(rank=1), num_steps=25, checkpoint_dir=tmp_path, **kw)
    resumed = fit_svi(
        linear_model, _guide(rank=1), num_steps=40, checkpoint_dir=tmp_path, resume=True, **kw
    )
    np.testing.assert_array_equal(resumed.losses, full.losses)
    for name in ("eps_auto_loc", "eps_auto_scale_tril", "auto_loc"):
        np.testing.assert_array_equal(resumed.params[name], full.params[name])
