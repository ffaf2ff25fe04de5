"""``[data] predictors``: the prior network's predictors, selected, stored and reused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from differland_bayes.bayes.fitconfig import ConfigError, config_to_toml, config_with, load_config
from differland_bayes.cli import main
from differland_bayes.dataset import check_predictors, env_matrix, read_dataset, write_dataset

FREE = ["canopy_efficiency", "LCMA", "f_fol", "Q10"]
PREDICTORS = ["map", "vegetation_class", "mat"]  # features in this order, classes last
TINY = {
    "data.site_split": "all",
    "data.holdout_fraction": 0.0,
    "data.predictors": PREDICTORS,
    "model.free_parameters": FREE,
    "network.hidden": [8],
    "svi.schedule": "constant",
    "svi.warmup": 0,
    "svi.lr": 0.02,
    "svi.checkpoint_every": 0,
}
SAMPLES = 8


def _base():
    return load_config(REPO / "examples" / "configs" / "synthetic.toml")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    from differland_bayes.synthetic import synthesize

    root = tmp_path_factory.mktemp("predictors")
    ds = synthesize(6, years=1, seed=0, free_parameters=FREE)
    return write_dataset(ds, root / "world.nc")


@pytest.fixture(scope="module")
def new_world(world) -> Path:
    """Sites the run never saw, their env features in another order."""
    from differland_bayes.synthetic import synthesize

    ds = synthesize(3, years=1, seed=7, free_parameters=FREE)
    ds = ds.assign_coords(site=[f"new-{i}" for i in range(ds.sizes["site"])])
    ds = ds.isel(feature=slice(None, None, -1))
    return write_dataset(ds, world.parent / "new_world.nc")


@pytest.fixture(scope="module")
def run_dir(world) -> Path:
    cfg = config_with(_base(), {**TINY, "data.source": str(world)})
    config = world.parent / "tiny.toml"
    config.write_text(config_to_toml(cfg), encoding="utf-8")
    out = world.parent / "run"
    assert main(["-q", "fit", str(config), "--out", str(out), "--steps", "5", "--no-progress"]) == 0
    return out


# -- encoding -----------------------------------------------------------------------------
def test_env_matrix_selects_in_the_given_order(world):
    ds = read_dataset(world)
    x_all, names_all = env_matrix(ds)
    x, names = env_matrix(ds, predictors=PREDICTORS)
    classes = [n for n in names_all if n.startswith("vegetation_class=")]
    assert names == ["map", "mat", *classes]
    for j, n in enumerate(names):
        np.testing.assert_array_equal(x[:, j], x_all[:, names_all.index(n)])
    x_c, names_c = env_matrix(ds, predictors=["vegetation_class"])
    assert names_c == classes and np.all(x_c.sum(axis=1) == 1)
    _, names_e = env_matrix(ds, predictors=["mat", "lat"])
    assert names_e == ["mat", "lat"]  # no class columns unless selected
    assert env_matrix(ds, predictors=[])[1] == names_all  # [] = everything


def test_unknown_predictor_names_are_reported(world):
    ds = read_dataset(world)
    with pytest.raises(ValueError, match=r"data\.predictors: expected .*found unknown \['soil'\]"):
        check_predictors(ds, ["mat", "soil"], key="data.predictors")
    with pytest.raises(ValueError, match="vegetation_class"):
        env_matrix(ds.drop_vars("vegetation_class"), predictors=["vegetation_class"])


# -- configuration ------------------------------------------------------------------------
def test_bad_name_is_a_config_error_for_synthetic_data():
    with pytest.raises(ConfigError) as e:
        config_with(_base(), {"data.predictors": ["mat", "soil_ph"]})
    text = str(e.value)
    assert "data.predictors" in text and "'soil_ph'" in text
    assert "'mat'" in text and "'vegetation_class'" in text  # what was expected
    with pytest.raises(ConfigError, match=r"data\.predictors.*more than once"):
        config_with(_base(), {"data.predictors": ["mat", "mat"]})
    with pytest.raises(ConfigError, match=r"data\.predictors\[0\]: expected a non-empty"):
        config_with(_base(), {"data.predictors": [""]})


def test_bad_name_for_a_dataset_fails_before_fitting(world, tmp_path):
    from differland_bayes.bayes.fit import run_fit

    cfg = config_with(_base(), {**TINY, "data.source": str(world),
                                "data.predictors": ["mat", "soil_ph"]})  # fmt: skip
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=r"data\.predictors: .*'mat'.*found unknown \['soil_ph'\]"):
        run_fit(cfg, out, progress_bar=False)
    assert not out.exists() and not any(tmp_path.iterdir())


# -- a fit with a subset ------------------------------------------------------------------
def test_run_stores_the_selection(run_dir, world):
    meta = json.loads((run_dir / "data_meta.json").read_text())
    classes = sorted(set(read_dataset(world)["vegetation_class"].values.astype(str)))
    assert meta["predictors"] == PREDICTORS
    assert meta["features"] == ["map", "mat", *(f"vegetation_class={c}" for c in classes)]
    assert meta["classes"] == classes
    assert len(meta["env_mean"]) == len(meta["features"])
    assert load_config(run_dir / "config.toml").data.predictors == tuple(PREDICTORS)


def test_new_sites_are_encoded_with_the_runs_columns(run_dir, new_world):
    from differland_bayes.bayes.fit import restore_fit
    from differland_bayes.bayes.predict import encode_sites
    from differland_bayes.bayes.run import env_spec

    fit = restore_fit(run_dir)
    spec = env_spec(fit.meta)
    assert spec.predictors == PREDICTORS
    ds = read_dataset(new_world)
    _, env = encode_sites(ds, fit.process, spec)
    x, names = env_matrix(ds, classes=spec.classes, predictors=PREDICTORS)
    assert names == spec.features
    expected = (x - spec.env_mean) / np.where(spec.env_sd > 0, spec.env_sd, 1.0)
    np.testing.assert_allclose(np.asarray(env), expected, rtol=1e-6)


def test_predict_and_datatree_reuse_the_selection(run_dir, new_world, tmp_path):
    from differland_bayes.analysis.datatree import to_datatree

    out = tmp_path / "pred.nc"
    args = ["predict", str(run_dir), "--data", str(new_world), "--out", str(out)]
    assert main(["-q", *args, "--samples", str(SAMPLES)]) == 0
    pred = read_dataset(out)
    assert not bool(pred["fitted"].any()) and np.all(np.isfinite(pred["gpp"].values))
    meta = json.loads((run_dir / "data_meta.json").read_text())
    dt = to_datatree(run_dir, data=read_dataset(new_world), num_samples=SAMPLES,
                     progress_bar=False)  # fmt: skip
    const = dt["constant_data"]
    assert list(const["input"].values) == meta["features"]
    assert const["network_input"].shape == (3, len(meta["features"]))
    assert "elevation" in list(const["feature"].values)  # the analyses still see all of env


# -- predictors derived from the forcing --------------------------------------------------
def test_derive_names_are_checked():
    with pytest.raises(ConfigError) as e:
        config_with(_base(), {"data.derive": ["aridity", "soil_ph"]})
    text = str(e.value)
    assert "data.derive" in text and "'soil_ph'" in text and "'t_seasonality'" in text


def test_derived_predictors_are_fitted_and_computed_for_new_sites(world, new_world, tmp_path):
    from differland_bayes.bayes.fit import load_dataset
    from differland_bayes.io import derive_predictors

    derived = ["aridity", "t_seasonality"]
    cfg = config_with(_base(), {**TINY, "data.source": str(world), "data.derive": derived,
                                "data.predictors": [*derived, "vegetation_class"]})  # fmt: skip
    ds, _ = load_dataset(cfg)
    expected = derive_predictors(read_dataset(world), tuple(derived))
    for name in derived:
        np.testing.assert_allclose(ds["env"].sel(feature=name).values,
                                   expected["env"].sel(feature=name).values)  # fmt: skip
    assert "aridity" not in list(read_dataset(new_world)["feature"].values)  # not in the file

    config = tmp_path / "derive.toml"
    config.write_text(config_to_toml(cfg), encoding="utf-8")
    run = tmp_path / "run"
    assert main(["-q", "fit", str(config), "--out", str(run), "--steps", "3", "--no-progress"]) == 0
    meta = json.loads((run / "data_meta.json").read_text())
    assert meta["features"][:2] == derived
    # the new sites' file lacks the derived predictors: predict computes them from its forcing
    out = tmp_path / "pred.nc"
    args = ["predict", str(run), "--data", str(new_world), "--out", str(out)]
    assert main(["-q", *args, "--samples", "4"]) == 0
    assert np.all(np.isfinite(read_dataset(out)["gpp"].values))
    # the same from Python, and the DataTree of the report
    from differland_bayes.analysis.datatree import to_datatree
    from differland_bayes.bayes.predict_dataset import predict_to_dataset

    pred = predict_to_dataset(run, read_dataset(new_world), num_samples=4)
    np.testing.assert_allclose(pred["gpp"].values, read_dataset(out)["gpp"].values, rtol=1e-6)
    dt = to_datatree(run, data=read_dataset(new_world), num_samples=4, progress_bar=False)
    assert list(dt["constant_data"]["input"].values)[:2] == derived
