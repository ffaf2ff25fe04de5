"""The canonical dataset module: masks, predictor matrix, loss-free NetCDF/Zarr I/O."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from differland_bayes.dataset import (
    CONVENTIONS,
    STREAMS,
    add_masks,
    env_matrix,
    observed_streams,
    read_dataset,
    write_dataset,
)


def _small():
    t = pd.date_range("2005-01-01", periods=6, freq="MS")
    gpp = np.array([[1, np.nan, 2, 3, 4, 5], [1, 2, 3, np.nan, 4, 5.0]])
    return xr.Dataset(
        {
            "gpp": (("site", "time"), gpp, {"units": STREAMS["gpp"].units}),
            "gpp_unc": (("site", "time"), np.abs(gpp) * 0.1, {"units": STREAMS["gpp"].units}),
            "env": (("site", "feature"), np.array([[1.0, 2.0], [3.0, 4.0]])),
            "split_time": (("site", "time"), np.ones((2, 6), np.int8)),
            "split_site": ("site", np.array(["train", "test"])),
        },
        coords={
            "site": ["a", "b"],
            "time": t,
            "feature": ["mat", "map"],
            "feature_units": ("feature", ["degC", "mm yr-1"]),
            "vegetation_class": ("site", ["ENF", "GRA"]),
            "lat": ("site", [45.0, -10.0], {"units": "degrees_north"}),
        },
    )


def test_masks_follow_finite_values_and_never_mark_nan():
    ds = _small()
    ds["gpp_mask"] = (("site", "time"), np.ones((2, 6), bool))  # claims all observed
    out = add_masks(ds)
    np.testing.assert_array_equal(out.gpp_mask, np.isfinite(ds.gpp))
    assert out.gpp_mask.dtype == bool
    assert observed_streams(out) == ["gpp"]
    assert "gpp_mask" not in _small()  # input untouched


def test_env_matrix_one_hot_encodes_the_category():
    x, names = env_matrix(_small())
    assert names == ["mat", "map", "vegetation_class=ENF", "vegetation_class=GRA"]
    np.testing.assert_array_equal(x, [[1, 2, 1, 0], [3, 4, 0, 1]])
    x2, names2 = env_matrix(_small(), one_hot=False)
    assert names2 == ["mat", "map"] and x2.shape == (2, 2)


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_round_trip_is_lossless_and_refuses_to_clobber(tmp_path, suffix):
    ds = add_masks(_small())
    path = tmp_path / f"world{suffix}"
    write_dataset(ds, path)
    back = read_dataset(path)
    xr.testing.assert_identical(back.drop_attrs(), ds.drop_attrs())
    assert back.attrs["conventions"] == CONVENTIONS
    for name in ds.variables:
        assert back[name].attrs == ds[name].attrs, name
    with pytest.raises(FileExistsError, match="--overwrite"):
        write_dataset(ds, path)
    assert read_dataset(path).gpp.shape == (2, 6)  # the original is intact
    write_dataset(ds.isel(time=slice(0, 3)), path, overwrite=True)
    assert read_dataset(path).sizes["time"] == 3
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp leftovers


def test_bad_paths_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="expected a .nc or .zarr path"):
        write_dataset(_small(), tmp_path / "x.csv")
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_dataset(tmp_path / "missing.nc")
