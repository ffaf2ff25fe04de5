"""Neural-network hybrid components (spec §1.4 nn_paw / nn_whole) and their NumPyro wiring."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from numpyro import handlers
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoNormal

from differland_bayes.bayes import ModelConfig, NetworkConfig, hybrid_model, init_prior_net, pack
from differland_bayes.process import get_model
from differland_bayes.process.components.neural import NeuralCanopy, NeuralWaterStress
from differland_bayes.process.simulate import simulate
from differland_bayes.synthetic import synthesize

MODELS = ("dalec993", "dalec990")
OPTIONS = ("nn_paw", "nn_whole")


def _met(name: str, n: int = 24, seed: int = 0) -> np.ndarray:
    """A short, plausible forcing matrix in the published column order."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    daily = name == "dalec990"
    doy = (t % 365 + 1) if daily else (t % 12) * 30.4 + 15
    season = np.sin(2 * np.pi * doy / 365)
    tmin = 5 + 10 * season + rng.normal(0, 1, n)
    tmax = tmin + 10
    cols = [
        t * (1 if daily else 30),  # DAYS
        tmin,
        tmax,
        15 + 8 * season,  # SOLR
        400 + 0.2 * t,  # CO2
        doy,
        np.zeros(n),  # burned area
        8 + 4 * season,  # VPD
        np.abs(rng.normal(2, 1, n)),  # PREC
        np.full(n, 45.0),  # LAT
        np.full(n, 1.0 if daily else 30.0),  # DELTA_T
        np.full(n, 10.0),  # MAT
        np.full(n, 2.0),  # MAP
    ]
    if daily:
        z = lambda x: (x - x.mean()) / x.std()  # noqa: E731
        cols += [z((tmin + tmax) / 2), z(cols[3]), z(cols[7]), z(cols[4]), np.zeros(n)]
    return np.stack(cols, axis=1).astype(np.float32)


def _build(name: str, option: str, key: int = 0):
    base = get_model(name)
    forcing = base.forcing_from_matrix(_met(name))
    model = get_model(name, water_stress=option, key=jax.random.key(key), forcing=forcing)
    params, pools0 = model.split(jnp.asarray(model.table.default, jnp.float32))
    return model, params, pools0, forcing


def _weights(model):
    return eqx.filter(model, eqx.is_inexact_array)


def test_parameter_counts():
    assert NeuralWaterStress(key=jax.random.key(0)).n_weights == 31
    assert NeuralCanopy(key=jax.random.key(0)).n_weights == 202
    for name in MODELS:
        for option, n in zip(OPTIONS, (31, 202), strict=True):
            model = _build(name, option)[0]
            assert sum(leaf.size for leaf in jax.tree.leaves(_weights(model))) == n
    # the published options hold no trainable arrays
    assert not jax.tree.leaves(_weights(get_model("dalec993")))


def test_beta_in_unit_interval():
    ws = NeuralWaterStress(key=jax.random.key(3))
    b = np.asarray(ws.beta(jnp.linspace(0.0, 1e4, 101), None))
    assert b.shape == (101,) and np.all((b > 0) & (b < 1))


def test_nn_options_need_a_key_and_nn_whole_a_forcing():
    with pytest.raises(ValueError, match="key"):
        get_model("dalec993", water_stress="nn_paw")
    with pytest.raises(ValueError, match="forcing"):
        get_model("dalec990", water_stress="nn_whole", key=jax.random.key(0))
    with pytest.raises(KeyError, match="nn_paw"):
        get_model("dalec993", water_stress="bogus")


