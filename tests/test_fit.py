"""``differland fit``: configuration schema, run directory, refusal, overwrite, resume."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from differland_bayes.bayes import LikelihoodConfig, ModelConfig, NetworkConfig
from differland_bayes.bayes.fit import load_dataset
from differland_bayes.bayes.fitconfig import (
    ConfigError,
    FitConfig,
    config_from_dict,
    config_to_dict,
    config_to_toml,
    config_with,
    load_config,
)
from differland_bayes.bayes.prior_net import EnvPriorNet
from differland_bayes.bayes.run import (
    RUN_FILES,
    env_spec,
    load_run,
    read_losses,
    read_summary,
    staging_path,
)
from differland_bayes.cli import main

CONFIGS = REPO / "examples" / "configs"
FREE = ["canopy_efficiency", "LCMA", "f_fol", "Q10"]
TINY = {
    "data.synthetic.sites": 8,
    "data.synthetic.years": 2,
    "data.synthetic.free_parameters": FREE,
    "data.site_split": "all",
    "data.holdout_fraction": 0.25,
    "model.free_parameters": FREE,
    "network.hidden": [8],
    "svi.schedule": "constant",  # so that extending a run by --resume is exact
    "svi.warmup": 0,
    "svi.lr": 0.02,
    "svi.checkpoint_every": 0,
    "svi.early_stopping.every": 10,
    "svi.early_stopping.patience": 100,
    "svi.px_every": 10,  # parameter expansion at steps 10, 20, 30 (checked below)
}


def _fit(*args) -> int:
    return main(["-q", "fit", *map(str, args), "--no-progress"])


def _write_config(path: Path, **overrides) -> Path:
    cfg = config_with(load_config(CONFIGS / "synthetic.toml"), {**TINY, **overrides})
    path.write_text(config_to_toml(cfg), encoding="utf-8")
    return path


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return _write_config(tmp_path_factory.mktemp("cfg") / "tiny.toml")


@pytest.fixture(scope="module")
def run_a(tiny, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "a"
    assert _fit(tiny, "--out", out, "--steps", 30) == 0
    return out


# --------------------------------------------------------------------------- schema


def test_defaults_live_in_one_place_and_match_the_model_config():
    cfg = FitConfig()
    assert cfg.data.source == "synthetic" and cfg.svi.steps == 2000 and cfg.svi.batch_size == 0
    mc = cfg.model_config({})
    assert mc.network == NetworkConfig() and mc.likelihood == LikelihoodConfig()
    assert mc == ModelConfig()  # edc_scale 0 -> None, no fixed parameters


def test_every_problem_is_reported_with_its_key_path():
    raw = {
        "svi": {"steps": "300", "guide": "iaf", "stepz": 1},
        "network": {"hidden": [8, 0]},
        "data": {"streams": ["gpp", "foo"], "source": "sites.csv"},
        "model": {"water_stress": "baseline", "fixed_parameters": {"nope": 1.0}},
        "likelihood": {"df": True},
        "bogus": {},
    }
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw, source="my.toml")
    problems = info.value.problems
    expected = [
        "svi.steps: expected int, found str",
        "svi.guide: expected one of 'normal', 'lowrank', 'delta', 'site_mvn', found 'iaf'",
        "svi.stepz: unknown key (did you mean 'steps'?)",
        "network.hidden[1]: expected an integer >= 1, found 0",
        "data.streams[1]: expected one of",
        "data.source: expected one of",
        "model.water_stress: expected one of 'default', 'nothing', 'nn_paw', 'nn_whole' for "
        "dalec993",
        "model.fixed_parameters: expected parameter names of dalec993",
        "likelihood.df: expected float, found bool",
        "bogus: unknown key",
    ]
    for text in expected:
        assert any(p.startswith(text) for p in problems), (text, problems)
    assert len(problems) == len(expected)
    assert str(info.value).startswith("my.toml: 10 problems in the configuration")


def test_values_and_cross_checks():
    with pytest.raises(ConfigError, match=r"data.holdout_fraction: expected a number >= 0 and < 1"):
        config_from_dict({"data": {"holdout_fraction": 1.0}})
    with pytest.raises(ConfigError, match=r"svi.warmup: expected fewer warm-up steps"):
        config_from_dict({"svi": {"steps": 10, "warmup": 10}})
    with pytest.raises(ConfigError, match=r"svi.rank: only used by svi.guide = 'lowrank' or"):
        config_from_dict({"svi": {"rank": 4}})
    assert config_from_dict({"svi": {"guide": "site_mvn", "rank": 2}}).svi.rank == 2
    for option in ("nn_paw", "nn_whole"):
        for process in ("dalec993", "dalec990"):
            raw = {"model": {"process": process, "water_stress": option}}
            assert config_from_dict(raw).model.water_stress == option
    with pytest.raises(ConfigError, match=r"model.fixed_parameters.Q10: expected a value in"):
        config_from_dict({"model": {"fixed_parameters": {"Q10": 1e6}}})
    with pytest.raises(ConfigError, match=r"also in model.fixed_parameters"):
        config_from_dict({"model": {"free_parameters": ["Q10"], "fixed_parameters": {"Q10": 0.05}}})
    with pytest.raises(ConfigError, match=r"svi: expected table, found int"):
        config_from_dict({"svi": 3})
    cfg = config_from_dict({"svi": {"lr": 1}})  # an int where a float is expected is fine
    assert cfg.svi.lr == 1.0 and isinstance(cfg.svi.lr, float)
    circ = config_from_dict({"model": {"circular_phases": True}})
    assert circ.model_config({}).circular_phases and not cfg.model_config({}).circular_phases
    with pytest.raises(ConfigError, match=r"model.circular_phases: expected"):
        config_from_dict({"model": {"circular_phases": "yes"}})


def test_toml_round_trip(tmp_path):
    cfg = config_with(
        FitConfig(),
        {
            "data.source": "my sites/world.zarr",
            "data.streams": ["gpp", "et"],
            "model.fixed_parameters": {"Q10": 0.05, "IWUE": 20.0},
            "likelihood.noise_prior_scale": {"gpp": 1.5},
            "network.hidden": [],
            "svi.guide": "lowrank",
            "svi.rank": 3,
            "svi.lr": 1e-5,
            "prior.edc_scale": 10,
        },
    )
    text = config_to_toml(cfg)
    assert config_from_dict(tomllib.loads(text)) == cfg
    assert config_from_dict(tomllib.loads(config_to_toml(cfg, comments=True))) == cfg
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    assert load_config(path) == cfg
    assert config_to_dict(cfg)["model"]["fixed_parameters"] == {"IWUE": 20.0, "Q10": 0.05}


def test_load_config_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="configuration file not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[svi\nsteps = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(bad)


@pytest.mark.parametrize(
    "name", ["synthetic", "fluxval", "fluxnet_monthly", "synthetic_nn_paw", "fluxnet_daily"]
)
def test_example_configs_parse(name):
    cfg = load_config(CONFIGS / f"{name}.toml")
    assert cfg.model.process == ("dalec990" if name == "fluxnet_daily" else "dalec993")
    if name == "synthetic_nn_paw":
        assert cfg.model.water_stress == "nn_paw" and cfg.svi.guide == "site_mvn"


def test_fluxnet_daily_config_loads_every_site(data_dir, monkeypatch):
    """The daily FLUXNET configuration reads all 16 sites on one daily union axis.

    (A 3 + 3-step fit of two sites with it ran end to end in 85 s on 2 busy cores; too
    slow for the default suite.)
    """
    monkeypatch.setenv("DIFFERLAND_DATA_DIR", str(data_dir))
    ds, _ = load_dataset(load_config(CONFIGS / "fluxnet_daily.toml"))
    assert ds.sizes["site"] == 16
    step = np.diff(ds["time"].values[:3]).astype("timedelta64[h]").astype(int)
    assert (step == 24).all()


def test_cli_reports_config_problems_on_one_line(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text('[svi]\nsteps = "300"\nguide = "iaf"\n[netwrk]\n', encoding="utf-8")
    assert _fit(path, "--out", tmp_path / "run") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "svi.steps: expected int, found str" in err and "svi.guide: expected one of" in err
    assert "netwrk: unknown key (did you mean 'network'?)" in err
    assert not (tmp_path / "run").exists()


def test_show_config_prints_the_documented_defaults(capsys):
    assert main(["fit", "--show-config"]) == 0
    text = capsys.readouterr().out
    assert "# total optimisation steps" in text
    assert config_from_dict(tomllib.loads(text)) == FitConfig()


def test_flags_exclude_each_other_and_out_is_required(tiny, tmp_path, capsys):
    assert _fit(tiny, "--out", tmp_path / "r", "--overwrite", "--resume") == 2
    assert _fit(tiny) == 2
    err = capsys.readouterr().err
    assert "exclude each other" in err and "--out RUN_DIR" in err


# --------------------------------------------------------------------------- fitting


def test_fit_writes_the_documented_run_directory(run_a, tiny):
    assert sorted(p.name for p in run_a.iterdir()) == sorted(RUN_FILES)
    assert not staging_path(run_a).exists()
    assert (run_a / "checkpoints" / "checkpoint.npz").is_file()

    run = load_run(run_a)
    assert run.config == config_with(load_config(tiny), {"svi.steps": 30})  # as run
    loss = run.losses.loss
    assert loss.shape == (30,) and np.all(np.isfinite(loss))
    assert loss[-5:].mean() < loss[:5].mean()
    np.testing.assert_array_equal(run.losses.heldout_steps, [10, 20, 30])
    assert np.all(np.isfinite(run.losses.heldout_loss))

    meta = run.meta
    assert len(meta["sites"]) == 8 and len(meta["heldout_sites"]) == 2
    assert set(meta["train_sites"]) | set(meta["heldout_sites"]) == set(meta["sites"])
    assert meta["streams"] == ["gpp", "nee", "et", "lai"]
    assert sorted(meta["free_parameters"]) == sorted(FREE)
    assert len(meta["env_mean"]) == len(meta["features"]) == len(meta["env_sd"])
    assert meta["n_obs"]["gpp"]["heldout"] > 0 and meta["n_obs"]["gpp"]["train"] > 0
    assert env_spec(meta).features == meta["features"]

    assert run.params["eps_auto_loc"].shape == (8, 4)
    assert "trunk[0].weight" in run.params["prior_net$params"]

    summary = read_summary(run_a)
    assert summary["steps"] == 30 and summary["resumed_from_step"] == 0
    assert summary["final_loss"] == pytest.approx(loss[-1])
    assert summary["best_step"] in (10, 20, 30) and not summary["stopped_early"]

    from differland_bayes.bayes.fit import restore_fit

    restored = restore_fit(run_a)
    assert isinstance(restored.net, EnvPriorNet) and restored.net.names == tuple(
        n for n in restored.process.table.names if n in FREE
    )
    np.testing.assert_array_equal(
        np.asarray(restored.net.trunk[0].weight), run.params["prior_net$params"]["trunk[0].weight"]
    )


def test_holdout_months_keeps_every_site_and_holds_out_its_last_steps(tmp_path):
    from differland_bayes.bayes.fit import build_problem

    cfg = config_with(load_config(CONFIGS / "synthetic.toml"),
                      {**TINY, "data.holdout": "months"})  # fmt: skip
    ds, _ = load_dataset(cfg)
    problem = build_problem(cfg, ds)
    full = build_problem(config_with(cfg, {"data.holdout_fraction": 0.0}), ds).data
    assert not problem.heldout.any()  # every site is fitted
    observed = np.logical_or.reduce([np.asarray(s.mask) for s in full.streams.values()])
    for name, stream in full.streams.items():
        train = np.asarray(problem.data.streams[name].mask)
        held = np.asarray(problem.heldout_data.streams[name].mask)
        np.testing.assert_array_equal(train | held, np.asarray(stream.mask))
        assert not (train & held).any()
    held_any = np.logical_or.reduce(
        [np.asarray(s.mask) for s in problem.heldout_data.streams.values()]
    )
    for i, row in enumerate(observed):
        steps = np.flatnonzero(row)
        n_held = round(0.25 * len(steps))
        # the site's last quarter of observed steps, a contiguous tail
        np.testing.assert_array_equal(np.flatnonzero(held_any[i]), steps[-n_held:])

    out = tmp_path / "months"
    assert _fit(_write_config(tmp_path / "m.toml", **{"data.holdout": "months"}), "--out", out,
                "--steps", 20) == 0  # fmt: skip
    run = load_run(out)
    assert run.meta["holdout"] == "months" and run.meta["heldout_sites"] == []
    assert len(run.meta["heldout_from"]) == 8
    assert run.meta["n_obs"]["gpp"]["heldout"] > 0
    np.testing.assert_array_equal(run.losses.heldout_steps, [10, 20])
    assert np.all(np.isfinite(run.losses.heldout_loss))
    # the report's draws count exactly the training months as in the fit
    from differland_bayes.analysis.draws import run_draws
    from differland_bayes.bayes.fit import restore_fit

    draws = run_draws(restore_fit(out), ds, num_samples=4)
    for name, stream in problem.data.streams.items():
        np.testing.assert_array_equal(draws.in_fit[name], np.asarray(stream.mask))


def test_existing_run_is_refused_and_left_untouched(run_a, tiny, capsys):
    before = _snapshot(run_a)
    assert _fit(tiny, "--out", run_a, "--steps", 30) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(run_a) in err and "--overwrite" in err
    assert _snapshot(run_a) == before
    assert not staging_path(run_a).exists()


def test_resume_refuses_a_changed_configuration(run_a, tmp_path, capsys):
    other = _write_config(tmp_path / "other.toml", **{"svi.lr": 0.05})
    before = _snapshot(run_a)
    assert _fit(other, "--out", run_a, "--resume", "--steps", 40) == 2
    assert "svi.lr (0.02 -> 0.05)" in capsys.readouterr().err
    assert _snapshot(run_a) == before


def test_resume_matches_an_uninterrupted_run_and_overwrite_replaces(run_a, tiny, tmp_path):
    resumed = tmp_path / "resumed"
    shutil.copytree(run_a, resumed)
    assert _fit(tiny, "--out", resumed, "--resume", "--steps", 50) == 0

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "junk.txt").write_text("old run", encoding="utf-8")
    assert _fit(tiny, "--out", fresh, "--steps", 50, "--overwrite") == 0
    assert sorted(p.name for p in fresh.iterdir()) == sorted(RUN_FILES)

    _, loss_r = read_losses(resumed / "losses.csv")
    _, loss_f = read_losses(fresh / "losses.csv")
    assert loss_r.shape == (50,)
    np.testing.assert_array_equal(loss_r[:30], load_run(run_a).losses.loss)
    np.testing.assert_array_equal(loss_r, loss_f)  # bit for bit
    assert (resumed / "heldout_losses.csv").read_text() == (
        fresh / "heldout_losses.csv"
    ).read_text()
    pr, pf = load_run(resumed).params, load_run(fresh).params
    np.testing.assert_array_equal(pr["eps_auto_loc"], pf["eps_auto_loc"])
    s = read_summary(resumed)
    assert s["resumed_from_step"] == 30 and s["steps"] == 50
    assert s["final_loss"] == read_summary(fresh)["final_loss"]
    assert not staging_path(resumed).exists() and not staging_path(fresh).exists()


def test_missing_data_file_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DIFFERLAND_DATA_DIR", str(tmp_path / "data"))
    cfg = _write_config(tmp_path / "c.toml", **{"data.source": "nowhere/sites.nc"})
    out = tmp_path / "run"
    assert _fit(cfg, "--out", out) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("differland: error: data.source:")
    assert str(tmp_path / "data" / "nowhere" / "sites.nc") in err
    assert not out.exists() and not staging_path(out).exists()


def test_invalid_dataset_is_refused_before_fitting(tmp_path, monkeypatch, capsys):
    from differland_bayes.bayes import fit as fit_module
    from differland_bayes.dataset import write_dataset
    from differland_bayes.synthetic import synthesize

    ds = synthesize(8, years=2, seed=3, free_parameters=FREE)
    ds["precip"][0, 3] = -5.0
    path = write_dataset(ds, tmp_path / "bad.nc")
    cfg = _write_config(tmp_path / "c.toml", **{"data.source": str(path)})

    def no_fitting(*args, **kwargs):
        raise AssertionError("fit_svi must not run on an invalid dataset")

    monkeypatch.setattr(fit_module, "fit_svi", no_fitting)
    out = tmp_path / "run"
    assert _fit(cfg, "--out", out) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("differland: error:") and "refusing to fit" in last
    assert "precip" in last and "differland validate" in last
    assert not out.exists() and not staging_path(out).exists()


def test_summary_and_meta_are_plain_json(run_a):
    for name in ("summary.json", "data_meta.json"):
        json.loads((run_a / name).read_text(encoding="utf-8"))


def test_interrupted_fit_keeps_its_checkpoint_for_resume(tiny, tmp_path, monkeypatch, caplog):
    from differland_bayes.bayes import fit as fit_module
    from differland_bayes.bayes.run import plan_run_dir

    def interrupted(*args, checkpoint_dir, **kwargs):
        Path(checkpoint_dir).mkdir(parents=True)
        Path(checkpoint_dir, "checkpoint.npz").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(fit_module, "fit_svi", interrupted)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        fit_module.run_fit(load_config(tiny), out, progress_bar=False)
    staging = staging_path(out)
    assert not out.exists() and (staging / "checkpoints" / "checkpoint.npz").is_file()
    assert (staging / "config.toml").is_file()
    assert "--resume" in caplog.text
    with pytest.raises(FileExistsError, match="interrupted fit"):
        plan_run_dir(out)
    plan = plan_run_dir(out, resume=True)
    assert plan.resume_from == staging and plan.previous_config == staging / "config.toml"
    assert plan_run_dir(out, overwrite=True).resume_from is None

    def failing(*args, **kwargs):
        raise ValueError("broken before any checkpoint")

    monkeypatch.setattr(fit_module, "fit_svi", failing)
    with pytest.raises(ValueError, match="broken"):
        fit_module.run_fit(load_config(tiny), out, overwrite=True, progress_bar=False)
    assert not staging.exists() and not out.exists()  # nothing worth resuming is left


# --------------------------------------------------------------------------- hybrid models


def _weights_of(process) -> dict[str, np.ndarray]:
    """Key path -> array of a process model's trainable arrays (``params.npz`` names)."""
    import equinox as eqx
    import jax

    tree = eqx.filter(process, eqx.is_inexact_array)
    return {
        jax.tree_util.keystr(path).lstrip("."): np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
    }


