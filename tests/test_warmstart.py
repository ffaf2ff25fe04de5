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