def test_standardisation_constants_are_static():
    name = "dalec993"
    model = _build(name, "nn_whole")[0]
    canopy = model.canopy
    leaves = jax.tree.leaves(_weights(model))
    assert len(leaves) == 6  # three (weight, bias) pairs, nothing else
    assert isinstance(canopy.t_sd, float) and canopy.t_sd > 0
    assert isinstance(canopy.co2_mean, float) and 390 < canopy.co2_mean < 410


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("option", OPTIONS)
def test_simulate_jit_vmap_grad(name, option):
    model, params, pools0, forcing = _build(name, option)
    out = eqx.filter_jit(simulate)(model, params, pools0, forcing)
    assert np.all(np.isfinite(np.asarray(out.gpp)))
    if option == "nn_whole":
        np.testing.assert_array_equal(np.asarray(out.beta), 1.0)  # undefined: reported as 1
    else:
        assert np.all((np.asarray(out.beta) > 0) & (np.asarray(out.beta) < 1))

    # vmap over two sites
    stack = lambda x: jnp.stack([x, x])  # noqa: E731
    batch = jax.vmap(lambda p, q, f: simulate(model, p, q, f))(
        jax.tree.map(stack, params), jax.tree.map(stack, pools0), jax.tree.map(stack, forcing)
    )
    np.testing.assert_allclose(np.asarray(batch.gpp[1]), np.asarray(out.gpp), rtol=1e-5, atol=1e-6)

    # gradients w.r.t. the network weights
    @eqx.filter_jit
    @eqx.filter_grad
    def grad(m):
        o = simulate(m, params, pools0, forcing)
        return jnp.sum(o.gpp) + jnp.sum(o.ET)

    g = jax.tree.leaves(grad(model))
    assert g and all(np.all(np.isfinite(np.asarray(x))) for x in g)
    assert sum(float(jnp.sum(jnp.abs(x))) for x in g) > 0


@pytest.fixture(scope="module")
def world():
    return synthesize(8, years=2, seed=0)


@pytest.mark.parametrize("bayesian", [False, True])
def test_nn_paw_process_in_the_numpyro_model(world, bayesian):
    process = get_model("dalec993", water_stress="nn_paw", key=jax.random.key(5))
    data = pack(world, process)[0]
    free = ("canopy_efficiency", "LCMA", "Q10")
    base = world["true_parameters"].isel(site=0)
    fixed = {n: float(base.sel(parameter=n)) for n in process.table.names if n not in free}
    config = ModelConfig(
        network=NetworkConfig(hidden=(8,), bayesian_weights=bayesian), fixed_parameters=fixed
    )
    net = init_prior_net(data.env.shape[1], process, config, key=jax.random.key(0))
    kw = {"process": process, "net": net, "config": config}

    tr = handlers.trace(handlers.seed(hybrid_model, 0)).get_trace(data, **kw)
    assert tr["process_nn$params"]["type"] == "param"
    if bayesian:
        nn_sites = [
            k for k, s in tr.items() if k.startswith("process_nn/") and s["type"] == "sample"
        ]
        assert len(nn_sites) == 4  # two (weight, bias) pairs
    else:
        assert "process_nn_weight_prior" in tr

    if bayesian:
        return  # the SVI step below is the same program; keep the test fast
    guide = AutoNormal(hybrid_model)
    svi = SVI(hybrid_model, guide, optax.adam(1e-2), Trace_ELBO())
    state = svi.init(jax.random.key(1), data, **kw)
    assert "process_nn$params" in svi.get_params(state)
    for _ in range(2):
        state, loss = svi.update(state, data, **kw)
        assert np.isfinite(float(loss))


# --------------------------------------------------------------------------- fit configuration

FREE = ["canopy_efficiency", "LCMA", "f_fol", "Q10"]


def _problem(world, option: str, *, bayesian: bool, guide: str = "site_mvn"):
    from differland_bayes.bayes.fit_problem import build_problem
    from differland_bayes.bayes.fitconfig import FitConfig, config_with
    from differland_bayes.bayes.hybrid_process import build_process

    cfg = config_with(
        FitConfig(),
        {
            "data.site_split": "all",
            "model.water_stress": option,
            "model.free_parameters": FREE,
            "network.hidden": [8],
            "network.bayesian_weights": bayesian,
            "svi.guide": guide,
            "svi.batch_size": 4,
            "svi.lr": 0.02,
            "svi.schedule": "constant",
            "svi.seed": 3,
        },
    )
    process = build_process("dalec993", water_stress=option, seed=cfg.svi.seed)
    return cfg, build_problem(cfg, world, process)


def _weight_sites(process) -> dict:
    """``process_nn/<path>`` -> initial array, as ``random_eqx_module`` names them."""
    return {
        f"process_nn/{jax.tree_util.keystr(path)[1:]}": leaf
        for path, leaf in jax.tree_util.tree_leaves_with_path(_weights(process))
    }


