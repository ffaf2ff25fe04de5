"""The seasonal model discrepancy (``[likelihood] discrepancy``): arithmetic, program,
warm start, recovery on synthetic data, and the fit -> predict -> report chain."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import xarray as xr
from numpyro import handlers
from numpyro.infer import SVI, Predictive, Trace_ELBO

from conftest import REPO, truth_of_first_site
from differland_bayes.bayes import (
    DETERMINISTIC_SITES,
    LOCAL_PLATES,
    LOCAL_SITES,
    LikelihoodConfig,
    ModelConfig,
    NetworkConfig,
    hybrid_model,
    init_prior_net,
    pack,
)
from differland_bayes.bayes.discrepancy import MONTHS, apply_discrepancy, calendar_month
from differland_bayes.bayes.guides import make_guide
from differland_bayes.bayes.warmstart import _empirical_bayes_point
from differland_bayes.synthetic import synthesize

FREE = ("canopy_efficiency", "Q10")
DISC = ("nee", "et")


@pytest.fixture(scope="module")
def world():
    """Only the ``FREE`` parameters vary between sites: the others are the same everywhere."""
    return synthesize(8, years=2, seed=0, free_parameters=list(FREE))


@pytest.fixture(scope="module")
def data(world, process):
    return pack(world, process)[0]


@pytest.fixture(scope="module")
def fixed(world, process):
    return truth_of_first_site(world, process, FREE)


def _config(fixed, streams=DISC, **lik):
    return ModelConfig(
        network=NetworkConfig(hidden=(8,)),
        fixed_parameters=fixed,
        likelihood=LikelihoodConfig(discrepancy=tuple(streams), **lik),
    )


def _kw(process, config, data):
    net = init_prior_net(data.env.shape[1], process, config, key=jax.random.key(0))
    return {"process": process, "net": net, "config": config}


def _trace(data, kw, values=None, seed=0, **extra):
    model = handlers.seed(hybrid_model, seed)
    if values is not None:
        model = handlers.substitute(model, values)
    return handlers.trace(model).get_trace(data, **kw, **extra)


def _obs_loc(tr, stream):
    return np.asarray(tr[f"obs_{stream}"]["fn"].base_dist.loc)


# -- arithmetic ----------------------------------------------------------------------------
def test_calendar_month_of_dates():
    t = np.array(["2001-01-01", "2001-02-15", "2003-12-31", "2004-02-29"], dtype="datetime64[ns]")
    np.testing.assert_array_equal(calendar_month(t), [0, 1, 11, 1])


def test_apply_discrepancy_identities():
    rng = np.random.default_rng(0)
    month = jnp.asarray(np.arange(36) % 12)
    pred = jnp.asarray(rng.normal(size=(3, 36)))
    zero = jnp.zeros((3, MONTHS))
    # rho = 1, delta = 0: the model as it is
    np.testing.assert_allclose(apply_discrepancy(pred, zero, 1.0, month), pred, atol=1e-5)
    # rho = 0: each calendar month is the model's mean of that month, every year
    cycle = np.asarray(apply_discrepancy(pred, zero, 0.0, month))
    expect = np.asarray(pred).reshape(3, 3, 12).mean(axis=1)
    for year in range(3):
        np.testing.assert_allclose(cycle[:, 12 * year : 12 * (year + 1)], expect, atol=1e-5)
    # delta shifts every step of its calendar month by its value
    delta = jnp.asarray(rng.normal(size=(3, MONTHS)))
    shifted = np.asarray(apply_discrepancy(pred, delta, 0.7, month))
    base = np.asarray(apply_discrepancy(pred, zero, 0.7, month))
    np.testing.assert_allclose(shifted - base, np.asarray(delta)[:, np.asarray(month)], atol=1e-5)
    # the anomaly is scaled by rho around the model's own cycle
    np.testing.assert_allclose(base - cycle, 0.7 * (np.asarray(pred) - cycle), atol=1e-5)


# -- the program ---------------------------------------------------------------------------
def test_discrepancy_sites_and_their_effect_on_the_likelihood(data, process, fixed):
    config = _config(fixed)
    kw = _kw(process, config, data)
    tr = _trace(data, kw)
    n = data.env.shape[0]
    assert tr["discrepancy_sd"]["value"].shape == (len(DISC),)
    assert tr["discrepancy_rho"]["value"].shape == (len(DISC),)
    assert tr["discrepancy_eps"]["value"].shape == (n, len(DISC) * MONTHS)
    assert tr["discrepancy"]["value"].shape == (n, len(DISC) * MONTHS)
    assert "discrepancy_eps" in LOCAL_SITES and "discrepancy" in DETERMINISTIC_SITES
    assert "stream_month" in LOCAL_PLATES and "stream_month" in tr

    # rho = 1 and delta = 0 reproduce the model without a discrepancy
    plain = ModelConfig(network=config.network, fixed_parameters=fixed)
    base = _trace(data, _kw(process, plain, data), seed=1)
    values = {k: base[k]["value"] for k in base if k == "sigma" or k.startswith(("eps", "noise_"))}
    neutral = {
        **values,
        "discrepancy_rho": jnp.ones(len(DISC)),
        "discrepancy_eps": jnp.zeros((n, len(DISC) * MONTHS)),
    }
    tr0 = _trace(data, kw, neutral)
    for s in data.streams:
        # float32 round-off of fbar + (f - fbar)
        np.testing.assert_allclose(_obs_loc(tr0, s), _obs_loc(base, s), rtol=1e-5, atol=1e-6)
    # a discrepancy in July of the ET stream moves ET's July predictions only
    eta = np.zeros((n, len(DISC) * MONTHS))
    eta[:, DISC.index("et") * MONTHS + 6] = 1.0
    tau = np.asarray(tr0["discrepancy_sd"]["value"])[DISC.index("et")]
    tr1 = _trace(data, kw, {**neutral, "discrepancy_eps": jnp.asarray(eta)})
    month = np.asarray(data.month)
    diff = _obs_loc(tr1, "et") - _obs_loc(tr0, "et")
    np.testing.assert_allclose(diff[:, month == 6], tau, rtol=1e-6)
    np.testing.assert_allclose(diff[:, month != 6], 0.0, atol=1e-6)
    for s in ("gpp", "nee", "lai"):
        np.testing.assert_array_equal(_obs_loc(tr1, s), _obs_loc(tr0, s))


def test_minibatches_scale_the_discrepancy_residuals(data, process, fixed):
    config = _config(fixed)
    kw = _kw(process, config, data)
    tr = _trace(data, kw, subsample_size=4)
    n = data.env.shape[0]
    assert tr["discrepancy_eps"]["value"].shape == (4, len(DISC) * MONTHS)
    assert tr["discrepancy_eps"]["scale"] == n / 4
    assert tr["discrepancy_sd"]["scale"] is None


def test_missing_months_and_bad_settings_are_refused(data, process, fixed):
    config = _config(fixed)
    kw = _kw(process, config, data)
    with pytest.raises(ValueError, match="data.month"):
        _trace(data._replace(month=None), kw)
    with pytest.raises(ValueError, match="discrepancy: expected distinct"):
        LikelihoodConfig(discrepancy=("nee", "nee"))
    with pytest.raises(ValueError, match="discrepancy: expected a tuple"):
        LikelihoodConfig(discrepancy="nee")
    with pytest.raises(ValueError, match=r"discrepancy_prior_scale\['nee'\]"):
        LikelihoodConfig(discrepancy=("nee",), discrepancy_prior_scale={"nee": -1.0})
    assert LikelihoodConfig(discrepancy=("nee",)).discrepancy_scale_for("nee") == 1.0


@pytest.mark.parametrize("kind", ["normal", "lowrank", "site_mvn"])
def test_guides_with_local_discrepancy_take_minibatch_steps(data, process, fixed, kind):
    config = _config(fixed)
    kw = _kw(process, config, data)
    rank = None if kind == "normal" else 2
    guide = make_guide(hybrid_model, kind, local_sites=LOCAL_SITES, plate=LOCAL_PLATES,
                       hidden_sites=DETERMINISTIC_SITES, rank=rank)  # fmt: skip
    svi = SVI(hybrid_model, guide, optax.adam(1e-2), Trace_ELBO())
    state = svi.init(jax.random.key(0), data, subsample_size=4, **kw)
    for _ in range(3):
        state, loss = svi.update(state, data, subsample_size=4, **kw)
    assert math.isfinite(float(loss))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="subsample_size does not match")
        every_site = handlers.substitute(guide, data={"site": jnp.arange(data.env.shape[0])})
        draws = Predictive(every_site, params=svi.get_params(state), num_samples=2)(
            jax.random.key(1), data, **kw
        )
    assert draws["discrepancy_eps"].shape == (2, data.env.shape[0], len(DISC) * MONTHS)


def test_empirical_bayes_keeps_every_delta_and_standardises_eta(fixed):
    config = _config(fixed)
    rng = np.random.default_rng(2)
    n, k = 10, len(DISC)
    point = {
        "sigma": jnp.asarray([0.5, 0.2]),
        "eps": jnp.asarray(rng.normal(size=(n, 2)) * 0.3),
        "discrepancy_sd": jnp.asarray([2.0, 0.5]),
        # eta of the two streams with very different spreads
        "discrepancy_eps": jnp.asarray(
            rng.normal(size=(n, k * MONTHS)) * ([0.1] * MONTHS + [3.0] * MONTHS)
        ),
    }
    out = _empirical_bayes_point(point, config, lower=jnp.asarray(1e-3))

    def delta(p):
        eta = np.asarray(p["discrepancy_eps"]).reshape(n, k, MONTHS)
        return eta * np.asarray(p["discrepancy_sd"])[:, None]

    np.testing.assert_allclose(delta(out), delta(point), rtol=1e-6)
    eta = np.asarray(out["discrepancy_eps"]).reshape(n, k, MONTHS)
    np.testing.assert_allclose(np.sqrt(np.mean(eta**2, axis=(0, 2))), 1.0, rtol=1e-6)
    z = np.asarray(point["sigma"]) * np.asarray(point["eps"])
    np.testing.assert_allclose(np.asarray(out["sigma"]) * np.asarray(out["eps"]), z, rtol=1e-6)


# -- recovery ------------------------------------------------------------------------------
def test_a_known_seasonal_discrepancy_is_recovered(world, process, fixed):
    """NEE observations = model NEE + a known per-site monthly offset: the fit finds it.

    The other streams are the model's own; parameters are fixed but two. The recovered
    discrepancy of every observed site-month must correlate with the truth (r >= 0.9),
    and rho (the share of the model's anomaly kept) stay near 1, since the observed
    anomalies are the model's.
    """
    n = world.sizes["site"]
    rng = np.random.default_rng(5)
    # about 1.7 observations per site and calendar month (every month, 70 % observed)
    # with sd 0.5 noise: the offsets (sd 1.5) are well above the noise of their estimate
    truth = rng.normal(0.0, 1.5, size=(n, MONTHS))
    month = calendar_month(world["time"].values)
    obs = world.copy()
    obs["nee"] = world["nee"] + xr.DataArray(truth[:, month], dims=("site", "time"))
    data = pack(obs, process, streams=["gpp", "nee", "et"], split=None)[0]
    config = _config(fixed, streams=("nee",), discrepancy_prior_scale={"nee": 1.0})
    kw = _kw(process, config, data)
    guide = make_guide(hybrid_model, "delta")
    svi = SVI(hybrid_model, guide, optax.adam(0.03), Trace_ELBO())
    result = svi.run(jax.random.key(0), 1500, data, progress_bar=False, **kw)
    point = guide.median(result.params)
    found = np.asarray(point["discrepancy_eps"]) * np.asarray(point["discrepancy_sd"])[0]
    mask = np.asarray(data.streams["nee"].mask)
    month_obs = np.stack([mask[:, month == m].any(axis=1) for m in range(MONTHS)], axis=1)
    assert month_obs.mean() > 0.8
    # where a site's calendar month was observed at least once
    r = np.corrcoef(found[month_obs], truth[month_obs])[0, 1]
    assert r >= 0.9, r
    assert float(point["discrepancy_rho"][0]) > 0.8


# -- fit -> predict -> report ----------------------------------------------------------------
def test_fit_predict_and_report_carry_the_discrepancy(tmp_path: Path):
    """With the environment mean, whose run carries every discrepancy site (the zero mean's
    are a subset; its program, guides and recovery are tested above), and NEE noise that
    grows with the flux (``relative_noise``, tested in ``test_relative_noise``)."""
    from differland_bayes.analysis.datatree_io import read_datatree
    from differland_bayes.bayes.fitconfig import config_to_toml, config_with, load_config
    from differland_bayes.cli import main
    from differland_bayes.dataset import read_dataset, write_dataset
    from test_predict_cli import FREE as CLI_FREE
    from test_predict_cli import STREAM_NAMES, TINY

    extra = {"likelihood.discrepancy": list(DISC), "likelihood.discrepancy_mean": "environment",
             "svi.map_steps": 30, "svi.map_sigma_rounds": 1,
             "likelihood.relative_noise": ["nee"]}  # fmt: skip
    cfg = config_with(load_config(REPO / "examples" / "configs" / "synthetic.toml"),
                      {**TINY, **extra})  # fmt: skip
    (tmp_path / "c.toml").write_text(config_to_toml(cfg), encoding="utf-8")
    run = tmp_path / "run"
    assert main(["-q", "fit", str(tmp_path / "c.toml"), "--out", str(run), "--steps", "20",
                 "--no-progress"]) == 0  # fmt: skip
    new = synthesize(3, model="dalec993", years=1, seed=11, free_parameters=CLI_FREE,
                     streams=STREAM_NAMES)  # fmt: skip
    new = new.assign_coords(site=[f"new-{i}" for i in range(3)])
    write_dataset(new, tmp_path / "new.nc")
    for name, source in (("fitted", "training"), ("new", str(tmp_path / "new.nc"))):
        out = tmp_path / f"pred-{name}.nc"
        assert main(["-q", "predict", str(run), "--data", source, "--out", str(out),
                     "--samples", "8"]) == 0  # fmt: skip
        pred = read_dataset(out)
        for s in STREAM_NAMES:
            assert np.isfinite(pred[s].values).all()
    assert main(["-q", "report", str(run), "--samples", "8", "--no-progress"]) == 0
    post = read_datatree(run / "report" / "datatree.nc")["posterior"].ds
    for s in DISC:
        assert post[f"discrepancy_{s}"].dims == ("sample", "site", "month")
        rho = post[f"discrepancy_rho_{s}"].values
        assert np.all((rho > 0) & (rho < 1))
        assert np.all(post[f"discrepancy_sd_{s}"].values > 0)
    assert np.isfinite(post["discrepancy_nee"].values).all()
    coef = post["discrepancy_coef_nee"]
    assert coef.dims == ("sample", "harmonic", "predictor")
    assert list(coef["harmonic"].values) == ["mean", "cos1", "sin1", "cos2", "sin2"]
    assert coef["predictor"].values[0] == "intercept" and coef.sizes["predictor"] > 1
    assert np.isfinite(coef.values).all() and float(coef.std("sample").min()) > 0
    rel = post["relnoise_nee"]
    assert rel.dims == ("sample",) and np.all(rel.values > 0) and float(rel.std()) > 0
    assert "relnoise_gpp" not in post


def test_fit_configuration_checks_the_discrepancy_tables():
    from differland_bayes.bayes.fitconfig import ConfigError, config_from_dict

    raw = {
        "data": {"streams": ["gpp", "nee"]},
        "likelihood": {"discrepancy": ["nee", "et"],
                       "discrepancy_prior_scale": {"gpp": 1.0, "nee": -0.5}},
    }  # fmt: skip
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw, source="my.toml")
    text = str(info.value)
    assert "likelihood.discrepancy: expected streams among data.streams ['gpp', 'nee'], " \
        "found ['et']" in text  # fmt: skip
    assert "likelihood.discrepancy_prior_scale: expected streams of likelihood.discrepancy " \
        "['nee', 'et'], found ['gpp']" in text  # fmt: skip
    assert "likelihood.discrepancy_prior_scale.nee: expected a number > 0, found -0.5" in text
    cfg = config_from_dict({"likelihood": {"discrepancy": ["nee"]}})
    assert cfg.model_config({}).likelihood.discrepancy == ("nee",)


@pytest.mark.parametrize("option", ["discrepancy", "relative_noise"])
def test_a_stream_the_data_lack_is_refused_before_fitting(option):
    """Per-stream likelihood options (the discrepancy, and the noise that grows with the
    flux) name streams the fit must have."""
    from differland_bayes.bayes.fit_data import load_dataset
    from differland_bayes.bayes.fit_problem import build_problem
    from differland_bayes.bayes.fitconfig import config_with, load_config
    from test_predict_cli import TINY

    # data.streams = [] (every stream of the data); the synthetic world has no SIF
    cfg = config_with(load_config(REPO / "examples" / "configs" / "synthetic.toml"),
                      {**TINY, "data.streams": [], f"likelihood.{option}": ["sif"]})  # fmt: skip
    ds, _ = load_dataset(cfg)
    with pytest.raises(ValueError, match=rf"likelihood.{option}: expected streams of the fit "
                       r"\[.*\], found \['sif'\]"):  # fmt: skip
        build_problem(cfg, ds)
