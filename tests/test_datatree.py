"""The DataTree of a run: groups, dims, coords and units of docs/analysis.md; round trip."""

from __future__ import annotations

import re

import numpy as np
import pytest
import xarray as xr

from _analysis_runs import FREE, SAMPLES, tiny_datatree, tiny_runs
from conftest import REPO
from differland_bayes.analysis.datatree import GROUPS, read_datatree, write_datatree
from differland_bayes.dataset import STREAMS
from differland_bayes.process import DALEC993_TABLE

DOC = REPO / "docs" / "analysis.md"
STREAM_NAMES = ["gpp", "nee", "et", "lai"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "analysis-runs"


@pytest.fixture(scope="module")
def dt(root):
    return tiny_datatree(root)


def _contract() -> list[tuple[str, str, tuple[str, ...], str]]:
    """Rows ``(group, variable, dims, units)`` of the layout table of docs/analysis.md."""
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] in GROUPS:
            dims = tuple(d.strip() for d in cells[2].split(","))
            rows.append((cells[0], cells[1], dims, cells[3]))
    return rows


def test_docs_table_is_parsed():
    rows = _contract()
    assert len(rows) >= 15
    assert {r[0] for r in rows} >= {
        "posterior",
        "prior",
        "posterior_predictive",
        "observed_data",
        "log_likelihood",
        "constant_data",
        "loss",
    }


def test_groups_dims_and_units_are_those_of_the_docs(dt):
    assert set(dt.children) == set(GROUPS)
    for group, var, dims, units in _contract():
        names = [var.replace("<stream>", s) for s in STREAM_NAMES] if "<stream>" in var else [var]
        for name in names:
            assert name in dt[group].data_vars, (group, name)
            da = dt[group][name]
            assert da.dims == dims, (group, name, da.dims)
            expected = units
            if "<stream>" in units:
                expected = STREAMS[name.split("_")[0]].units
            if expected:
                assert da.attrs.get("units") == expected, (group, name, da.attrs.get("units"))


def test_sizes_coords_and_parameter_units(dt):
    post = dt["posterior"]
    assert post.sizes == {"sample": SAMPLES, "site": 8, "parameter": len(FREE)}
    names = [str(n) for n in post["parameter"].values]
    assert sorted(names) == sorted(FREE)
    for i, n in enumerate(names):
        row = DALEC993_TABLE[n]
        assert post["parameter_units"].values[i] == row.units
        assert post["parameter_lower"].values[i] == row.lower
        assert post["parameter_upper"].values[i] == row.upper
        for group in ("posterior", "prior"):
            values = dt[group]["parameters"].sel(parameter=n).values
            assert np.all((values >= row.lower) & (values <= row.upper)), (group, n)
    for group in (
        "posterior",
        "prior",
        "posterior_predictive",
        "observed_data",
        "log_likelihood",
        "constant_data",
    ):
        coords = dt[group].coords
        assert {"site", "lat", "lon", "vegetation_class", "fitted", "heldout"} <= set(coords)
        assert coords["fitted"].dtype == bool and bool(coords["fitted"].all())
    assert int(dt["posterior"]["heldout"].sum()) == 2  # holdout_fraction 0.25 of 8 sites
    assert np.all(dt["posterior"]["sigma"].values > 0)
    assert "posterior draws" in dt["prior"].attrs["prior_source"]
    assert dt.attrs["inference"] == "svi" and dt.attrs["num_samples"] == SAMPLES
    assert dt["network"].attrs["mode"] == "point" and len(dt["network"].data_vars) >= 4


def test_observations_masks_and_log_likelihood_agree(dt):
    split = dt["observed_data"]["split_time"].values
    assert set(np.unique(split)) <= {0, 1, 2}
    held = dt["observed_data"]["heldout"].values
    for s in STREAM_NAMES:
        obs = dt["observed_data"][s].values
        ll = dt["log_likelihood"][s].values
        observed = np.isfinite(obs)
        assert observed.sum() > 50
        assert np.all(np.isnan(ll[:, ~observed])) and np.all(np.isfinite(ll[:, observed]))
        in_fit = dt["constant_data"][f"{s}_in_fit"].values
        assert in_fit.any() and not np.any(in_fit & ~observed)
        assert np.all(split[in_fit] == 1) and not np.any(in_fit[held])
        assert np.all(np.isfinite(dt["posterior_predictive"][s].values))
        # the posterior predictive is centred on the data: its mean explains most variance
        mean = dt["posterior_predictive"][s].mean("sample").values
        resid = np.nanmean((mean - obs) ** 2)
        assert resid < np.nanvar(obs), s


def test_loss_group_holds_the_run_losses(dt):
    loss = dt["loss"]
    assert loss.sizes["step"] == 30 and np.all(np.isfinite(loss["loss"].values))
    assert list(loss["heldout_step"].values) == [10, 20, 30]
    assert loss.attrs["steps"] == 30
    assert {"t_min", "precip"} <= set(dt["constant_data"].data_vars)
    assert dt["constant_data"]["precip"].attrs["units"] == "mm d-1"


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_round_trip(dt, tmp_path, suffix):
    path = write_datatree(dt, tmp_path / f"tree{suffix}")
    back = read_datatree(path)
    assert set(back.children) == set(dt.children)
    for group in dt.children:
        xr.testing.assert_identical(back[group].to_dataset(), dt[group].to_dataset())
    assert back.attrs == dt.attrs
    with pytest.raises(FileExistsError, match="already exists"):
        write_datatree(dt, path)
    write_datatree(dt, path, overwrite=True)


def test_write_refuses_unknown_suffix(dt, tmp_path):
    with pytest.raises(ValueError, match=re.escape("expected a .nc or .zarr path")):
        write_datatree(dt, tmp_path / "tree.txt")


def test_runs_fixture_paths(root):
    paths = tiny_runs(root)
    assert (paths["run_a"] / "report" / "datatree.nc").is_file()


def test_prior_and_posterior_residuals_follow_the_model(dt):
    # z = z_loc + sigma * eps (no scale head, sigma_floor 0): eps ~ N(0, 1) in the prior
    post, prior = dt["posterior"], dt["prior"]
    eps_prior = (prior["z"] - post["z_loc"]) / post["sigma"]
    assert float(eps_prior.mean()) == pytest.approx(0.0, abs=0.1)
    assert float(eps_prior.std()) == pytest.approx(1.0, abs=0.1)
    table = DALEC993_TABLE
    lower = np.array([table[str(n)].lower for n in post["parameter"].values])
    upper = np.array([table[str(n)].upper for n in post["parameter"].values])
    u = np.arctan(post["z"].values) / np.pi + 0.5
    assert post["parameters"].values == pytest.approx(lower * (upper / lower) ** u, rel=1e-4)
