"""MAP warm start: the variational guide starts at the MAP point of the same model."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from numpyro.infer import SVI, Trace_ELBO

from conftest import REPO
from differland_bayes.bayes.fit import build_problem, load_dataset
from differland_bayes.bayes.fitconfig import config_with, load_config
from differland_bayes.bayes.model import hybrid_model
from differland_bayes.bayes.optim import make_optimizer
from differland_bayes.bayes.warmstart import map_warm_start

FREE = ["canopy_efficiency", "LCMA", "f_fol"]


@pytest.fixture(scope="module")
def problem_and_cfg():
    cfg = config_with(
        load_config(REPO / "examples" / "configs" / "synthetic.toml"),
        {
            "data.synthetic.sites": 6,
            "data.synthetic.years": 2,
            "data.synthetic.free_parameters": FREE,
            "data.site_split": "all",
            "model.free_parameters": FREE,
            "network.hidden": [4],
            "svi.batch_size": 4,
            "svi.map_steps": 150,
            "svi.map_lr": 0.05,
            "svi.guide": "normal",
        },
    )
    ds, _ = load_dataset(cfg)
    return build_problem(cfg, ds), cfg


def _elbo(problem, guide, params=None, n=64):
    svi = SVI(hybrid_model, guide, make_optimizer(1e-3, schedule="constant"), Trace_ELBO(n))
    kw = {**problem.model_kwargs, "subsample_size": None}
    state = svi.init(jax.random.key(0), problem.data, init_params=params, **kw)
    return float(svi.evaluate(state, problem.data, **kw)), svi.get_params(state)


def test_guide_starts_at_the_map_point(problem_and_cfg):
    problem, cfg = problem_and_cfg
    warm = map_warm_start(cfg, problem, key=jax.random.key(1), progress_bar=False)
    assert warm.losses.shape == (150,) and np.isfinite(warm.losses).all()
    assert warm.losses[-10:].mean() < warm.losses[:10].mean()
    # the local residuals start at the MAP point (full size, every site)
    eps = np.asarray(warm.init_params["eps_auto_loc"])
    assert eps.shape == (6, len(FREE)) and np.abs(eps).max() > 0
    # the network weights are the MAP weights, not the initial ones
    w0 = np.asarray(problem.net.trunk[0].weight)
    w1 = np.asarray(warm.problem.net.trunk[0].weight)
    assert not np.allclose(w0, w1)
    assert warm.problem.model_kwargs["net"] is warm.problem.net
    # the ELBO of the warm-started guide is better than that of the cold one
    cold, _ = _elbo(problem, problem.guide)
    hot, params = _elbo(warm.problem, warm.problem.guide, warm.init_params)
    np.testing.assert_allclose(np.asarray(params["eps_auto_loc"]), eps)
    assert hot < cold


def test_map_steps_must_be_positive(problem_and_cfg):
    problem, cfg = problem_and_cfg
    with pytest.raises(ValueError, match="svi.map_steps: expected a positive"):
        map_warm_start(config_with(cfg, {"svi.map_steps": 0}), problem, key=jax.random.key(0))


def test_local_residuals_are_started_for_every_guide_kind_with_local_locations(problem_and_cfg):
    from differland_bayes.bayes.fit_problem import problem_guide
    from differland_bayes.bayes.warmstart import _local_loc_params

    _, cfg = problem_and_cfg
    eps = np.ones((6, len(FREE)))
    for kind in ("normal", "lowrank", "site_mvn"):
        guide = problem_guide(config_with(cfg, {"svi.guide": kind}), {})
        got = _local_loc_params(guide, {"eps": eps, "sigma": np.ones(len(FREE))})
        assert list(got) == ["eps_auto_loc"], kind
        np.testing.assert_array_equal(np.asarray(got["eps_auto_loc"]), eps)


def test_empirical_bayes_sigma_keeps_z_and_matches_the_residual_spread():
    from differland_bayes.bayes.warmstart import empirical_bayes_sigma

    rng = np.random.default_rng(0)
    sigma = np.array([4.0, 0.5, 0.2])
    eps = rng.normal(size=(50, 3)) * np.array([0.1, 1.0, 0.0])
    floor = 0.05
    new, eps_new = empirical_bayes_sigma(sigma, eps, sigma_floor=floor, lower=0.1)
    new, eps_new = np.asarray(new), np.asarray(eps_new)
    # every z = loc + (sigma + floor) * eps is unchanged
    np.testing.assert_allclose((new + floor) * eps_new, (sigma + floor) * eps, atol=1e-6)
    # informed parameters: sd = spread of the residuals, so eps has unit root mean square
    np.testing.assert_allclose(np.sqrt(np.mean(eps_new[:, :2] ** 2, axis=0)), 1.0, rtol=1e-5)
    assert new[0] < sigma[0] / 5  # the inflated sigma shrinks to the residuals' spread
    assert new[2] == pytest.approx(0.1)  # no spread: held at the lower bound


def test_empirical_bayes_rounds_give_a_sigma_consistent_with_the_residuals(problem_and_cfg):
    problem, cfg = problem_and_cfg
    cfg = config_with(cfg, {"svi.map_sigma_rounds": 2})
    warm = map_warm_start(cfg, problem, key=jax.random.key(1), progress_bar=False)
    assert warm.losses.shape == (150,) and np.isfinite(warm.losses).all()
    eps = np.asarray(warm.init_params["eps_auto_loc"])
    rms = np.sqrt(np.mean(eps**2, axis=0))
    # each parameter's residuals have unit spread, or less where sigma sits at its bound
    assert np.isfinite(eps).all()
    assert np.all(rms < 1.0 + 1e-3), rms
    assert np.any(np.abs(rms - 1.0) < 1e-3), rms
