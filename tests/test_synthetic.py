"""Synthetic worlds: reproducible, truth stored and consistent, canonical, scalable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from differland_bayes.cli import main
from differland_bayes.dataset import STREAMS, env_matrix, read_dataset, write_dataset
from differland_bayes.forcing import FORCING_VARIABLES
from differland_bayes.process import MODELS
from differland_bayes.simulation import simulate_dataset
from differland_bayes.synthetic import (
    DEFAULT_NOISE,
    GENERATOR_VERSION,
    Relationship,
    default_relationship,
    synthesize,
    synthesize_to_zarr,
)

SEED = 7
N_SITES, YEARS = 64, 6  #: the shared world
SMALL = {"years": 2}  #: shape of the small worlds (8 sites x 24 months share one compile)
STREAMS_USED = ["gpp", "nee", "et", "lai", "biomass"]
FORCING = [k for k, (_, required, _) in FORCING_VARIABLES.items() if required]
MODEL_OUTPUT = {"gpp": "gpp", "nee": "nee", "et": "ET", "lai": "lai"}


@pytest.fixture(scope="module")
def world() -> xr.Dataset:
    return synthesize(N_SITES, years=YEARS, seed=SEED, streams=STREAMS_USED)


# -- reproducibility ----------------------------------------------------------------------
def test_same_seed_gives_the_same_world_and_another_seed_another(world):
    again = synthesize(N_SITES, years=YEARS, seed=SEED, streams=STREAMS_USED)
    xr.testing.assert_identical(again, world)
    other = synthesize(N_SITES, years=YEARS, seed=SEED + 1, streams=STREAMS_USED)
    assert not np.allclose(other["env"], world["env"])
    assert not np.array_equal(other["gpp_mask"], world["gpp_mask"])
    assert not np.allclose(other["true_z"], world["true_z"])
    assert world.attrs["seed"] == SEED and other.attrs["seed"] == SEED + 1


def test_a_site_does_not_depend_on_how_many_sites_are_generated(world):
    few = synthesize(8, years=YEARS, seed=SEED, streams=STREAMS_USED)
    first = world.isel(site=slice(0, 8))
    for name in [*FORCING, "env", "true_z", "gpp", "gpp_mask", "lai", "lat", "vegetation_class"]:
        np.testing.assert_array_equal(few[name].values, first[name].values, err_msg=name)


# -- the truth ----------------------------------------------------------------------------
def test_true_parameters_are_the_bounded_transform_of_true_z(world):
    table = MODELS[world.attrs["model"]].table
    z = world["true_z"].transpose("site", "parameter").values
    theta = world["true_parameters"].transpose("site", "parameter").values
    np.testing.assert_allclose(theta, np.asarray(table.to_physical(z)), rtol=2e-5)
    table.check_physical(theta)
    assert list(world["parameter"].values) == list(table.names)
    assert list(world["parameter_units"].values) == list(table.units)


def test_relationship_on_env_reproduces_true_z_minus_residual(world):
    rel = Relationship.from_dataset(world)
    default = default_relationship()
    assert rel.parameters == default.parameters
    np.testing.assert_array_equal(rel.tanh, default.tanh)
    np.testing.assert_array_equal(rel.class_offset, default.class_offset)
    assert world.attrs["relationship"] == default.describe()
    assert "tanh(x_mat)" in world.attrs["relationship"]

    varies = world["parameter_varies"].values
    assert set(world["parameter"].values[varies]) == set(rel.parameters)
    assert world.attrs["varying_parameters"].split() == list(world["parameter"].values[varies])
    expected = rel.mean_z(
        world["env"].transpose("site", "feature").values,
        world["feature"].values,
        world["vegetation_class"].values,
    )
    truth = (world["true_z"] - world["true_z_residual"]).sel(parameter=list(rel.parameters))
    np.testing.assert_allclose(truth.transpose("site", "parameter").values, expected, atol=1e-12)
    # residual sd as stated; the other parameters sit at their baseline
    eps = world["true_z_residual"].sel(parameter=list(rel.parameters)) / xr.DataArray(
        rel.residual_sd, dims="parameter", coords={"parameter": list(rel.parameters)}
    )
    assert 0.85 < float(eps.std()) < 1.15
    fixed = world.sel(parameter=~world["parameter_varies"])
    np.testing.assert_array_equal(fixed["true_z_residual"], 0.0)
    np.testing.assert_allclose(
        fixed["true_z"], np.broadcast_to(fixed["baseline_z"].values, fixed["true_z"].shape)
    )


def test_relationship_is_nonlinear_in_the_predictors(world):
    """A linear model in the standardised predictors + class dummies misses a lot."""
    rel = Relationship.from_dataset(world)
    x = rel.standardize(world["env"].transpose("site", "feature").values, world["feature"].values)
    one_hot, _ = env_matrix(world.drop_vars("env"))
    design = np.column_stack([np.ones(N_SITES), x, one_hot])
    for name in ("canopy_efficiency", "Q10"):
        z = (world["true_z"] - world["true_z_residual"]).sel(parameter=name).values
        coef, *_ = np.linalg.lstsq(design, z, rcond=None)
        r2 = 1.0 - np.var(z - design @ coef) / np.var(z)
        assert float(np.std(z)) > 0.2 and r2 < 0.95, (name, r2)
    mat = world["env"].sel(feature="mat")
    z = world["true_z"].sel(parameter="canopy_efficiency")
    assert np.corrcoef(mat, z)[0, 1] > 0.3  # warmer sites: more efficient canopies


def test_other_parameters_can_be_drawn_independently():
    ds = synthesize(8, seed=SEED, other_parameters="random", other_sd=0.2, **SMALL)
    fixed = ds.sel(parameter=~ds["parameter_varies"])
    sd = float(fixed["true_z_residual"].std())
    assert 0.15 < sd < 0.25
    np.testing.assert_allclose(
        fixed["true_z"] - fixed["true_z_residual"],
        np.broadcast_to(fixed["baseline_z"].values, fixed["true_z"].shape),
        atol=1e-12,
    )


def test_free_parameters_choose_which_parameters_vary():
    ds = synthesize(
        8, seed=SEED, free_parameters=["canopy_efficiency", "LCMA"], include_truth=False, **SMALL
    )
    assert "gpp" in ds and "true_gpp" not in ds
    assert list(ds["parameter"].values[ds["parameter_varies"].values]) == [
        "canopy_efficiency",
        "LCMA",
    ]
    assert list(ds["varying_parameter"].values) == ["canopy_efficiency", "LCMA"]
    assert float(ds["true_z"].sel(parameter="canopy_efficiency").std()) > 0
    assert float(ds["true_z"].sel(parameter="Q10").std()) == 0


# -- simulation and observations ------------------------------------------------------------
def test_truth_series_are_the_simulation_of_the_true_parameters(world):
    sim = simulate_dataset(
        world.attrs["model"],
        world[FORCING].assign_coords(lat=world["lat"]),
        world["true_parameters"].transpose("site", "parameter").values,
    )
    for stream, output in MODEL_OUTPUT.items():
        np.testing.assert_allclose(
            world[f"true_{stream}"], sim[output].transpose("site", "time"), rtol=1e-5, atol=1e-5
        )
    live = sum(sim[f"next_{p}_pool"] for p in ("labile", "foliar", "root", "wood"))
    np.testing.assert_allclose(world["true_biomass"], live, rtol=1e-5)
    assert float(world["true_lai"].mean()) > 0.5  # a world with vegetation


@pytest.mark.parametrize("stream", STREAMS_USED)
def test_observations_are_truth_plus_noise_at_the_stated_scale(world, stream):
    rel, floor = DEFAULT_NOISE[stream]
    truth = world[f"true_{stream}"]
    mask = world[f"{stream}_mask"]
    unc = world[f"{stream}_unc"].where(mask)
    np.testing.assert_allclose(unc.where(mask), (rel * abs(truth) + floor).where(mask), rtol=1e-5)
    resid = ((world[stream] - truth) / unc).values[mask.values]
    n = resid.size
    assert n > (200 if stream == "biomass" else 3000)
    assert abs(resid.mean()) < 4.0 / np.sqrt(n)
    assert abs(resid.std() - 1.0) < (0.15 if stream == "biomass" else 0.05)
    assert world[stream].attrs["units"] == STREAMS[stream].units


def test_masks_have_the_requested_gap_fraction(world):
    for stream in ["gpp", "nee", "et", "lai"]:
        mask = world[f"{stream}_mask"]
        assert mask.dtype == bool
        np.testing.assert_array_equal(mask, np.isfinite(world[stream]))
        np.testing.assert_array_equal(mask, np.isfinite(world[f"{stream}_unc"]))
        assert abs(1.0 - float(mask.mean()) - 0.3) < 0.02, stream
    # streams are missing at different steps, tower outages are long
    assert not np.array_equal(world["gpp_mask"], world["et_mask"])
    runs = [_longest_run(~m) for m in world["gpp_mask"].values]
    assert max(runs) >= 4
    # biomass: annual, on the last month of each year
    year_end = world["time"].dt.month.values == 12
    assert not world["biomass_mask"].values[:, ~year_end].any()
    assert abs(1.0 - float(world["biomass_mask"].values[:, year_end].mean()) - 0.3) < 0.08


def test_winter_steps_are_missing_more_often(world):
    t_mean = 0.5 * (world["t_min"] + world["t_max"])
    cold = (t_mean < 0).values
    assert cold.sum() > 50
    missing = ~world["lai_mask"].values
    assert missing[cold].mean() > missing[~cold].mean()


def test_per_stream_gap_fractions():
    ds = synthesize(
        64, years=YEARS, seed=SEED, streams=["gpp", "lai"], gap_fraction={"gpp": 0.1, "lai": 0.6}
    )
    assert abs(1 - float(ds["gpp_mask"].mean()) - 0.1) < 0.02
    assert abs(1 - float(ds["lai_mask"].mean()) - 0.6) < 0.02


def _longest_run(x: np.ndarray) -> int:
    best = run = 0
    for v in x:
        run = run + 1 if v else 0
        best = max(best, run)
    return best


# -- canonical layout -----------------------------------------------------------------------
def test_canonical_layout(world):
    assert world["site"].dtype.kind == "U" and world.sizes["site"] == N_SITES
    assert world["site"].to_index().is_unique
    time = pd.DatetimeIndex(world["time"].values)
    assert (
        len(time) == 12 * YEARS and (time.day == 1).all() and time[0] == pd.Timestamp("2001-01-01")
    )
    assert world.attrs["step"] == "monthly"
    assert world.attrs["conventions"] == "differland-canonical-1"
    for name in ("model", "mode", "seed", "generator_version", "differland_bayes_version"):
        assert name in world.attrs
    assert world.attrs["generator_version"] == GENERATOR_VERSION
    for name in FORCING:
        assert world[name].dims == ("site", "time")
        assert np.isfinite(world[name]).all()
    assert world["t_min"].attrs["units"] == "degC" and world["swrad"].attrs["units"] == "MJ m-2 d-1"
    assert (world["t_min"] <= world["t_max"]).all() and (world["precip"] >= 0).all()
    for stream in STREAMS_USED:
        for suffix in ("", "_mask", "_unc"):
            assert world[stream + suffix].dims == ("site", "time")
    for name, da in world.data_vars.items():
        assert "units" in da.attrs and "long_name" in da.attrs, name
    assert world["lat"].attrs["units"] == "degrees_north"
    assert world["lon"].attrs["units"] == "degrees_east"
    assert (abs(world["lat"]) <= 90).all() and (abs(world["lon"]) <= 180).all()
    assert world["env"].dims == ("site", "feature")
    assert list(world["feature"].values) == ["mat", "map", "elevation", "forest_age", "lat"]
    assert list(world["feature_units"].values) == ["degC", "mm yr-1", "m", "yr", "degrees_north"]
    assert set(world["vegetation_class"].values) <= {
        "ENF",
        "EBF",
        "DBF",
        "MF",
        "OSH",
        "SAV",
        "GRA",
        "CRO",
    }


def test_env_is_consistent_with_the_forcing(world):
    days = np.asarray(world["time"].dt.days_in_month, float)
    w = days / days.sum()
    t_mean = 0.5 * (world["t_min"].values.astype(float) + world["t_max"].values)
    np.testing.assert_allclose(world["env"].sel(feature="mat"), t_mean @ w, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        world["env"].sel(feature="map"),
        world["precip"].values.astype(float) @ w * 365.25,
        rtol=1e-6,
    )
    np.testing.assert_array_equal(world["env"].sel(feature="lat"), world["lat"])
    # warmer at low latitudes
    assert np.corrcoef(abs(world["lat"]), world["env"].sel(feature="mat"))[0, 1] < -0.5


def test_splits(world):
    split = world["split_time"]
    assert split.dtype == np.int8
    train = (world["time"].dt.year < 2001 + YEARS // 2).values
    np.testing.assert_array_equal(split.values, np.where(train, 1, 2)[None].repeat(N_SITES, 0))
    counts = pd.Series(world["split_site"].values).value_counts()
    assert counts.to_dict() == {"train": 52, "validation": 6, "test": 6}


# -- I/O ----------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_round_trip(world, tmp_path, suffix):
    path = tmp_path / f"world{suffix}"
    write_dataset(world, path)
    back = read_dataset(path)
    xr.testing.assert_identical(back, world)


def test_zarr_writer_in_blocks_equals_the_in_memory_world(tmp_path):
    path = tmp_path / "big.zarr"
    out = synthesize_to_zarr(path, 300, seed=SEED, block_size=128, **SMALL)
    assert out == path
    memory = synthesize(300, seed=SEED, **SMALL)
    xr.testing.assert_identical(read_dataset(path), memory)
    assert read_dataset(path, chunks={})["gpp"].chunks[0] == (128, 128, 44)
    assert [p.name for p in tmp_path.iterdir()] == ["big.zarr"]  # no temporary leftovers

    with pytest.raises(FileExistsError, match="overwrite"):
        synthesize_to_zarr(path, 8, seed=SEED, **SMALL)
    assert read_dataset(path).sizes["site"] == 300  # untouched
    synthesize_to_zarr(path, 8, seed=SEED, overwrite=True, **SMALL)
    assert read_dataset(path).sizes["site"] == 8
    assert [p.name for p in tmp_path.iterdir()] == ["big.zarr"]
    with pytest.raises(ValueError, match=".zarr"):
        synthesize_to_zarr(tmp_path / "x.nc", 8, **SMALL)


# -- options ------------------------------------------------------------------------------
def test_daily_world_for_dalec990():
    ds = synthesize(8, model="dalec990", years=2, seed=SEED, streams=["gpp", "et", "biomass"])
    time = pd.DatetimeIndex(ds["time"].values)
    assert (
        ds.attrs["step"] == "daily"
        and len(time) == 730
        and (np.diff(time.values) == np.timedelta64(1, "D")).all()
    )
    assert ds.attrs["model"] == "dalec990"
    assert int(ds["biomass_mask"].sum(axis=1).max()) <= 2  # annual
    assert abs(1 - float(ds["gpp_mask"].mean()) - 0.3) < 0.04
    assert list(ds["parameter"].values) == list(MODELS["dalec990"].table.names)


def test_forcing_resampled_from_a_canonical_dataset(world):
    source = world.isel(site=slice(0, 5))
    ds = synthesize(8, seed=SEED + 2, resample_forcing_from=source, years=2, start_year=2010)
    assert "resampled" in ds.attrs["forcing"]
    for i in range(ds.sizes["site"]):
        src = source.sel(site=str(ds["forcing_source_site"].values[i]))
        assert ds["lat"].values[i] == src["lat"].values
        assert ds["vegetation_class"].values[i] == src["vegetation_class"].values
        src_years = src["t_max"].values.reshape(YEARS, 12)
        for year in ds["t_max"].values[i].reshape(2, 12):
            assert any(np.array_equal(year, y) for y in src_years)
    assert float(ds["co2"].isel(time=-1).mean()) > float(source["co2"].isel(time=-1).mean())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_sites": 0}, "n_sites"),
        ({"seed": -1}, "seed"),
        ({"streams": ["swc"]}, "streams"),
        ({"model": "dalec990", "streams": ["sif"]}, "streams"),
        ({"gap_fraction": 1.5}, "gap_fraction"),
        ({"free_parameters": ["nope"]}, "no relationship"),
        ({"site_split": (0.5, 0.2, 0.2)}, "site_split"),
        ({"noise": {"gpp": (-0.1, 0.2)}}, "noise"),
        ({"other_parameters": "sometimes"}, "other_parameters"),
    ],
)
def test_invalid_arguments_are_reported(kwargs, match):
    kwargs = {"n_sites": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        synthesize(kwargs.pop("n_sites"), **kwargs)


# -- command line ---------------------------------------------------------------------------
def test_cli_writes_a_world_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "world.nc"
    argv = ["synthesize", "--sites", "8", "--years", "2", "--seed", str(SEED), "--out", str(out)]
    assert main(argv) == 0
    ds = read_dataset(out)
    assert ds.sizes["site"] == 8 and ds.sizes["time"] == 24
    assert ds.attrs["seed"] == SEED
    log = capsys.readouterr().err
    assert "8 sites x 24 monthly steps" in log and "canopy_efficiency" in log and "observed" in log
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "differland: error:" in err and "already exists" in err and "Traceback" not in err
    assert main([*argv, "--overwrite"]) == 0
    zarr = tmp_path / "world.zarr"
    assert main([*argv[:-1], str(zarr), "--block-size", "8"]) == 0
    xr.testing.assert_identical(read_dataset(zarr), ds)
    assert main([*argv[:-1], str(tmp_path / "world.csv")]) == 2
