"""Process-model properties: jit/vmap/grad, dtypes, scan vs loop, input errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from _reference import load_reference_groups
from differland_bayes.process import MODELS, get_model, simulate


@pytest.fixture(scope="module")
def groups(reference_dir):
    return {
        "dalec993": load_reference_groups(reference_dir / "dalec993_reference.nc")[0],
        "dalec990": load_reference_groups(reference_dir / "dalec990_reference.nc")[0],
    }


def _scalar_loss(model, met):
    def loss(z):
        params, pools0 = model.from_unconstrained(z)
        out = simulate(model, params, pools0, model.forcing_from_matrix(met))
        return (
            jnp.mean(out.nee)
            + jnp.mean(out.ET)
            + jnp.mean(out.lai)
            + jnp.mean(out.next_som_pool) * 1e-3
        )

    return loss


@pytest.mark.parametrize("name, steps", [("dalec993", 36), ("dalec990", 400)])
def test_check_grads(groups, name, steps):
    group = groups[name]
    model = get_model(name)
    with jax.enable_x64(True):
        met = jnp.asarray(group.forcing[0, :steps])
        z = jnp.asarray(group.z[0]) * 0.5  # moderate draw: away from the clipping kinks
        check_grads(
            _scalar_loss(model, met),
            (z,),
            order=1,
            modes=("rev", "fwd"),
            eps=1e-6,
            atol=1e-4,
            rtol=1e-4,
        )


@pytest.mark.parametrize("x64", [True, False], ids=["float64", "float32"])
def test_gradients_finite_over_all_reference_cases(reference_dir, x64):
    with jax.enable_x64(x64):
        dtype = jnp.float64 if x64 else jnp.float32
        for path in sorted(reference_dir.glob("*.nc")):
            for group in load_reference_groups(path):
                model = group.model

                def case_loss(z, met, model=model):
                    params, pools0 = model.from_unconstrained(z)
                    out = simulate(model, params, pools0, model.forcing_from_matrix(met))
                    return sum(jnp.mean(getattr(out, n)) for n in model.Outputs._fields)

                grads = jax.jit(jax.vmap(jax.grad(case_loss)))(
                    jnp.asarray(group.z, dtype), jnp.asarray(group.forcing, dtype)
                )
                assert grads.dtype == dtype
                bad = ~np.isfinite(np.asarray(grads))
                assert not bad.any(), (
                    f"{path.name}: non-finite gradient in cases "
                    f"{sorted(set(group.cases[np.nonzero(bad)[0]].tolist()))}"
                )
                assert np.abs(np.asarray(grads)).max() > 0


@pytest.mark.parametrize("name", sorted(MODELS))
def test_vmap_over_sites_equals_loop(groups, name):
    group = groups[name]
    model = get_model(name)
    n = min(4, len(group.cases))
    steps = 60 if name == "dalec993" else 730

    def run(th, m):
        params, pools0 = model.split(th)
        return simulate(model, params, pools0, model.forcing_from_matrix(m))

    # float64: vectorised and scalar float32 transcendentals differ by an ulp, which the
    # ill-conditioned model can amplify; the property checked here is semantic.
    with jax.enable_x64(True):
        theta = jnp.asarray(group.theta[:n])
        met = jnp.asarray(group.forcing[:n, :steps])
        batched = jax.jit(jax.vmap(run))(theta, met)
        single = jax.jit(run)
        for k in range(n):
            one = single(theta[k], met[k])
            for field in model.Outputs._fields:
                np.testing.assert_allclose(
                    getattr(batched, field)[k],
                    getattr(one, field),
                    rtol=1e-10,
                    atol=1e-12,
                    err_msg=field,
                )


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("mode", ["faithful", "conserving"])
def test_scan_equals_python_loop_of_steps(groups, name, mode):
    group = groups[name]
    model = get_model(name, mode=mode)
    with jax.enable_x64(True):
        params, pools = model.split(jnp.asarray(group.theta[2]))
        forcing = model.forcing_from_matrix(jnp.asarray(group.forcing[2, :15]))
        scanned = simulate(model, params, pools, forcing)
        drivers = model.prepare(params, forcing)
        for t in range(15):
            drv_t = jax.tree_util.tree_map(lambda x, t=t: x[t], drivers)
            pools, out = model.step(pools, drv_t, params)
            for field in model.Outputs._fields:
                np.testing.assert_allclose(
                    getattr(scanned, field)[t], getattr(out, field), rtol=1e-12
                )


@pytest.mark.parametrize("name", sorted(MODELS))
def test_dtype_follows_x64_flag(groups, name):
    group = groups[name]
    model = get_model(name)
    params, pools0 = model.split(group.theta[0])
    out32 = simulate(model, params, pools0, model.forcing_from_matrix(group.forcing[0, :10]))
    assert all(v.dtype == jnp.float32 for v in out32)
    with jax.enable_x64(True):
        params, pools0 = model.split(jnp.asarray(group.theta[0]))
        forcing = model.forcing_from_matrix(jnp.asarray(group.forcing[0, :10]))
        out64 = simulate(model, params, pools0, forcing)
        assert all(v.dtype == jnp.float64 for v in out64)
    np.testing.assert_allclose(out32.gpp, out64.gpp, rtol=1e-4)


def test_simulate_rejects_bad_forcing():
    model = get_model("dalec993")
    params, pools0 = model.split(model.table.default)
    with pytest.raises(TypeError, match="forcing must be a Dalec993Forcing"):
        simulate(model, params, pools0, np.zeros((10, 13)))
    with pytest.raises(ValueError, match="needs 13 columns"):
        model.forcing_from_matrix(np.zeros((10, 5)))
    f = model.forcing_from_matrix(np.ones((10, 13)))
    f = f._replace(t_min=jnp.ones(9))
    with pytest.raises(ValueError, match="same time length"):
        simulate(model, params, pools0, f)
    with pytest.raises(ValueError, match="last axis of length 40"):
        model.split(np.ones(38))


def test_get_model_errors_name_the_choices():
    with pytest.raises(KeyError, match="available: \\['dalec990', 'dalec993'\\]"):
        get_model("dalec999")
    with pytest.raises(KeyError, match="baseline"):
        get_model("dalec990", water_stress="nothing")
    with pytest.raises(ValueError, match="mode must be one of"):
        get_model("dalec993", mode="exact")
