"""Single-step and 24-month golden values of the published DALEC993 (float32, spec App. A)."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest

from differland_bayes.process import get_model, simulate
from differland_bayes.process.components.acm import acm_drivers, acm_gpp
from differland_bayes.process.components.phenology import pulse


@pytest.fixture(scope="module")
def golden(reference_dir):
    path = reference_dir / "differland-golden-dalec993.json"
    if not path.exists():
        pytest.fail(f"{path} missing")
    return json.loads(path.read_text())


def _theta(g):
    return np.r_[
        g["dalec_parameters"],
        g["pheno_parameters_Bday_Fday"],
        g["initial_pools_lab_fol_root_wood_litter_som_water"],
    ].astype(np.float32)


def test_golden_parameters_are_the_z0_defaults(golden):
    model = get_model("dalec993")
    np.testing.assert_allclose(_theta(golden)[:31], model.table.default[:31], rtol=2e-7)


def test_one_step(golden):
    model = get_model("dalec993")
    params, pools = model.split(_theta(golden))
    met = np.asarray(golden["one_step"]["met"], np.float32)[None, :]
    out = simulate(model, params, pools, model.forcing_from_matrix(met))
    assert out.gpp.dtype == jnp.float32
    for name, value in golden["one_step"]["outputs"].items():
        np.testing.assert_allclose(
            float(getattr(out, name)[0]), value, rtol=1e-5, atol=1e-7, err_msg=name
        )
    np.testing.assert_allclose(
        [
            float(getattr(out, f"next_{p}_pool")[0])
            for p in ("labile", "foliar", "root", "wood", "litter", "som", "water")
        ],
        golden["one_step"]["new_pools"],
        rtol=1e-5,
    )


def test_24_month_run(golden):
    model = get_model("dalec993")
    params, pools = model.split(_theta(golden))
    met = np.asarray(golden["run24"]["met"], np.float32)
    out = simulate(model, params, pools, model.forcing_from_matrix(met))
    ref = np.asarray(golden["run24"]["outputs"])
    for j, name in enumerate(golden["run24"]["output_names"]):
        ours = np.asarray(getattr(out, name))
        scale = max(np.abs(ref[:, j]).max(), 1e-12)
        assert np.max(np.abs(ours - ref[:, j])) <= 1e-5 * scale, name


@pytest.mark.parametrize(
    "args, expected",
    [
        ((45, 180, 25, 12, 3, 20, 400, 20), 8.78870),
        ((0, 100, 30, 22, 5, 18, 410, 40), 13.25979),
        ((-30, 15, 28, 14, 1, 25, 380, 10), 1.92525),
        ((70, 355, -5, -15, 0.5, 0.5, 400, 15), 0.0160031),
    ],
)
def test_acm_alone(args, expected):
    lat, doy, tmax, tmin, lai, sw, ca, ce = args
    drv = acm_drivers(tmin, tmax, sw, ca, doy, lat)
    np.testing.assert_allclose(float(acm_gpp(lai, ce, drv)), expected, rtol=1e-5)


def test_phenology_pulses():
    t = jnp.array([0.0, 100.0, 200.0, 300.0, 400.0])
    lff = pulse(t, 1.5, 60.0, 700.0)
    lrf = pulse(t, 1.5, 45.0, 500.0)
    np.testing.assert_allclose(
        lff, [0.0121164, 6.31842e-5, 1.59575e-5, 0.00460994, 0.00337738], rtol=1e-4
    )
    np.testing.assert_allclose(
        lrf, [1.30158e-7, 0.00319731, 0.0010895, 6.11144e-8, 3.30819e-6], rtol=1e-4
    )


def test_pulse_sheds_one_over_lifespan_per_year():
    days = jnp.arange(0.0, 365.25 * 4, 0.25)
    for lifespan in (1.2, 2.0, 5.0):
        for period, rtol in ((30.4375, 0.01), (60.0, 0.05)):
            rate = pulse(days, lifespan, period, 800.0)
            per_year = float(jnp.sum(rate) * 0.25 / 4)
            # The Gaussian integrates to ln(L/(L-1)) per year (a continuous loss of 1/L of
            # the pool); the periodic sine mapping widens the tails by a few per cent for
            # wide pulses.
            expected = np.log(lifespan / (lifespan - 1))
            np.testing.assert_allclose(per_year, expected, rtol=rtol)
            assert per_year >= expected
