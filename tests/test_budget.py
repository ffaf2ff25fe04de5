"""Carbon-pool budgets and initial pools in dynamic equilibrium (process.budget)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from differland_bayes.bayes.likelihood import steady_state_edc
from differland_bayes.defaults import default_forcing_dataset, default_theta
from differland_bayes.forcing import build_forcing
from differland_bayes.process import get_model, simulate
from differland_bayes.process.budget import (
    CARBON_POOLS,
    EQUILIBRIUM_POOLS,
    budget_ratios,
    carbon_pool_budgets,
    equilibrium_pools,
)


@pytest.fixture(scope="module", params=["dalec993", "dalec990"])
def site(request):
    model = get_model(request.param, mode="conserving")
    ds = default_forcing_dataset(request.param, years=3)
    forcing = build_forcing(ds, model)
    params, pools = model.split(default_theta(model))
    return model, params, pools, forcing


def test_budgets_close_the_conserving_model(site):
    model, params, pools, forcing = site
    out = simulate(model, params, pools, forcing)
    budgets = carbon_pool_budgets(out)
    assert list(budgets) == list(CARBON_POOLS)
    dt = np.asarray(forcing.delta_t)
    for p, (inflow, outflow) in budgets.items():
        start = np.concatenate(
            [[float(getattr(pools, p))], np.asarray(getattr(out, f"next_{p}_pool"))[:-1]]
        )
        change = np.asarray(getattr(out, f"next_{p}_pool")) - start
        np.testing.assert_allclose(change, (np.asarray(inflow) - np.asarray(outflow)) * dt,
                                   atol=1e-3 * max(1.0, float(np.abs(start).max())))  # fmt: skip


def test_equilibrium_pools_balance_their_budgets(site):
    model, params, pools, forcing = site
    # start far from equilibrium: slow pools too large, litter and roots too small
    start = pools._replace(som=pools.som * 10.0, wood=pools.wood * 5.0, litter=pools.litter * 0.1,
                           root=pools.root * 0.2)  # fmt: skip
    before = budget_ratios(simulate(model, params, start, forcing), forcing)
    s0 = [float(before[p][0] * before[p][1]) / float(getattr(start, p)) for p in EQUILIBRIUM_POOLS]
    assert max(abs(np.log(s0))) > 0.5  # far from equilibrium to start with
    eq = equilibrium_pools(model, params, start, forcing, iterations=4)
    out = simulate(model, params, eq, forcing)
    assert np.isfinite(float(steady_state_edc(out, eq, forcing)))
    ratios = budget_ratios(out, forcing)
    for p in EQUILIBRIUM_POOLS:  # balanced, and January states equal the initial pools
        ratio, year_end = (float(v) for v in ratios[p])
        assert ratio * year_end / float(getattr(eq, p)) == pytest.approx(1.0, abs=0.02), p
    for p in ("labile", "foliar"):  # the canopy pools are kept
        assert float(getattr(eq, p)) == float(getattr(start, p))
    assert float(eq.water if hasattr(eq, "water") else eq.paw) == pytest.approx(
        float(pools.water if hasattr(pools, "water") else pools.paw)
    )  # the water pool is kept
    assert all(float(v) >= 1.0 for v in eq[:6])


def test_unknown_pool_names_are_rejected(site):
    model, params, pools, forcing = site
    with pytest.raises(ValueError, match="pools: expected names in"):
        equilibrium_pools(model, params, pools, forcing, pools=("leaves",))


def test_equilibrium_pools_vmap_and_grad(site):
    model, params, pools, forcing = site
    stack = lambda x: jax.tree.map(lambda a: np.stack([a, a]), x)  # noqa: E731

    eq = jax.vmap(lambda p, q, f: equilibrium_pools(model, p, q, f, iterations=2))(
        stack(params), stack(pools), stack(forcing)
    )
    np.testing.assert_allclose(np.asarray(eq.som)[0], np.asarray(eq.som)[1], rtol=1e-6)

    def som_eq(scale):
        p = params._replace(**{params._fields[0]: params[0] * scale})
        return equilibrium_pools(model, p, pools, forcing, iterations=2).som

    assert np.isfinite(float(jax.grad(som_eq)(1.0)))


def test_iterations_must_be_positive(site):
    model, params, pools, forcing = site
    with pytest.raises(ValueError, match="iterations: expected an integer >= 1"):
        equilibrium_pools(model, params, pools, forcing, iterations=0)


def test_predict_new_sites_rejects_unknown_pool_option():
    from differland_bayes.bayes.predict import predict_new_sites

    with pytest.raises(ValueError, match="initial_pools: expected one of"):
        predict_new_sites(None, None, process=get_model("dalec993"), net=None, config=None,
                          posterior=None, key=None, initial_pools="spinup")  # fmt: skip
