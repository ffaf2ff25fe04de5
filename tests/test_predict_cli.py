"""``differland predict``: posterior predictive of a run as a canonical dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from differland_bayes.bayes.fitconfig import config_to_toml, config_with, load_config
from differland_bayes.cli import main
from differland_bayes.dataset import STREAMS, read_dataset, write_dataset

FREE = ["canopy_efficiency", "LCMA", "f_fol", "Q10"]
#: the fit also estimates the leaf-onset phase, as an angle on the circle of the year
MODEL_FREE = [*FREE, "Bday"]
STREAM_NAMES = ["gpp", "nee", "et", "lai"]
TINY = {
    "data.synthetic.sites": 6,
    "data.synthetic.years": 1,
    "data.synthetic.free_parameters": FREE,
    "data.site_split": "all",
    "data.holdout_fraction": 0.0,
    "model.free_parameters": MODEL_FREE,
    "model.circular_phases": True,
    "network.hidden": [8],
    "svi.schedule": "constant",
    "svi.warmup": 0,
    "svi.lr": 0.02,
    "svi.checkpoint_every": 0,
}
SAMPLES = 16


def _cli(*args) -> int:
    return main(["-q", *map(str, args)])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("predict")
    cfg = config_with(load_config(REPO / "examples" / "configs" / "synthetic.toml"), TINY)
    config = root / "tiny.toml"
    config.write_text(config_to_toml(cfg), encoding="utf-8")
    out = root / "run"
    assert _cli("fit", config, "--out", out, "--steps", 20, "--no-progress") == 0
    return out


@pytest.fixture(scope="module")
def new_world(run_dir) -> Path:
    """The same generator with another seed, its sites renamed: sites the run never saw."""
    from differland_bayes.synthetic import synthesize

    ds = synthesize(4, model="dalec993", years=1, seed=11, free_parameters=FREE,
                    streams=STREAM_NAMES)  # fmt: skip
    ds = ds.assign_coords(site=[f"new-{i}" for i in range(ds.sizes["site"])])
    return write_dataset(ds, run_dir.parent / "new_world.nc")


@pytest.fixture(scope="module")
def pred_training(run_dir) -> Path:
    out = run_dir.parent / "pred_training.nc"
    args = ["predict", run_dir, "--data", "training", "--out", out]
    assert _cli(*args, "--samples", SAMPLES, "--draws", "--seed", 3) == 0
    return out


def _check_layout(pred, *, draws: bool, samples: int = SAMPLES) -> None:
    q = pred["quantile"].values
    np.testing.assert_allclose(q, [0.05, 0.5, 0.95])
    assert pred["fitted"].dtype == bool and pred["fitted"].dims == ("site",)
    for s in STREAM_NAMES:
        assert pred[s].dims == ("site", "time")
        assert pred[f"{s}_quantile"].dims == ("quantile", "site", "time")
        assert pred[f"{s}_obs"].dims == ("site", "time")
        assert pred[f"{s}_mask"].dtype == bool
        assert pred[s].attrs["units"] == STREAMS[s].units
        assert pred[f"{s}_obs"].attrs["units"] == STREAMS[s].units
        qs = pred[f"{s}_quantile"].values
        assert np.all(np.isfinite(qs)) and np.all(np.isfinite(pred[s].values))
        assert np.all(np.diff(qs, axis=0) >= 0)  # quantiles ordered
        mean = pred[s].values
        assert np.all((mean >= qs[0] - 1e-9) & (mean <= qs[-1] + 1e-9)) or (
            np.mean((mean >= qs[0]) & (mean <= qs[-1])) > 0.97
        )
        obs, mask = pred[f"{s}_obs"].values, pred[f"{s}_mask"].values
        assert np.all(np.isfinite(obs[mask])) and np.all(np.isnan(obs[~mask]))
        assert (f"{s}_draws" in pred) == draws
        if draws:
            assert pred[f"{s}_draws"].dims == ("sample", "site", "time")
            assert pred.sizes["sample"] == samples
    p = pred["parameters_quantile"]
    assert p.dims == ("quantile", "site", "parameter")
    assert sorted(pred["parameter"].values) == sorted(MODEL_FREE)
    assert pred["parameter_units"].dims == ("parameter",)
    assert np.all(np.diff(p.values, axis=0) >= 0)
    assert np.all(np.isfinite(p.values))
    # circular phases: quantiles around each site's circular mean, which lies within one
    # year around the default phase (730.5 d); intervals shorter than a year
    bday = p.sel(parameter="Bday").values
    assert np.all((bday[1] >= 730.5 - 182.625) & (bday[1] <= 730.5 + 182.625))
    assert np.all(bday[-1] - bday[0] < 365.25)
    assert pred.attrs["num_samples"] == samples


def test_training_data_are_fitted_sites(run_dir, pred_training):
    pred = read_dataset(pred_training)
    _check_layout(pred, draws=True)
    assert bool(pred["fitted"].all())
    assert pred.attrs["seed"] == 3 and pred.attrs["run_dir"] == str(run_dir)
    # the observations are the training data's, on its site/time coordinates
    assert pred.sizes["site"] == TINY["data.synthetic.sites"]
    assert int(pred["gpp_mask"].sum()) > 0
    resid = (pred["gpp"] - pred["gpp_obs"]).where(pred["gpp_mask"])
    assert np.isfinite(float(resid.mean()))


def test_new_sites_predicted_from_environment(run_dir, new_world, tmp_path):
    out = tmp_path / "pred_new.nc"
    args = ["predict", run_dir, "--data", new_world, "--out", out, "--samples", SAMPLES]
    assert _cli(*args, "--quantiles", "0.05,0.5,0.95") == 0
    pred = read_dataset(out)
    _check_layout(pred, draws=False)
    assert not bool(pred["fitted"].any())
    data = read_dataset(new_world)
    np.testing.assert_array_equal(pred["site"].values, data["site"].values)
    np.testing.assert_array_equal(pred["time"].values, data["time"].values)


def test_new_site_pools_in_equilibrium_change_the_net_flux_only(run_dir, new_world, tmp_path):
    preds = {}
    for mode in ("network", "equilibrium"):
        out = tmp_path / f"pred_{mode}.nc"
        args = ["predict", run_dir, "--data", new_world, "--out", out, "--samples", SAMPLES]
        assert _cli(*args, "--new-site-pools", mode) == 0
        preds[mode] = read_dataset(out)
    a, b = preds["network"], preds["equilibrium"]
    # same draws: the canopy (labile, foliar pools) and so GPP are unchanged ...
    np.testing.assert_allclose(a["gpp"].values, b["gpp"].values, rtol=1e-5, atol=1e-6)
    # ... while heterotrophic respiration, hence NEE, follows the equilibrium pools
    assert np.abs(a["nee"].values - b["nee"].values).max() > 1e-3
    assert np.isfinite(b["nee"].values).all()


def test_mixed_sites_flagged_by_id(run_dir, tmp_path):
    from differland_bayes.bayes.fit import load_dataset, restore_fit

    fit = restore_fit(run_dir)
    ds, _ = load_dataset(fit.config, fit.process)
    ids = [str(s) for s in ds["site"].values]
    renamed = [s if i % 2 == 0 else f"other-{s}" for i, s in enumerate(ids)]
    data = write_dataset(ds.assign_coords(site=renamed), tmp_path / "mixed.nc")
    out = tmp_path / "pred_mixed.nc"
    assert _cli("predict", run_dir, "--data", data, "--out", out, "--samples", SAMPLES) == 0
    pred = read_dataset(out)
    np.testing.assert_array_equal(pred["fitted"].values, [i % 2 == 0 for i in range(len(ids))])
    _check_layout(pred, draws=False)


def test_refuses_to_overwrite(run_dir, pred_training, capsys):
    before = pred_training.read_bytes()
    args = ["predict", run_dir, "--data", "training", "--out", pred_training]
    assert _cli(*args, "--samples", 4) == 2
    assert "overwrite" in capsys.readouterr().err
    assert pred_training.read_bytes() == before


def test_bad_run_dir_is_a_one_line_error(tmp_path, capsys):
    out = tmp_path / "p.nc"
    assert _cli("predict", tmp_path / "nope", "--data", "training", "--out", out) == 2
    err = capsys.readouterr().err.strip()
    assert "run directory not found" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_data_not_matching_the_run(run_dir, new_world, tmp_path, capsys):
    ds = read_dataset(new_world).drop_vars(["lai", "lai_unc", "lai_mask"], errors="ignore")
    data = write_dataset(ds, tmp_path / "no_lai.nc")
    out = tmp_path / "p.nc"
    assert _cli("predict", run_dir, "--data", data, "--out", out) == 2
    err = capsys.readouterr().err
    assert "lai" in err and "do not match the run" in err
    assert not out.exists()


def test_new_site_pools_choices_follow_the_library():
    from differland_bayes.bayes.predict import NEW_SITE_POOLS
    from differland_bayes.cli import build_parser

    args = build_parser().parse_args(["predict", "run", "--data", "training", "--out", "p.nc"])
    assert args.new_site_pools == NEW_SITE_POOLS[0]
    for mode in NEW_SITE_POOLS:
        parsed = build_parser().parse_args(
            ["predict", "run", "--data", "training", "--out", "p.nc", "--new-site-pools", mode]
        )
        assert parsed.new_site_pools == mode


@pytest.fixture(scope="module")
def run_dir_seed1(run_dir) -> Path:
    """The same tiny configuration fitted with another seed (an ensemble member)."""
    from differland_bayes.bayes.fit import restore_fit

    cfg = config_with(restore_fit(run_dir).config, {"svi.seed": 1})
    config = run_dir.parent / "tiny_seed1.toml"
    config.write_text(config_to_toml(cfg), encoding="utf-8")
    out = run_dir.parent / "run_seed1"
    assert _cli("fit", config, "--out", out, "--steps", 20, "--no-progress") == 0
    return out


def test_ensemble_pools_the_draws_of_each_run(run_dir, run_dir_seed1, new_world, tmp_path):
    import jax

    from differland_bayes.bayes.predict_dataset import predict_to_dataset

    out = tmp_path / "pred_ens.nc"
    args = ["predict", run_dir, run_dir_seed1, "--data", new_world, "--out", out]
    assert _cli(*args, "--samples", 7, "--draws", "--seed", 5) == 0
    pred = read_dataset(out)
    _check_layout(pred, draws=True, samples=7)
    assert pred.attrs["n_runs"] == 2
    assert pred.attrs["run_dir"] == f"{run_dir}; {run_dir_seed1}"
    data = read_dataset(new_world)
    # draws 0-3 are the first run's and 4-6 the second's, each with its own folded key
    for i, (run, rows) in enumerate(((run_dir, slice(0, 4)), (run_dir_seed1, slice(4, 7)))):
        n = rows.stop - rows.start
        key = jax.random.fold_in(jax.random.key(5), i)
        alone = predict_to_dataset(run, data, num_samples=n, draws=True, key=key)
        np.testing.assert_allclose(
            pred["gpp_draws"].isel(sample=rows).values, alone["gpp_draws"].values, rtol=1e-6
        )
    # the two members differ (different seeds), so the pooled mean is neither alone
    first = pred["nee_draws"].isel(sample=slice(0, 4)).mean("sample")
    second = pred["nee_draws"].isel(sample=slice(4, 7)).mean("sample")
    assert float(np.abs(first - second).max()) > 1e-4


def test_ensemble_of_mismatched_runs_is_refused(run_dir, new_world, tmp_path):
    import dataclasses

    from differland_bayes.bayes.fit import restore_fit
    from differland_bayes.bayes.predict_dataset import predict_to_dataset

    fit = restore_fit(run_dir)
    other = dataclasses.replace(fit, meta={**fit.meta, "streams": ["gpp", "nee"]})
    with pytest.raises(ValueError, match="cannot be pooled.*streams differ"):
        predict_to_dataset([run_dir, run_dir], read_dataset(new_world), num_samples=4,
                           fit=[fit, other])  # fmt: skip
    with pytest.raises(ValueError, match="num_samples: expected an integer >= the number"):
        predict_to_dataset([run_dir, run_dir], read_dataset(new_world), num_samples=1)


def test_too_few_samples_for_an_ensemble_is_refused_before_reading_runs(tmp_path, capsys):
    out = tmp_path / "p.nc"
    args = ["predict", tmp_path / "a", tmp_path / "b", "--data", "training", "--out", out]
    assert _cli(*args, "--samples", 1) == 2  # the runs do not even exist
    err = capsys.readouterr().err.strip()
    assert "--samples: expected at least one draw per run (2), found 1" in err
    assert not out.exists()


def test_phase_quantiles_are_taken_around_the_circular_mean():
    from differland_bayes.bayes.predict_dataset import circular_quantiles

    rng = np.random.default_rng(0)
    q = np.array([0.05, 0.5, 0.95])
    # a phase at the edge of the one-year window around 730.5 d: draws on both sides
    true = 730.5 + 182.625 - 3.0
    draws = true + rng.normal(0.0, 10.0, (4000, 2))
    wrapped = 730.5 - 182.625 + np.mod(draws - (730.5 - 182.625), 365.25)
    assert np.quantile(wrapped, 0.95) - np.quantile(wrapped, 0.05) > 300  # naive: a year
    got = circular_quantiles(wrapped, q, 365.25, 730.5)
    np.testing.assert_allclose(got, np.quantile(draws, q, axis=0), atol=1.5)
    # away from the edge it equals the plain quantiles
    mid = 700.0 + rng.normal(0.0, 10.0, (4000, 3))
    np.testing.assert_allclose(circular_quantiles(mid, q, 365.25, 730.5),
                               np.quantile(mid, q, axis=0), atol=1e-9)  # fmt: skip
