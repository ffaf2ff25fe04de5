"""Trait–environment analyses on constructed worlds with a known answer (no fitting).

Posterior-like draws are ``truth + noise``; the analyses must recover the planted
slopes, variance shares, latent axis, driver ranking, equifinal pair and contraction.
One test restores a tiny real fit for :func:`network_prior_mean`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure

from differland_bayes.analysis.attribution import (
    permutation_importance,
    permutation_importance_network,
)
from differland_bayes.analysis.equifinality import contraction, posterior_correlation
from differland_bayes.analysis.latent import latent_axes
from differland_bayes.analysis.partial_dependence import (
    partial_dependence,
    partial_dependence_network,
)
from differland_bayes.analysis.trait_network import (
    network_prior_draws,
    network_prior_mean,
)
from differland_bayes.analysis.traits_plots import (
    plot_contraction,
    plot_correlation,
    plot_importance,
    plot_latent_axes,
    plot_partial_dependence,
    plot_variance_partition,
)
from differland_bayes.analysis.variance import variance_partition

CLASSES = np.array(["DBF", "ENF", "GRA"])


def _world(
    n: int = 150,
    draws: int = 200,
    *,
    slope: float = 0.8,
    class_effect: float = 1.0,
    site_sd: float = 0.05,
    post_sd: float = 0.3,
    seed: int = 0,
):
    """log theta_a = 1 + slope * x1 + class effect + noise; b: class only; c: nothing.

    Classes are balanced and ``x1`` is centred within each class, so the class and the
    environment are exactly uncorrelated (no chance overlap).
    """
    rng = np.random.default_rng(seed)
    labels = CLASSES[np.arange(n) % 3]
    x = rng.normal(size=(n, 3)) * [2.0, 1.0, 5.0] + [10.0, 0.0, 50.0]
    for c in CLASSES:
        m = labels == c
        x[m, 0] += 10.0 - x[m, 0].mean()
    effect = dict(zip(CLASSES, [-class_effect, 0.0, class_effect], strict=True))
    c = np.array([effect[k] for k in labels])
    truth = np.stack(
        [
            1.0 + slope * (x[:, 0] - 10.0) + c + site_sd * rng.normal(size=n),
            0.5 * c + site_sd * rng.normal(size=n),
            0.3 * rng.normal(size=n),
        ],
        axis=1,
    )
    sites = [f"s{i:03d}" for i in range(n)]
    log_theta = truth[None] + post_sd * rng.normal(size=(draws, n, 3))
    theta = xr.DataArray(
        np.exp(log_theta),
        dims=("sample", "site", "parameter"),
        coords={
            "site": sites,
            "parameter": ["a", "b", "c"],
            "parameter_units": ("parameter", ["gC m-2", "d", "1"]),
        },
    )
    env = xr.DataArray(
        x,
        dims=("site", "feature"),
        coords={
            "site": sites,
            "feature": ["mat", "map", "age"],
            "feature_units": ("feature", ["degC", "mm yr-1", "yr"]),
        },
    )
    return theta, env, labels


@pytest.fixture(scope="module")
def world():
    return _world()


# --------------------------------------------------------------------------- partial dependence


def test_partial_dependence_recovers_the_slope_within_its_band(world):
    theta, env, labels = world
    ds = partial_dependence(theta, env, labels, grid_size=10)
    s = ds.sel(parameter="a", feature="mat")
    assert float(s.slope_lower) <= 0.8 <= float(s.slope_upper)
    assert float(s.slope_upper - s.slope_lower) < 0.1
    unrelated = ds.sel(parameter="a", feature="map")
    assert float(unrelated.slope_lower) <= 0.0 <= float(unrelated.slope_upper)
    level = ds.class_level_mean.sel(parameter="a")
    ratio = np.log(level.values / level.sel({"class": "ENF"}).values)  # class effects -1, 0, 1
    np.testing.assert_allclose(ratio, [-1.0, 0.0, 1.0], atol=0.1)
    # curves in physical units, per class shifted by the class effect (additive model)
    assert ds.pd_mean.attrs["units"] == "parameter_units"
    assert ds.pd_class_mean.dims == ("class", "parameter", "feature", "grid")
    assert np.all(ds.pd_lower <= ds.pd_mean) and np.all(ds.pd_mean <= ds.pd_upper)
    assert list(ds["class"].values) == list(CLASSES) and int(ds.class_sites.sum()) == 150


def test_partial_dependence_of_a_known_network():
    rng = np.random.default_rng(1)
    n = 60
    raw = np.column_stack([rng.normal(10, 2, n), rng.normal(0, 1, n)])
    labels = CLASSES[np.arange(n) % 3]
    onehot = (labels[:, None] == CLASSES[None, :]).astype(float)
    x_all = np.column_stack([raw, onehot])
    mean, sd = x_all.mean(axis=0), x_all.std(axis=0)
    slopes = [0.7, 0.8, 0.9]  # one per weight draw

    def prior_mean(x_std, draw):
        x = x_std * sd + mean
        log_a = 0.1 + slopes[draw] * x[:, 0] + 0.5 * x[:, 4]  # class GRA + 0.5
        return np.exp(np.column_stack([log_a, np.full(len(x), 0.2)]))

    env = xr.DataArray(
        x_all, dims=("site", "feature"),
        coords={"feature": ["mat", "map", *(f"vegetation_class={c}" for c in CLASSES)]},
    )  # fmt: skip
    ds = partial_dependence_network(
        prior_mean, env, num_draws=3, env_mean=mean, env_sd=sd, parameter_names=["a", "b"]
    )
    s = ds.sel(parameter="a")
    np.testing.assert_allclose(s.slope_mean.sel(feature="mat"), 0.8, atol=1e-6)
    assert (
        float(s.slope_lower.sel(feature="mat"))
        < 0.75
        < 0.85
        < float(s.slope_upper.sel(feature="mat"))
    )
    np.testing.assert_allclose(s.slope_mean.sel(feature="map"), 0.0, atol=1e-9)
    lev = np.log(s.class_level_mean.values)
    np.testing.assert_allclose(lev[2] - lev[0], 0.5, atol=1e-6)
    assert list(ds.feature.values) == ["mat", "map"]


# --------------------------------------------------------------------------- variance


def test_variance_partition_recovers_known_shares():
    # class share 0: the class plays no part
    theta, env, labels = _world(class_effect=0.0, post_sd=0.1, seed=2)
    ds = variance_partition(theta.sel(parameter=["a"]), env, labels)
    a = ds.sel(parameter="a")
    assert float(a.fraction_lower.sel(component="vegetation class")) <= 0.01
    assert float(a.class_share_upper) < 0.05 and float(a.p_class_below_half) == 1.0
    # class share ~1: parameter b follows the class alone
    theta1, env1, labels1 = _world(class_effect=1.0, post_sd=0.05, seed=3)
    b = variance_partition(theta1.sel(parameter=["b"]), env1, labels1).sel(parameter="b")
    assert float(b.class_share_lower) > 0.95 and float(b.p_class_below_half) == 0.0
    # known mixture: var(class) = 2/3, var(env) = 0.8^2 * 4 = 2.56, var(site) ~ 0.05^2
    theta2, env2, labels2 = _world(n=300, post_sd=0.2, seed=4)
    m = variance_partition(theta2, env2, labels2).sel(parameter="a")
    y = np.log(theta2.sel(parameter="a").values)
    total = y.var(axis=1).mean()
    x = env2.sel(feature="mat").values
    effect = {"DBF": -1.0, "ENF": 0.0, "GRA": 1.0}
    v_class = np.var([effect[k] for k in labels2])
    v_env = 0.8**2 * x.var()
    for comp, expected in (("vegetation class", v_class / total), ("environment", v_env / total)):
        lo = float(m.fraction_lower.sel(component=comp))
        hi = float(m.fraction_upper.sel(component=comp))
        assert lo - 0.02 <= expected <= hi + 0.02, (comp, lo, expected, hi)
    assert abs(float(m.fraction_mean.sel(component="shared"))) < 0.02
    assert 0.0 <= float(m.p_class_below_half) <= 1.0
    np.testing.assert_allclose(m.fraction_mean.sum("component"), 1.0, atol=1e-9)


# --------------------------------------------------------------------------- latent axes


def test_latent_axes_recover_a_planted_axis_with_consistent_signs():
    rng = np.random.default_rng(5)
    n, d = 120, 150
    factor = rng.normal(size=n)
    load = np.array([1.0, 0.8, -0.9, 0.0, 0.0])
    truth = factor[:, None] * load + 0.3 * rng.normal(size=(n, 5))
    draws = truth[None] + 0.3 * rng.normal(size=(d, n, 5))
    theta = xr.DataArray(draws, dims=("sample", "site", "parameter"),
                         coords={"parameter": list("abcde")})  # fmt: skip
    env = xr.DataArray(
        np.column_stack([factor + 0.2 * rng.normal(size=n), rng.normal(size=n)]),
        dims=("site", "feature"), coords={"feature": ["driver", "noise"]},
    )  # fmt: skip
    ds = latent_axes(theta, env, n_axes=2, scale="linear")
    first = ds.loading_mean.sel(axis=1).values
    cos = abs(first @ load) / (np.linalg.norm(first) * np.linalg.norm(load))
    assert cos > 0.95
    assert float(ds.alignment_min.sel(axis=1)) > 0.9
    p_pos = ds.p_loading_positive.sel(axis=1).values
    assert set(np.round(p_pos[:3], 6)) <= {0.0, 1.0}  # same sign in every draw
    assert p_pos[0] == p_pos[1] != p_pos[2]
    r = ds.env_correlation_mean.sel(axis=1)
    assert abs(float(r.sel(feature="driver"))) > 0.85 and abs(float(r.sel(feature="noise"))) < 0.2
    assert float(ds.explained_mean.sel(axis=1)) > float(ds.explained_mean.sel(axis=2))


# --------------------------------------------------------------------------- attribution


def test_permutation_importance_ranks_the_true_driver_first(world):
    theta, env, labels = world
    ds = permutation_importance(theta, env, labels, n_repeats=3)
    a = ds.sel(parameter="a")
    assert float(a.p_most_important.sel(feature="mat")) == 1.0
    assert float(a.importance_upper.sel(feature="map")) < 0.02
    assert float(ds.sel(parameter="b").p_most_important.sel(feature="vegetation_class")) == 1.0
    assert list(ds.feature.values) == ["mat", "map", "age", "vegetation_class"]

    def prior_mean(x_std, draw):
        return np.exp(np.column_stack([(1.0 + 0.1 * draw) * x_std[:, 0], 0.3 * x_std[:, 2]]))

    net = permutation_importance_network(
        prior_mean, env, num_draws=2, env_mean=[10, 0, 50], env_sd=[2, 1, 5], n_repeats=2
    )
    assert float(net.sel(parameter="p0").p_most_important.sel(feature="mat")) == 1.0
    np.testing.assert_allclose(net.importance_mean.sel(parameter="p0", feature="map"), 0.0)
    assert float(net.importance_mean.sel(parameter="p0", feature="mat")) > 0.8


# --------------------------------------------------------------------------- equifinality


def test_equifinality_flags_a_planted_pair_and_contraction_spans_zero_to_one():
    rng = np.random.default_rng(6)
    d, n = 400, 15
    cov = np.eye(3)
    cov[0, 1] = cov[1, 0] = -0.9
    z = rng.multivariate_normal(np.zeros(3), cov, size=(d, n))
    theta = xr.DataArray(np.exp(z), dims=("sample", "site", "parameter"),
                         coords={"parameter": ["a", "b", "c"]})  # fmt: skip
    ds = posterior_correlation(theta)
    assert ds.flagged.sel(parameter="a", parameter_2="b") == 1
    assert int(ds.flagged.sum()) == 2  # (a, b) and (b, a) only
    assert float(ds.r_median.sel(parameter="a", parameter_2="b")) < -0.8
    assert "a~b" in ds.attrs["flagged_pairs"]

    prior = np.exp(rng.normal(size=(600, 3)))
    post = np.exp(np.stack([rng.normal(size=(d, n)), 0.05 * rng.normal(size=(d, n)),
                            rng.normal(size=(d, n))], axis=-1))  # fmt: skip
    c = contraction(xr.DataArray(post, dims=("sample", "site", "parameter"),
                                 coords={"parameter": ["a", "b", "c"]}), prior)  # fmt: skip
    assert abs(float(c.contraction_median.sel(parameter="a"))) < 0.15
    assert float(c.contraction_lower.sel(parameter="b")) > 0.99
    assert c.contraction_site.shape == (n, 3)


# --------------------------------------------------------------------------- checks and plots


def test_inputs_are_checked_with_clear_messages(world):
    theta, env, labels = world
    with pytest.raises(ValueError, match=r"theta: expected dims \(sample, site, parameter\)"):
        partial_dependence(theta.rename(sample="draws"), env, labels)
    with pytest.raises(ValueError, match="env: expected 150 sites"):
        variance_partition(theta, env.isel(site=slice(0, 10)), labels)
    with pytest.raises(ValueError, match="scale='log' expects positive values"):
        latent_axes(np.log(theta), scale="log")
    with pytest.raises(ValueError, match="prob: expected a number in"):
        permutation_importance(theta, env, labels, prob=1.5)
    with pytest.raises(ValueError, match="vegetation_class: expected one label per site"):
        partial_dependence(theta, env, labels[:5])
    with pytest.raises(ValueError, match="features: unknown"):
        partial_dependence(theta, env, labels, features=["nope"])


def test_plots_return_figures_with_units(tmp_path: Path):
    theta, env, labels = _world(n=45, draws=30)
    figs = [
        plot_partial_dependence(
            partial_dependence(theta, env, labels, grid_size=5), by_class=True, parameters=["a"]
        ),  # fmt: skip
        plot_variance_partition(variance_partition(theta, env, labels)),
        plot_latent_axes(latent_axes(theta, env, labels, n_axes=2), vegetation_class=labels),
        plot_importance(permutation_importance(theta, env, labels, n_repeats=1)),
        plot_correlation(posterior_correlation(theta)),
        plot_contraction(contraction(theta, theta.isel(sample=slice(0, 20)))),
    ]
    assert all(isinstance(f, Figure) for f in figs)
    labels_pd = [ax.get_xlabel() + ax.get_ylabel() for ax in figs[0].axes]
    assert any("[degC]" in t for t in labels_pd) and any("a [gC m-2]" in t for t in labels_pd)
    assert "[1]" in figs[1].axes[0].get_xlabel()
    for i, f in enumerate(figs):
        f.savefig(tmp_path / f"{i}.png", dpi=40)


# --------------------------------------------------------------------------- restored fits

FREE = ["canopy_efficiency", "LCMA", "f_fol", "Q10"]


def _restored(*, bayesian: bool, guide: str = "normal", scale_head: bool = False):
    """A RestoredFit built in memory as restore_fit would (no fitting, no files)."""
    import equinox as eqx
    import jax

    from differland_bayes.bayes.config import ModelConfig, NetworkConfig
    from differland_bayes.bayes.fit_restore import RestoredFit
    from differland_bayes.bayes.fitconfig import FitConfig, config_with
    from differland_bayes.bayes.model import init_prior_net
    from differland_bayes.process.registry import get_model

    process = get_model("dalec993")
    table = process.table
    fixed = {n: float(table[n].default) for n in table.names if n not in FREE}
    mc = ModelConfig(
        network=NetworkConfig(hidden=(4,), bayesian_weights=bayesian),
        fixed_parameters=fixed, predict_scale=scale_head,
    )  # fmt: skip
    features = ["mat", "map", "vegetation_class=DBF", "vegetation_class=ENF"]
    net = init_prior_net(len(features), process, mc, key=jax.random.key(0))
    # guide parameters under NumPyro's autoguide names (<site>_auto_loc / _auto_scale)
    params = {"sigma_auto_loc": np.log(np.full(4, 0.3)), "sigma_auto_scale": np.full(4, 0.05)}
    if bayesian:
        arrays = eqx.filter(net, eqx.is_inexact_array)
        for path, leaf in jax.tree_util.tree_leaves_with_path(arrays):
            name = f"prior_net/{jax.tree_util.keystr(path)[1:]}"
            params[f"{name}_auto_loc"] = np.asarray(leaf)
            params[f"{name}_auto_scale"] = np.full(leaf.shape, 0.2)
    meta = {
        "features": features, "env_mean": [10.0, 800.0, 0.5, 0.5],
        "env_sd": [5.0, 300.0, 0.5, 0.5], "classes": ["DBF", "ENF"],
    }  # fmt: skip
    cfg = config_with(FitConfig(), {"svi.guide": guide})
    return RestoredFit(Path("in-memory"), cfg, meta, process, mc, net, params, None)


def _sites(n: int = 12):
    rng = np.random.default_rng(7)
    env = xr.DataArray(
        np.column_stack([rng.normal(10, 5, n), rng.normal(800, 300, n)]),
        dims=("site", "feature"),
        coords={"site": [f"s{i}" for i in range(n)], "feature": ["mat", "map"],
                "feature_units": ("feature", ["degC", "mm yr-1"])},
    )  # fmt: skip
    return env, np.array(["DBF", "ENF", "GRA"])[np.arange(n) % 3]


def test_network_prior_mean_bayesian_weights_one_network_per_draw():
    fit = _restored(bayesian=True)
    env, labels = _sites()
    pm = network_prior_mean(fit, num_draws=5, seed=0)
    assert pm.num_draws == 5 and set(pm.parameters) == set(FREE) and pm.sigma.shape == (5, 4)
    x = pm.standardise(pm.encode(env, labels))
    np.testing.assert_allclose(x[:, 2], (np.asarray(labels) == "DBF") * 2.0 - 1.0)  # one-hot
    values = np.stack([pm(x, d) for d in range(5)])
    assert np.all((values > pm.table.lower) & (values < pm.table.upper))
    assert not np.allclose(values[0], values[1])  # weight draws differ
    again = network_prior_mean(fit, num_draws=5, seed=0)
    np.testing.assert_array_equal(again(x, 3), values[3])  # seeded
    z = network_prior_mean(fit, num_draws=5, seed=0, units="unconstrained")
    np.testing.assert_allclose(pm.table.to_physical(z(x, 2)), values[2], rtol=1e-5)
    assert z.parameter_units == ("1",) * 4
    prior = network_prior_draws(pm, env, labels, num_samples=40, seed=1)
    assert prior.dims == ("sample", "site", "parameter") and prior.sizes["site"] == 12
    pd_net = partial_dependence_network(pm, env, labels, grid_size=4)
    assert pd_net.attrs["n_draws"] == 5 and np.all(np.isfinite(pd_net.pd_mean.values))
    assert list(pd_net["class"].values) == ["DBF", "ENF", "GRA"]
    imp = permutation_importance_network(pm, env, labels, n_repeats=1)
    assert list(imp.feature.values) == ["mat", "map", "vegetation_class"]
    with pytest.raises(ValueError, match="the network needs predictors"):
        pm.encode(env)  # no classes
    with pytest.raises(ValueError, match="draw: expected 0 <= draw < 5"):
        pm(x, 5)


def test_network_prior_mean_point_weights_and_guides():
    pm = network_prior_mean(_restored(bayesian=False), num_draws=3)
    assert pm.num_draws == 1 and pm.sigma.shape == (3, 4)
    delta = _restored(bayesian=True, guide="delta")
    for key in [k for k in delta.params if k.endswith("_auto_scale")]:
        del delta.params[key]  # AutoDelta stores locations only, constrained
    delta.params["sigma_auto_loc"] = np.full(4, 0.3)
    assert network_prior_mean(delta, num_draws=3).num_draws == 1
    lowrank = _restored(bayesian=True, guide="lowrank")
    lowrank.params.clear()  # a low-rank guide stores one flat vector of the globals
    lowrank.params.update({"auto_loc": np.zeros(3), "eps_auto_loc": np.zeros((12, 4))})
    with pytest.raises(ValueError, match="ds: the .lowrank. guide.s global draws need tracing"):
        network_prior_mean(lowrank, num_draws=2)
    env, labels = _sites()
    head = network_prior_mean(_restored(bayesian=False, scale_head=True), num_draws=2)
    draws = head.prior_draws(head.standardise(head.encode(env, labels)), 6)
    assert draws.shape == (6, 12, 4) and np.all(np.isfinite(draws))


@pytest.mark.slow
def test_network_prior_mean_of_a_real_tiny_fit(tmp_path: Path):
    """The guide's stored parameter names are those a real fit writes."""
    from differland_bayes.bayes.fit_restore import restore_fit
    from differland_bayes.bayes.fitconfig import config_to_toml, config_with, load_config
    from differland_bayes.cli import main

    cfg = config_with(
        load_config(Path(__file__).resolve().parents[1] / "examples/configs/synthetic.toml"),
        {
            "data.synthetic.sites": 4, "data.synthetic.years": 2,
            "data.synthetic.free_parameters": FREE, "model.free_parameters": FREE,
            "data.site_split": "all", "data.holdout_fraction": 0.0,
            "network.hidden": [4], "network.bayesian_weights": True,
            "svi.warmup": 0, "svi.checkpoint_every": 0,
        },
    )  # fmt: skip
    (tmp_path / "tiny.toml").write_text(config_to_toml(cfg), encoding="utf-8")
    run = tmp_path / "run"
    assert main(["-q", "fit", str(tmp_path / "tiny.toml"), "--out", str(run),
                 "--steps", "1", "--no-progress"]) == 0  # fmt: skip
    pm = network_prior_mean(restore_fit(run), num_draws=3, seed=0)
    assert pm.num_draws == 3 and set(pm.parameters) == set(FREE)
    x = np.zeros((2, len(pm.features)))
    assert not np.allclose(pm(x, 0), pm(x, 1))