@pytest.mark.parametrize(("option", "n_weights"), [("nn_paw", 31), ("nn_whole", 202)])
def test_bayesian_process_weights_start_at_the_module_initialisation(world, option, n_weights):
    from differland_bayes.bayes.hybrid_process import n_process_weights, process_key

    _, problem = _problem(world, option, bayesian=True)
    process = problem.process
    assert n_process_weights(process) == n_weights
    if option == "nn_whole":  # standardised with the fitted sites' forcing, not 0 / 1
        co2 = np.asarray(problem.data.forcing.co2)
        assert process.canopy.co2_mean == pytest.approx(co2.mean(), rel=1e-5)
        assert process.canopy.co2_sd == pytest.approx(co2.std(), rel=1e-4)
    # the module's own Glorot-normal initialisation from the svi.seed key
    fresh = (NeuralWaterStress if option == "nn_paw" else NeuralCanopy)(key=process_key(3))
    own = process.canopy.water_stress if option == "nn_paw" else process.canopy
    for a, b in zip(jax.tree.leaves(_weights(own)), jax.tree.leaves(_weights(fresh)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    svi = SVI(hybrid_model, problem.guide, optax.adam(1e-2), Trace_ELBO())
    state = svi.init(problem.key, problem.data, **problem.model_kwargs)
    params = svi.get_params(state)
    locs = {
        k[: -len("_auto_loc")]: v
        for k, v in params.items()
        if k.startswith("process_nn/") and k.endswith("_auto_loc")
    }
    assert sum(int(np.size(v)) for v in locs.values()) == n_weights
    initial = _weight_sites(process)
    assert sorted(locs) == sorted(initial)
    for name, value in initial.items():  # the module's values, not prior draws
        np.testing.assert_allclose(np.asarray(locs[name]), np.asarray(value), rtol=1e-6)
    assert params["eps_auto_scale_tril"].shape == (8, len(FREE), len(FREE))


def test_bayesian_nn_paw_fit_improves_the_loss(world):
    from differland_bayes.bayes.svi import fit_svi

    _, problem = _problem(world, "nn_paw", bayesian=True)
    steps = 80
    fit = fit_svi(
        hybrid_model,
        problem.guide,
        key=problem.key,
        num_steps=steps,
        optimizer=problem.optimizer,
        model_args=(problem.data,),
        model_kwargs=problem.model_kwargs,
        progress_bar=False,
    )
    assert np.all(np.isfinite(fit.losses))
    assert fit.losses[-15:].mean() < fit.losses[:15].mean() - 0.05 * abs(fit.losses[:15].mean())
    initial = _weight_sites(problem.process)
    moved = [
        float(np.max(np.abs(np.asarray(fit.params[f"{k}_auto_loc"]) - np.asarray(v))))
        for k, v in initial.items()
    ]
    assert len(moved) == 4 and max(moved) > 1e-3  # the process network is learned


def test_point_nn_paw_predictions_use_the_fitted_process_weights(world):
    from differland_bayes.bayes.hybrid_process import process_from_params
    from differland_bayes.bayes.predict import posterior_predictive, simulate_draws
    from differland_bayes.bayes.svi import fit_svi

    _, problem = _problem(world, "nn_paw", bayesian=False, guide="normal")
    kw = problem.model_kwargs
    fit = fit_svi(
        hybrid_model,
        problem.guide,
        key=problem.key,
        num_steps=30,
        optimizer=problem.optimizer,
        model_args=(problem.data,),
        model_kwargs=kw,
        progress_bar=False,
    )
    fitted = process_from_params(problem.process, fit.best_params)
    moved = [
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for a, b in zip(
            jax.tree.leaves(_weights(fitted)),
            jax.tree.leaves(_weights(problem.process)),
            strict=True,
        )
    ]
    assert max(moved) > 1e-4  # point-estimated weights are learned
    pp = posterior_predictive(
        problem.data,
        process=kw["process"],  # the initial module: the fit's weights must replace it
        net=kw["net"],
        config=kw["config"],
        posterior=fit,
        key=jax.random.key(0),
        num_samples=4,
        return_outputs=("gpp",),
    )
    with_fitted = simulate_draws(fitted, pp["theta"], problem.data.forcing, ["gpp"])["gpp"]
    with_initial = simulate_draws(problem.process, pp["theta"], problem.data.forcing, ["gpp"])
    np.testing.assert_allclose(pp["gpp"], with_fitted, rtol=1e-5, atol=1e-6)
    assert not np.allclose(pp["gpp"], with_initial["gpp"], rtol=1e-4)
