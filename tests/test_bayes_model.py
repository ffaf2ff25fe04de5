"""The hybrid NumPyro model: sites, priors, masks, minibatch scaling, options, SVI."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from numpyro import handlers
from numpyro.handlers import block
from numpyro.infer import SVI, Predictive, Trace_ELBO
from numpyro.infer.autoguide import AutoGuideList, AutoLowRankMultivariateNormal, AutoNormal
from numpyro.infer.util import log_density

from conftest import truth_of_first_site
from differland_bayes.bayes import (
    DETERMINISTIC_SITES,
    LOCAL_PLATES,
    LOCAL_SITES,
    EnvPriorNet,
    LikelihoodConfig,
    ModelConfig,
    NetworkConfig,
    ParameterLayout,
    StreamData,
    check_data,
    hybrid_model,
    init_prior_net,
    initial_values,
    pack,
    site_dims,
    steady_state_edc,
    uninformed_parameters,
)
from differland_bayes.params import ParamInfo, ParamTable
from differland_bayes.process import get_model
from differland_bayes.synthetic import synthesize

FREE = ("canopy_efficiency", "LCMA", "f_fol", "Q10")
STREAMS = ("gpp", "nee", "et", "lai")


@pytest.fixture(scope="module")
def world():
    return synthesize(8, years=2, seed=0)


@pytest.fixture(scope="module")
def data(world, process):
    return pack(world, process)[0]


@pytest.fixture(scope="module")
def fixed(world, process):
    return truth_of_first_site(world, process, FREE)


@pytest.fixture(scope="module")
def config(fixed):
    return ModelConfig(network=NetworkConfig(hidden=(8,)), fixed_parameters=fixed)


def _kwargs(process, config, data, key=0):
    net = init_prior_net(data.env.shape[1], process, config, key=jax.random.key(key))
    return {"process": process, "net": net, "config": config}


def _trace(data, kw, seed=0, **extra):
    return handlers.trace(handlers.seed(hybrid_model, seed)).get_trace(data, **kw, **extra)


def _latents(tr):
    """Values of every latent sample site and param of a trace (for substitution)."""
    return {
        k: s["value"]
        for k, s in tr.items()
        if (s["type"] == "sample" and not s["is_observed"]) or s["type"] == "param"
    }


def _log_lik(tr):
    """Scaled, masked log-likelihood of the observation sites of a trace."""
    total = 0.0
    for k, s in tr.items():
        if s["type"] == "sample" and k.startswith("obs_"):
            lp = s["fn"].log_prob(s["value"])
            if s.get("mask") is not None:
                lp = jnp.where(s["mask"], lp, 0.0)
            total = total + (s["scale"] if s["scale"] is not None else 1.0) * jnp.sum(lp)
    return float(total)


def _joint(data, kw, values, **extra):
    return float(log_density(hybrid_model, (data,), {**kw, **extra}, values)[0])


# -- structure ----------------------------------------------------------------------------
def test_trace_has_the_documented_sites_and_shapes(data, process, config):
    kw = _kwargs(process, config, data)
    tr = _trace(data, kw)
    n, p, t = data.env.shape[0], len(FREE), data.streams["gpp"].value.shape[1]
    assert tr["prior_net$params"]["type"] == "param"
    assert tr["prior_net_weight_prior"]["type"] == "sample"  # a factor
    assert tr["sigma"]["value"].shape == (p,)
    assert tr["eps"]["value"].shape == (n, p)
    for k in ("z_loc", "z"):
        assert tr[k]["type"] == "deterministic" and tr[k]["value"].shape == (n, p)
    assert tr["theta"]["value"].shape == (n, len(process.table))
    for s in STREAMS:
        assert tr[f"obs_{s}"]["is_observed"] and tr[f"obs_{s}"]["value"].shape == (n, t)
    # every stream here has its own uncertainty: no learned noise, no EDC by default
    assert not any(k.startswith("noise_") for k in tr) and "edc" not in tr
    assert {"site", "parameter", "time"} <= {k for k, s in tr.items() if s["type"] == "plate"}
    z = ParameterLayout(process.table, config.fixed_parameters)
    assert z.free_names == tuple(r for r in process.table.names if r in FREE)
    dims = site_dims(data)
    assert dims["eps"] == ["site", "parameter"] and dims["obs_gpp"] == ["site", "time"]


def test_prior_predictive_parameters_are_finite_and_inside_bounds(data, process, config):
    kw = _kwargs(process, config, data)
    draws = Predictive(hybrid_model, num_samples=16)(jax.random.key(1), data, predict=True, **kw)
    z, theta = np.asarray(draws["z"]), np.asarray(draws["theta"])
    assert z.shape == (16, 8, len(FREE)) and np.all(np.isfinite(z))
    process.table.check_physical(theta, what="prior predictive theta")
    for name, value in config.fixed_parameters.items():
        np.testing.assert_allclose(theta[..., process.table.names.index(name)], value, rtol=1e-6)
    assert np.all(np.asarray(draws["sigma"]) > 0)
    for s in STREAMS:
        y = np.asarray(draws[f"obs_{s}"])
        assert y.shape == (16, 8, 24) and np.all(np.isfinite(y))
        assert not np.array_equal(y[0], np.asarray(data.streams[s].value))


def test_masked_observations_do_not_change_the_log_density(data, process, config):
    kw = _kwargs(process, config, data)
    values = _latents(_trace(data, kw))
    streams = {
        k: s._replace(value=jnp.where(s.mask, s.value, s.value + 1e3))
        for k, s in data.streams.items()
    }
    moved = data._replace(streams=streams)
    assert _joint(data, kw, values) == _joint(moved, kw, values)
    # ...while an observed value does change it
    gpp = data.streams["gpp"]
    first = np.argwhere(np.asarray(gpp.mask))[0]
    bumped = gpp._replace(value=gpp.value.at[tuple(first)].add(1.0))
    changed = data._replace(streams={**data.streams, "gpp": bumped})
    assert _joint(changed, kw, values) != _joint(data, kw, values)


def test_minibatch_log_likelihood_is_unbiased(data, process, config):
    kw = _kwargs(process, config, data)
    values = _latents(_trace(data, kw))
    eps = values.pop("eps")
    n, b = data.env.shape[0], 4
    full_tr = handlers.trace(handlers.substitute(hybrid_model, {**values, "eps": eps})).get_trace(
        data, **kw
    )
    full_ll = _log_lik(full_tr)
    full_joint = _joint(data, kw, {**values, "eps": eps})
    order = np.random.default_rng(0).permutation(n)
    batch_ll, batch_joint = [], []
    for idx in np.split(order, n // b):
        sub = {**values, "site": jnp.asarray(idx), "eps": eps[idx]}
        tr = handlers.trace(handlers.substitute(hybrid_model, sub)).get_trace(
            data, subsample_size=b, **kw
        )
        assert tr["obs_gpp"]["scale"] == n / b and tr["eps"]["scale"] == n / b
        assert tr["sigma"]["scale"] is None  # globals are not rescaled
        np.testing.assert_array_equal(tr["site"]["value"], idx)
        batch_ll.append(_log_lik(tr))
        batch_joint.append(_joint(data, kw, sub, subsample_size=b))
    assert math.isclose(np.mean(batch_ll), full_ll, rel_tol=1e-5)
    assert math.isclose(np.mean(batch_joint), full_joint, rel_tol=1e-5)


# -- options ------------------------------------------------------------------------------
def test_point_and_bayesian_weights_give_finite_log_densities(data, process, config):
    kw = _kwargs(process, config, data)
    point = _trace(data, kw)
    lp_point = _joint(data, kw, _latents(point))
    bayes_cfg = replace(config, network=replace(config.network, bayesian_weights=True))
    kwb = _kwargs(process, bayes_cfg, data)
    tr = _trace(data, kwb)
    weights = {k: s for k, s in tr.items() if k.startswith("prior_net/")}
    assert weights and "prior_net_weight_prior" not in tr
    assert all(s["type"] == "sample" and not s["is_observed"] for s in weights.values())
    shapes = {k.split("/", 1)[1]: s["value"].shape for k, s in weights.items()}
    assert shapes["trunk[0].weight"] == (8, data.env.shape[1])
    lp_bayes = _joint(data, kwb, _latents(tr))
    assert np.isfinite(lp_point) and np.isfinite(lp_bayes)
    # the Bayesian network is the one used: other weights, other locations
    assert not np.allclose(tr["z_loc"]["value"], point["z_loc"]["value"])


def test_weight_prior_factor_regularises_the_point_estimate(data, process, config):
    kw = _kwargs(process, config, data)
    values = _latents(_trace(data, kw))
    big = jax.tree.map(lambda a: 3.0 * a, values["prior_net$params"])
    assert _joint(data, kw, {**values, "prior_net$params": big}) != _joint(data, kw, values)


def test_student_t_and_learned_noise_options_run(data, process, config):
    kw = _kwargs(process, config, data)
    values = _latents(_trace(data, kw))
    normal = _joint(data, kw, values)
    t_cfg = replace(config, likelihood=LikelihoodConfig(family="student_t", df=3.0))
    lp_t = _joint(data, {**kw, "config": t_cfg}, values)
    assert np.isfinite(lp_t) and lp_t != normal
    # learned noise: one HalfNormal scale per stream (combined with the data's unc)
    for lik in (
        LikelihoodConfig(add_learned_noise=True),
        LikelihoodConfig(use_data_uncertainty=False),
    ):
        cfg = replace(config, likelihood=lik)
        tr = _trace(data, {**kw, "config": cfg})
        assert {f"noise_{s}" for s in STREAMS} <= set(tr)
        assert tr["noise_gpp"]["value"].shape == ()
        assert np.isfinite(_joint(data, {**kw, "config": cfg}, _latents(tr)))


def test_predicted_scale_multiplies_sigma(data, process, config):
    cfg = replace(config, predict_scale=True)
    kw = _kwargs(process, cfg, data)
    tr = _trace(data, kw)
    # the scale head starts at exactly 1: z = loc + sigma * eps
    expected = tr["z_loc"]["value"] + tr["sigma"]["value"] * tr["eps"]["value"]
    np.testing.assert_allclose(tr["z"]["value"], expected, rtol=1e-5, atol=1e-6)
    assert np.isfinite(_joint(data, kw, _latents(tr)))
    with pytest.raises(ValueError, match="scale head"):
        hybrid_model(data, **{**kw, "config": config})


def test_edc_potential_is_absent_when_off_and_changes_the_density_when_on(data, process, config):
    kw = _kwargs(process, config, data)
    tr = _trace(data, kw)
    values = _latents(tr)
    off = _joint(data, kw, values)
    on_cfg = replace(config, edc_scale=2.0)
    tr_on = handlers.trace(handlers.substitute(hybrid_model, values)).get_trace(
        data, **{**kw, "config": on_cfg}
    )
    assert "edc" in tr_on and "edc" not in tr
    on = _joint(data, {**kw, "config": on_cfg}, values)
    assert on != off
    edc = -np.asarray(tr_on["edc"]["fn"].log_prob(tr_on["edc"]["value"])).sum() / 2.0
    assert edc > 0
    np.testing.assert_allclose(off - on, 2.0 * edc, rtol=1e-4)


def test_steady_state_edc_matches_the_published_value(reference_dir):
    golden = json.loads((reference_dir / "differland-golden-dalec993.json").read_text())
    model = get_model("dalec993")
    out = np.asarray(golden["run24"]["outputs"], np.float32)
    assert golden["run24"]["output_names"] == list(model.Outputs._fields)
    outputs = model.Outputs(*(jnp.asarray(out[:, i]) for i in range(out.shape[1])))
    forcing = model.forcing_from_matrix(np.asarray(golden["run24"]["met"], np.float32))
    pools0 = model.Pools(
        *np.asarray(golden["initial_pools_lab_fol_root_wood_litter_som_water"], np.float32)
    )
    value = steady_state_edc(outputs, pools0, forcing)
    np.testing.assert_allclose(value, golden["run24"]["edc_loss_compute_edc_loss"], rtol=1e-5)


# -- network ------------------------------------------------------------------------------
def test_prior_net_is_deterministic_and_heads_follow_table_order():
    rows = [
        ParamInfo("a", 1.0, 2.0, "1", "a", "process"),
        ParamInfo("b", 1.0, 2.0, "1", "b", "initial_pool"),
        ParamInfo("c", 1.0, 2.0, "1", "c", "process"),
        ParamInfo("d", 1.0, 2.0, "1", "d", "phenology"),
    ]
    table = ParamTable(rows)
    net = EnvPriorNet(3, table, (5,), key=jax.random.key(0))
    same = EnvPriorNet(3, table, (5,), key=jax.random.key(0))
    other = EnvPriorNet(3, table, (5,), key=jax.random.key(1))
    assert eqx.tree_equal(net, same)
    assert not np.allclose(net.heads[0].weight, other.heads[0].weight)
    assert net.groups == ("process", "initial_pool", "phenology")
    x = jnp.array([0.3, -1.0, 2.0])
    # give each head a distinct constant output through its bias
    for j, value in enumerate((10.0, 20.0, 30.0)):
        head = net.heads[j]
        net = eqx.tree_at(
            lambda m, j=j: m.heads[j],
            net,
            eqx.tree_at(lambda h: (h.weight, h.bias), head, (0 * head.weight, head.bias + value)),
        )
    out = net(x)
    np.testing.assert_allclose(out.loc, [10.0, 20.0, 10.0, 30.0])
    assert out.scale is None
    with pytest.raises(ValueError, match="shape \\(3,\\)"):
        net(jnp.zeros((2, 3)))


# -- validation ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: NetworkConfig(hidden=(8, 0)), "NetworkConfig.hidden"),
        (lambda: NetworkConfig(activation="gelu"), "NetworkConfig.activation"),
        (lambda: NetworkConfig(weight_prior_scale=0.0), "NetworkConfig.weight_prior_scale"),
        (lambda: NetworkConfig(scale_floor=1.5), "NetworkConfig.scale_floor"),
        (lambda: LikelihoodConfig(family="laplace"), "LikelihoodConfig.family"),
        (lambda: LikelihoodConfig(df=-1.0), "LikelihoodConfig.df"),
        (lambda: LikelihoodConfig(noise_prior_scale={"gpp": 0}), "noise_prior_scale\\['gpp'\\]"),
        (lambda: ModelConfig(sigma_prior_scale=float("nan")), "ModelConfig.sigma_prior_scale"),
        (lambda: ModelConfig(sigma_floor=-0.1), "ModelConfig.sigma_floor"),
        (lambda: ModelConfig(edc_scale=0.0), "ModelConfig.edc_scale"),
        (lambda: ModelConfig(fixed_parameters={"Q10": "x"}), "fixed_parameters\\['Q10'\\]"),
        (lambda: ModelConfig(predict_scale=1), "ModelConfig.predict_scale"),
    ],
)
def test_config_errors_name_the_field(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_configs_are_hashable_and_fixed_parameters_validated(process):
    a = ModelConfig(fixed_parameters={"Q10": 0.05}, likelihood=LikelihoodConfig())
    b = ModelConfig(fixed_parameters={"Q10": 0.05})
    assert a == b and hash(a) == hash(b) and a.fixed_parameters["Q10"] == 0.05
    assert LikelihoodConfig(noise_prior_scale={"gpp": 3.0}).noise_scale_for("gpp") == 3.0
    assert LikelihoodConfig().noise_scale_for("unknown") == 1.0
    with pytest.raises(ValueError, match="unknown parameter"):
        ParameterLayout(process.table, {"nope": 1.0})
    with pytest.raises(ValueError, match="Q10=5"):
        ParameterLayout(process.table, {"Q10": 5.0})
    with pytest.raises(ValueError, match="nothing left"):
        ParameterLayout(
            process.table, dict(zip(process.table.names, process.table.default, strict=True))
        )


def test_observed_values_without_uncertainty_are_rejected(data, process, config):
    gpp = data.streams["gpp"]
    broken = data._replace(
        streams={**data.streams, "gpp": StreamData(gpp.value, gpp.mask, 0 * gpp.unc)}
    )
    with pytest.raises(ValueError, match="stream 'gpp'"):
        check_data(broken, config)
    check_data(broken, replace(config, likelihood=LikelihoodConfig(add_learned_noise=True)))


# -- inference ----------------------------------------------------------------------------
def test_documented_guide_list_composition_sets_up(data, process, config):
    kw = _kwargs(process, config, data)
    guide = AutoGuideList(hybrid_model)
    hidden = block(hybrid_model, hide=[*LOCAL_SITES, *DETERMINISTIC_SITES])
    guide.append(AutoLowRankMultivariateNormal(hidden, rank=2))
    guide.append(AutoNormal(block(hybrid_model, expose=[*LOCAL_SITES, *LOCAL_PLATES])))
    draw = handlers.seed(guide, 0)(data, subsample_size=4, **kw)
    assert draw["eps"].shape == (4, len(FREE)) and draw["sigma"].shape == (len(FREE),)


def test_svi_with_autonormal_reduces_the_loss(data, process, config):
    kw = _kwargs(process, config, data)
    guide = AutoNormal(hybrid_model)
    svi = SVI(hybrid_model, guide, optax.adam(1e-2), Trace_ELBO())
    result = svi.run(jax.random.key(0), 300, data, subsample_size=4, progress_bar=False, **kw)
    losses = np.asarray(result.losses)
    assert np.all(np.isfinite(losses))
    assert np.mean(losses[-30:]) < np.mean(losses[:30])


def test_uninformed_parameters_and_initial_values(data, process, config):
    names = set(uninformed_parameters(process, data.streams, burned_area=np.zeros(3)))
    assert {"sif_alpha", "sif_beta_plus_three", "p_fol", "p_wood", "IWUE", "dom_cf"} <= names
    with_sif = uninformed_parameters(process, [*data.streams, "sif", "nbe"], burned_area=[0.0])
    assert "sif_alpha" not in with_sif and "dom_cf" not in with_sif
    assert "dom_cf" not in uninformed_parameters(process, data.streams)  # burning unknown
    assert "dom_cf" in uninformed_parameters(get_model("dalec990"), ["gpp"])
    fixed = uninformed_parameters(process, data.streams)
    np.testing.assert_allclose(fixed["IWUE"], process.table["IWUE"].default)
    bayes_cfg = replace(config, network=replace(config.network, bayesian_weights=True))
    kw = _kwargs(process, bayes_cfg, data)
    init = initial_values(kw["net"], bayes_cfg)
    tr = _trace(data, kw)
    assert {k for k in tr if k.startswith("prior_net/")} == {k for k in init if k != "sigma"}
    assert all(init[k].shape == tr[k]["value"].shape for k in init)


def test_make_guide_lowrank_works_with_the_hybrid_model(data, process, config):
    from numpyro.infer import SVI, Trace_ELBO

    from differland_bayes.bayes.svi import make_guide

    kw = _kwargs(process, config, data)
    guide = make_guide(
        hybrid_model, "lowrank", local_sites=LOCAL_SITES, plate=LOCAL_PLATES,
        hidden_sites=DETERMINISTIC_SITES, rank=2,
    )  # fmt: skip
    svi = SVI(hybrid_model, guide, optax.adam(1e-2), Trace_ELBO())
    state = svi.init(jax.random.key(1), data, subsample_size=4, **kw)
    _, loss = svi.update(state, data, subsample_size=4, **kw)
    assert np.isfinite(float(loss))


def test_circular_phases_make_the_likelihood_periodic_in_the_phase_angle(data, process, fixed):
    free = {k: v for k, v in fixed.items() if k != "Bday"}
    lik = {}
    for circular in (True, False):
        config = ModelConfig(network=NetworkConfig(hidden=(8,)), fixed_parameters=free,
                             circular_phases=circular)  # fmt: skip
        kw = _kwargs(process, config, data)
        tr = _trace(data, kw, seed=3)
        values = _latents(tr)
        layout = ParameterLayout.for_config(process.table, config)
        j = layout.free_names.index("Bday")
        assert bool(layout.free_table.periodic[j]) is circular
        shifted = dict(values)
        # one full turn of the phase angle z = z_loc + sigma * eps
        shifted["eps"] = values["eps"].at[:, j].add(2.0 * np.pi / values["sigma"][j])
        tr2 = handlers.trace(handlers.substitute(hybrid_model, shifted)).get_trace(data, **kw)
        theta = np.asarray(tr2["theta"]["value"][:, process.table.names.index("Bday")])
        if circular:
            assert np.all((theta >= 730.5 - 182.625) & (theta < 730.5 + 182.625))
        lik[circular] = (_log_lik(tr), _log_lik(tr2))
    np.testing.assert_allclose(lik[True][1], lik[True][0], rtol=1e-5)
    assert abs(lik[False][1] - lik[False][0]) > 1.0  # the bounded transform is not periodic