def test_bayesian_nn_paw_fit_with_site_mvn_then_predict(tmp_path):
    """``differland fit`` -> run directory -> ``restore_fit`` -> ``differland predict``."""
    import xarray as xr

    from differland_bayes.bayes.fit import restore_fit

    cfg = _write_config(
        tmp_path / "nn_paw.toml",
        **{
            "model.water_stress": "nn_paw",
            "network.bayesian_weights": True,
            "svi.guide": "site_mvn",
            "svi.px_every": 0,  # needs the mean-field guide
            "svi.batch_size": 4,
            "data.holdout_fraction": 0.0,
        },
    )
    out = tmp_path / "run"
    assert _fit(cfg, "--out", out, "--steps", 20) == 0
    run = load_run(out)
    assert run.meta["process"]["water_stress"] == "nn_paw"
    assert run.meta["process"]["nn_weights"] == 31
    loss = run.losses.loss
    assert np.all(np.isfinite(loss)) and loss[-5:].mean() < loss[:5].mean()
    locs = {k: v for k, v in run.params.items() if k.startswith("process_nn/")}
    assert sum(v.size for k, v in locs.items() if k.endswith("_auto_loc")) == 31
    assert run.params["eps_auto_scale_tril"].shape == (8, 4, 4)

    restored = restore_fit(out)
    assert restored.process.canopy.water_stress.n_weights == 31
    assert set(restored.params) == set(run.params)

    pred = tmp_path / "pred.nc"
    assert main(["-q", "predict", str(out), "--data", "training", "--out", str(pred),
                 "--samples", "10"]) == 0  # fmt: skip
    with xr.open_dataset(pred) as ds:
        assert bool(ds["fitted"].all()) and ds.sizes["site"] == 8
        for s in ("gpp", "nee", "et", "lai"):
            assert np.all(np.isfinite(ds[s].values)), s


