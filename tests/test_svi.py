"""The generic SVI runner: guides, optimizer, early stopping, checkpoints and resume."""

from __future__ import annotations

import logging
import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
import pytest
from numpyro.optim import _NumPyroOptim

from differland_bayes.bayes.checkpoint import load_checkpoint
from differland_bayes.bayes.svi import (
    CHECKPOINT_FILE,
    EarlyStopping,
    fit_svi,
    make_guide,
    make_optimizer,
)

N_SITES = 50


def hier_model(y, *, sigma=1.0, subsample_size=None):
    """Hierarchical normal: global mu, tau; local eps in a (subsampled) site plate."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfNormal(2.0))
    with numpyro.plate("site", y.shape[0], subsample_size=subsample_size) as idx:
        eps = numpyro.sample("eps", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Normal(mu + tau * eps, sigma), obs=y[idx])


def conjugate_model(y, *, sigma, m0, s0):
    """Normal-Normal with known variances: closed-form posterior for mu."""
    mu = numpyro.sample("mu", dist.Normal(m0, s0))
    with numpyro.plate("obs", y.shape[0]):
        numpyro.sample("y", dist.Normal(mu, sigma), obs=y)


def spiky_model(threshold):
    """Standard normal whose log density (and gradient) is NaN when x > threshold."""
    x = numpyro.sample("x", dist.Normal(0.0, 1.0))
    numpyro.factor("spike", jnp.where(x > threshold, jnp.nan, 0.0) * x)


@pytest.fixture(scope="module")
def y_sites():
    rng = np.random.default_rng(42)
    theta = 1.5 + 0.8 * rng.standard_normal(N_SITES)
    return jnp.asarray(theta + rng.standard_normal(N_SITES), dtype=jnp.float32)


@pytest.fixture(scope="module")
def y_heldout():
    rng = np.random.default_rng(7)
    theta = 1.5 + 0.8 * rng.standard_normal(N_SITES)
    return jnp.asarray(theta + rng.standard_normal(N_SITES), dtype=jnp.float32)


def _assert_trees_equal(a, b):
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    assert ta == tb
    for x, y in zip(la, lb, strict=True):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# --------------------------------------------------------------------------- guides


@pytest.mark.parametrize("kind", ["normal", "lowrank", "delta", "site_mvn"])
def test_each_guide_kind_fits_subsampled_model(kind, y_sites):
    guide = make_guide(hier_model, kind, local_sites=("eps",), plate="site", rank=1)
    fit = fit_svi(
        hier_model,
        guide,
        key=jax.random.key(0),
        num_steps=400,
        optimizer=make_optimizer(0.03, schedule="constant"),
        model_args=(y_sites,),
        model_kwargs={"subsample_size": 10},
        progress_bar=False,
    )
    assert fit.losses.shape == (400,)
    assert np.all(np.isfinite(fit.losses))
    assert fit.losses[-50:].mean() < fit.losses[:20].mean() - 10.0
    assert all(np.all(np.isfinite(np.asarray(v))) for v in fit.params.values())
    if kind == "lowrank":
        assert "auto_cov_factor" in fit.params  # the low-rank part over the globals
        assert fit.params["eps_auto_loc"].shape == (N_SITES,)  # AutoNormal over the locals
    if kind == "site_mvn":
        assert "auto_cov_factor" in fit.params  # rank given: low-rank globals
        assert fit.params["eps_auto_loc"].shape == (N_SITES, 1)  # one 1-d block per site
        assert fit.params["eps_auto_scale_tril"].shape == (N_SITES, 1, 1)
    median = fit.guide.median(fit.params)
    assert abs(float(median["mu"]) - float(y_sites.mean())) < 0.5
    assert fit.best_step == 400 and not fit.stopped_early and fit.heldout_losses.size == 0


def test_unknown_guide_kind_lists_valid_kinds():
    with pytest.raises(ValueError, match="valid kinds: normal, lowrank, delta, site_mvn"):
        make_guide(hier_model, "iaf")


def test_autonormal_matches_closed_form_posterior():
    rng = np.random.default_rng(3)
    sigma, m0, s0, n = 2.0, 1.0, 3.0, 20
    y = jnp.asarray(0.7 + sigma * rng.standard_normal(n), dtype=jnp.float32)
    prec = 1 / s0**2 + n / sigma**2
    post_mean = (m0 / s0**2 + float(y.sum()) / sigma**2) / prec
    post_sd = prec**-0.5

    guide = make_guide(conjugate_model, "normal")
    fit = fit_svi(
        conjugate_model,
        guide,
        key=jax.random.key(11),
        num_steps=1500,
        optimizer=make_optimizer(0.05, schedule="cosine", warmup_steps=50, total_steps=1500),
        model_args=(y,),
        model_kwargs={"sigma": sigma, "m0": m0, "s0": s0},
        num_particles=4,
        loss="meanfield",
        progress_bar=False,
    )
    loc = float(fit.params["mu_auto_loc"])
    scale = float(fit.params["mu_auto_scale"])
    assert abs(loc - post_mean) < 0.1 * post_sd, (loc, post_mean)
    assert abs(scale / post_sd - 1) < 0.1, (scale, post_sd)


# --------------------------------------------------------------------------- optimizer


def test_make_optimizer_schedules_and_errors():
    assert isinstance(make_optimizer(total_steps=10), optax.GradientTransformation)
    assert isinstance(make_optimizer(total_steps=10, as_numpyro=True), _NumPyroOptim)
    with pytest.raises(ValueError, match="valid schedules"):
        make_optimizer(schedule="linear")
    with pytest.raises(ValueError, match="needs total_steps"):
        make_optimizer(schedule="exponential")

    # the applied step size follows the schedule: |update| of Adam ~ lr on a constant gradient
    def step_sizes(tx, n):
        params = {"w": jnp.zeros(())}
        state = tx.init(params)
        out = []
        for _ in range(n):
            upd, state = tx.update({"w": jnp.ones(())}, state, params)
            out.append(-float(upd["w"]))
        return np.array(out)

    cos = step_sizes(
        make_optimizer(0.1, schedule="cosine", warmup_steps=5, total_steps=20, clip_norm=None),
        25,
    )
    np.testing.assert_allclose(cos[:6], 0.1 * np.arange(6) / 5, atol=1e-6)  # warm-up
    np.testing.assert_allclose(cos[20:], 0.1 * 0.01, rtol=1e-4)  # floor after total_steps
    exp = step_sizes(make_optimizer(0.1, schedule="exponential", total_steps=10), 15)
    np.testing.assert_allclose(exp[[0, 10, 14]], [0.1, 1e-3, 1e-3], rtol=1e-4)
    const = step_sizes(make_optimizer(0.1, schedule="constant"), 3)
    np.testing.assert_allclose(const, 0.1, rtol=1e-4)


# --------------------------------------------------------------------------- stability


def test_stable_update_rejects_non_finite_steps():
    guide = make_guide(spiky_model, "normal", init_scale=1.0)
    kwargs = {
        "key": jax.random.key(5),
        "num_steps": 200,
        "optimizer": make_optimizer(0.01, schedule="constant"),
        "model_args": (jnp.asarray(1.0),),
        "progress_bar": False,
    }
    fit = fit_svi(spiky_model, guide, stable_update=True, **kwargs)
    n_bad = int(np.isnan(fit.losses).sum())
    assert 0 < n_bad < 200
    assert all(np.all(np.isfinite(np.asarray(v))) for v in fit.params.values())
    # rejected steps did not advance the optimizer
    assert int(fit.state.optim_state[0]) == 200 - n_bad

    guide = make_guide(spiky_model, "normal", init_scale=1.0)
    plain = fit_svi(spiky_model, guide, stable_update=False, **kwargs)
    assert not all(np.all(np.isfinite(np.asarray(v))) for v in plain.params.values())


# --------------------------------------------------------------------------- early stopping


def test_early_stopping_stops_and_keeps_best_params(y_sites, y_heldout):
    es = EarlyStopping(patience=3, min_delta=1.0, every=10, heldout_kwargs={"y": y_heldout})
    common = {
        "key": jax.random.key(2),
        "optimizer": make_optimizer(0.05, schedule="constant"),
        "model_kwargs": {"y": y_sites},
        "progress_bar": False,
    }
    guide = make_guide(hier_model, "normal")
    fit = fit_svi(hier_model, guide, num_steps=3000, early_stopping=es, **common)
    assert fit.stopped_early
    n = len(fit.losses)
    assert n < 3000
    assert n == fit.heldout_steps[-1] == fit.best_step + es.patience * es.every
    np.testing.assert_array_equal(fit.heldout_steps, np.arange(10, n + 1, 10))
    assert fit.best_step in fit.heldout_steps
    best = fit.heldout_losses[list(fit.heldout_steps).index(fit.best_step)]
    assert np.all(fit.heldout_losses[fit.heldout_steps > fit.best_step] >= best - es.min_delta)

    # best_params are exactly the params after best_step steps
    ref = fit_svi(hier_model, make_guide(hier_model, "normal"), num_steps=fit.best_step, **common)
    _assert_trees_equal(fit.best_params, ref.params)
    np.testing.assert_array_equal(fit.losses[: fit.best_step], ref.losses)


def test_early_stopping_validates_settings():
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)
    with pytest.raises(ValueError, match="every"):
        EarlyStopping(every=0)


# --------------------------------------------------------------------------- checkpoints


def test_resume_reproduces_uninterrupted_run_exactly(tmp_path, y_sites, y_heldout, caplog):
    def run(num_steps, **kw):
        return fit_svi(
            hier_model,
            make_guide(hier_model, "lowrank", local_sites="eps", plate="site", rank=1),
            key=jax.random.key(123),
            num_steps=num_steps,
            optimizer=make_optimizer(0.02, warmup_steps=5, total_steps=60),
            model_args=(y_sites,),
            model_kwargs={"subsample_size": 10},
            early_stopping=EarlyStopping(
                patience=1000, every=10, heldout_kwargs={"subsample_size": None}
            ),
            **kw,
        )

    full = run(60, progress_bar=False)
    ckdir = tmp_path / "ck"
    first = run(25, checkpoint_dir=ckdir, checkpoint_every=10, progress_bar=False)
    assert len(first.losses) == 25
    assert sorted(p.name for p in ckdir.iterdir()) == [CHECKPOINT_FILE]  # no temp files
    assert load_checkpoint(ckdir / CHECKPOINT_FILE).meta["step"] == 25

    with caplog.at_level(logging.INFO, logger="differland_bayes.bayes.svi"):
        resumed = run(60, checkpoint_dir=ckdir, checkpoint_every=10, resume=True)
    assert "resumed from" in caplog.text and "step 25" in caplog.text

    np.testing.assert_array_equal(resumed.losses, full.losses)
    _assert_trees_equal(resumed.params, full.params)
    _assert_trees_equal(resumed.state, full.state)
    np.testing.assert_array_equal(resumed.heldout_steps, full.heldout_steps)
    np.testing.assert_array_equal(resumed.heldout_losses, full.heldout_losses)
    assert resumed.best_step == full.best_step
    _assert_trees_equal(resumed.best_params, full.best_params)
    assert load_checkpoint(ckdir / CHECKPOINT_FILE).meta["step"] == 60

    # resuming a finished run does no more steps
    again = run(60, checkpoint_dir=ckdir, resume=True, progress_bar=False)
    np.testing.assert_array_equal(again.losses, full.losses)
    _assert_trees_equal(again.params, full.params)


def test_refuses_non_empty_checkpoint_dir(tmp_path, y_sites):
    ckdir = tmp_path / "busy"
    ckdir.mkdir()
    (ckdir / "notes.txt").write_text("someone else's file")
    kwargs = {
        "key": jax.random.key(0),
        "num_steps": 5,
        "optimizer": make_optimizer(schedule="constant"),
        "model_args": (y_sites,),
        "checkpoint_dir": ckdir,
        "progress_bar": False,
    }
    guide = make_guide(hier_model, "delta")
    with pytest.raises(FileExistsError, match=str(ckdir)):
        fit_svi(hier_model, guide, **kwargs)
    fit = fit_svi(hier_model, guide, overwrite=True, **kwargs)
    assert len(fit.losses) == 5
    assert (ckdir / CHECKPOINT_FILE).is_file() and (ckdir / "notes.txt").is_file()
    with pytest.raises(ValueError, match="checkpoint_dir"):
        fit_svi(hier_model, guide, **{**kwargs, "checkpoint_dir": None}, resume=True)


def test_resume_rejects_checkpoint_of_another_guide(tmp_path, y_sites):
    kwargs = {
        "key": jax.random.key(0),
        "num_steps": 5,
        "optimizer": make_optimizer(schedule="constant"),
        "model_args": (y_sites,),
        "checkpoint_dir": tmp_path / "ck",
        "progress_bar": False,
    }
    fit_svi(hier_model, make_guide(hier_model, "delta"), **kwargs)
    with pytest.raises(ValueError, match="different model, guide or optimizer"):
        fit_svi(hier_model, make_guide(hier_model, "normal"), resume=True, **kwargs)


def test_progress_bar_and_logging(y_sites, caplog, capsys):
    with caplog.at_level(logging.INFO, logger="differland_bayes.bayes.svi"):
        fit = fit_svi(
            hier_model,
            make_guide(hier_model, "delta"),
            key=jax.random.key(0),
            num_steps=20,
            optimizer=make_optimizer(schedule="constant"),
            model_args=(y_sites,),
            log_every=10,
            progress_bar=True,
        )
    assert "step 10/20" in caplog.text and "step 20/20" in caplog.text
    assert "smoothed" in capsys.readouterr().err
    assert math.isfinite(fit.losses[-1])
