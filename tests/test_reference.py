"""Reproduction of the published models: every output, every step, every case (float64)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from _reference import load_reference_groups, reference_files, run_group

pytestmark = pytest.mark.reference
TOLERANCE = 1e-6  # of each output's largest magnitude over the run


def test_reference_folder_has_files(reference_dir):
    files = reference_files(reference_dir)
    assert files, f"no *.nc reference files in {reference_dir}"


def test_every_case_every_output_every_step(reference_dir):
    files = reference_files(reference_dir)
    assert files
    failures = []
    n_cases = 0
    with jax.enable_x64(True):
        for path in files:
            for group in load_reference_groups(path):
                out = run_group(group)
                n_cases += len(group.cases)
                for j, name in enumerate(group.output_names):
                    ours = np.asarray(getattr(out, name))
                    assert ours.dtype == np.float64
                    ref = group.outputs[:, :, j]
                    scale = np.maximum(np.abs(ref).max(axis=1, keepdims=True), 1e-12)
                    err = np.abs(ours - ref) / scale
                    for k in np.flatnonzero(err.max(axis=1) > TOLERANCE):
                        t = int(np.argmax(err[k]))
                        failures.append(
                            f"{path.name} case {group.cases[k]} ({group.draw_kind[k]}): "
                            f"{name} step {t}: ours {ours[k, t]!r} vs {ref[k, t]!r} "
                            f"(rel. {err[k, t]:.2e})"
                        )
    assert n_cases > 0
    assert not failures, f"{len(failures)} mismatches:\n" + "\n".join(failures[:30])


def test_reference_transform_matches_stored_physical_values(reference_dir):
    with jax.enable_x64(True):
        for path in reference_files(reference_dir):
            for group in load_reference_groups(path):
                theta = np.asarray(group.model.table.to_physical(group.z))
                # Some files store physical values computed in float32 from z.
                np.testing.assert_allclose(theta, group.theta, rtol=3e-7)


def test_reference_file_parameter_names_match_our_table(reference_dir):
    import xarray as xr

    for path in reference_files(reference_dir):
        with xr.open_dataset(path) as ds:
            group = load_reference_groups(path)[0]
            names = [str(v) for v in ds.parameter.values]
            if "phenology_parameter" in ds.dims:
                names += [str(v) for v in ds.phenology_parameter.values]
            names += [str(v) for v in ds.pool.values]
            assert tuple(names) == group.model.table.names
            for bound in ("min", "max"):
                keys = [f"{g}_{bound}" for g in ("parameter", "phenology", "pool")]
                parts = [ds[k].values for k in keys if k in ds]
                if parts:  # files that store bounds must agree with our table
                    ours = group.model.table.lower if bound == "min" else group.model.table.upper
                    np.testing.assert_allclose(
                        np.concatenate(parts), ours, rtol=1e-7
                    )  # stored as float32
            assert set(group.output_names) == set(group.model.Outputs._fields)