def test_point_nn_whole_fit_restores_its_fitted_weights_and_constants(tmp_path):
    from differland_bayes.bayes.fit import restore_fit
    from differland_bayes.bayes.hybrid_process import NN_CONSTANTS, build_process
    from differland_bayes.bayes.predict_dataset import predict_to_dataset

    cfg = _write_config(
        tmp_path / "nn_whole.toml",
        **{"model.water_stress": "nn_whole", "data.holdout_fraction": 0.0},
    )
    out = tmp_path / "run"
    assert _fit(cfg, "--out", out, "--steps", 15) == 0
    run = load_run(out)
    recorded = run.meta["process"]
    assert recorded["nn_weights"] == 202 and sorted(recorded["nn_constants"]) == sorted(
        NN_CONSTANTS
    )
    restored = restore_fit(out)
    canopy = restored.process.canopy
    assert {n: getattr(canopy, n) for n in NN_CONSTANTS} == recorded["nn_constants"]
    stored = run.params["process_nn$params"]
    assert len(stored) == 6  # three (weight, bias) pairs
    fitted = _weights_of(restored.process)
    initial = _weights_of(
        build_process("dalec993", water_stress="nn_whole", constants=recorded["nn_constants"])
    )
    assert sorted(fitted) == sorted(stored) == sorted(initial)
    for key, value in stored.items():
        np.testing.assert_array_equal(fitted[key], value)  # the fitted weights, restored
    assert max(float(np.max(np.abs(fitted[k] - initial[k]))) for k in initial) > 1e-4

    from differland_bayes.bayes.fit import load_dataset

    ds, _ = load_dataset(restored.config, restored.process)
    pred = predict_to_dataset(out, ds, num_samples=8, fit=restored)
    assert np.all(np.isfinite(pred["gpp"].values))


def test_px_every_leaves_the_fit_at_the_expansion_optimum(run_a):
    """``[svi] px_every``: after the last step (a rescaling) the guide is at the optimum of
    the negative ELBO along sigma -> c sigma, eps -> eps / c (see ``bayes.expansion``)."""
    run = load_run(run_a)
    assert run.config.svi.px_every == 10 and run.config.svi.steps == 30
    a = np.sum(run.params["eps_auto_loc"] ** 2 + run.params["eps_auto_scale"] ** 2, axis=0)
    n_sites = run.params["eps_auto_loc"].shape[0]
    pr = run.config.prior
    m = run.params["sigma_auto_loc"]
    grad = -a + n_sites + (m - np.log(pr.sigma_prior_scale)) / pr.sigma_prior_log_sd**2
    # without the step this is 0.75-0.96 after 21 steps of this fit
    np.testing.assert_allclose(grad / n_sites, 0.0, atol=0.01)
