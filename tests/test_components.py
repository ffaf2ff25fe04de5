"""Components are exchangeable strategies: a learnable water-stress factor drops in."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from differland_bayes.process import Dalec993, get_model, simulate
from differland_bayes.process.components.canopy import AcmCanopy
from differland_bayes.process.components.hydrology import drainage_integrated, drainage_published
from differland_bayes.process.components.turnover import step_loss_rate, step_loss_rate_bounded
from differland_bayes.process.components.water_stress import AbstractWaterStress


class SigmoidWaterStress(AbstractWaterStress):
    """A stand-in for a neural water-stress factor: beta = sigmoid(a * W / 1500 + b)."""

    a: jax.Array
    b: jax.Array

    def beta(self, water, params):
        return jax.nn.sigmoid(self.a * water / 1500.0 + self.b)


def _toy_forcing(model, n=24):
    t = jnp.arange(n, dtype=jnp.float32)
    season = jnp.sin(2 * jnp.pi * t / 12)
    met = jnp.stack(
        [
            730 + 30.4 * t, 5 + 8 * season, 15 + 9 * season, 15 + 8 * season,
            jnp.full(n, 400.0), 15 + 30.4 * (t % 12), jnp.zeros(n), 8 + 5 * season,
            2 + season, jnp.full(n, 45.0), jnp.full(n, 30.0), jnp.full(n, 10.0), jnp.full(n, 2.0),
        ],
        axis=-1,
    )  # fmt: skip
    return model.forcing_from_matrix(met)


def test_learnable_water_stress_drops_in_and_is_differentiable():
    model = Dalec993(canopy=AcmCanopy(SigmoidWaterStress(jnp.array(20.0), jnp.array(-1.0))))
    forcing = _toy_forcing(model)
    params, pools0 = model.split(model.table.default)

    @eqx.filter_grad
    def grad_wrt_model(m):
        return jnp.sum(simulate(m, params, pools0, forcing).gpp)

    g = grad_wrt_model(model)
    assert np.isfinite(float(g.canopy.water_stress.a)) and float(g.canopy.water_stress.b) != 0.0
    out = simulate(model, params, pools0, forcing)
    default = simulate(get_model("dalec993"), params, pools0, forcing)
    assert not np.allclose(out.beta, default.beta)  # the new component is used
    assert np.all((np.asarray(out.beta) > 0) & (np.asarray(out.beta) < 1))


def test_integrated_drainage_is_step_length_consistent():
    with jax.enable_x64(True):
        w = jnp.array([5.0, 80.0, 400.0, 2000.0])
        q = jnp.array([100.0, 100.0, 300.0, 1000.0])
        one = drainage_integrated(w, q, 30.0) * 30.0
        half = drainage_integrated(w, q, 15.0) * 15.0
        two = half + drainage_integrated(w - half, q, 15.0) * 15.0
        np.testing.assert_allclose(one, two, rtol=1e-12)
        assert np.all(np.asarray(one) < np.asarray(w))
        # the published formula drains the same amount whatever the step length
        np.testing.assert_allclose(
            drainage_published(w, q, 30.0) * 30.0, drainage_published(w, q, 1.0), rtol=1e-12
        )
        # for a small step the integrated law approaches the published daily rate
        np.testing.assert_allclose(
            drainage_integrated(w, q, 1e-4), drainage_published(w, q, 1.0), rtol=1e-3
        )


def test_bounded_loss_rate_never_exceeds_the_pool():
    k = jnp.array([0.5, 1.0, 1.5, 2.5, -0.1])
    published = step_loss_rate(k, 30.0) * 30.0
    bounded = step_loss_rate_bounded(k, 30.0) * 30.0
    assert float(published[3]) < 0  # the published quirk for k > 2
    assert np.all((np.asarray(bounded) >= 0) & (np.asarray(bounded) <= 1))
