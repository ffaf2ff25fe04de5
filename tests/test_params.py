"""Parameter tables and the bounded transform."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from differland_bayes import ParamInfo, ParamTable, to_physical, to_unconstrained
from differland_bayes.process import MODELS, get_model


@pytest.mark.parametrize(
    "z, expected", [(-3.0, 6.3297), (-1.0, 8.8914), (0.0, 15.8114), (0.5, 22.2103), (2.0, 35.5948)]
)
def test_transform_golden_values(z, expected):
    np.testing.assert_allclose(float(to_physical(z, 5.0, 50.0)), expected, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_round_trip_unconstrained_physical_unconstrained(name):
    table = get_model(name).table
    with jax.enable_x64(True):
        z = jax.random.uniform(jax.random.key(0), (200, len(table)), jnp.float64, -20.0, 20.0)
        theta = table.to_physical(z)
        assert np.all(np.asarray(theta) > table.lower) and np.all(np.asarray(theta) < table.upper)
        np.testing.assert_allclose(table.to_unconstrained(theta), z, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_round_trip_physical_unconstrained_physical(name):
    table = get_model(name).table
    with jax.enable_x64(True):
        u = jax.random.uniform(jax.random.key(1), (200, len(table)), jnp.float64, 0.001, 0.999)
        theta = table.lower * (table.upper / table.lower) ** u
        back = table.to_physical(table.to_unconstrained(theta))
        np.testing.assert_allclose(back, theta, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_zero_gives_geometric_mean(name):
    table = get_model(name).table
    np.testing.assert_allclose(
        table.to_physical(jnp.zeros(len(table))), np.sqrt(table.lower * table.upper), rtol=1e-6
    )


@pytest.mark.parametrize("name", sorted(MODELS))
def test_table_order_equals_field_order(name):
    model = get_model(name)
    n_par = len(model.Params._fields)
    assert model.table.names[:n_par] == model.Params._fields
    pools = model.table.rows[n_par:]
    assert len(pools) == len(model.Pools._fields)
    assert all(r.group == "initial_pool" for r in pools)
    assert all(r.group != "initial_pool" for r in model.table.rows[:n_par])
    params, pools0 = model.split(model.table.default)
    assert isinstance(params, model.Params) and isinstance(pools0, model.Pools)
    assert model.table.group("initial_pool").names == tuple(r.name for r in pools)


def test_dalec993_table_sizes_match_the_published_heads():
    table = get_model("dalec993").table
    assert len(table.group("process")) == 31
    assert len(table.group("phenology")) == 2
    assert len(table.group("initial_pool")) == 7
    assert len(get_model("dalec990").table) == 38


def test_unflatten_flatten_round_trip():
    model = get_model("dalec993")
    sub = ParamTable(model.table.rows[: len(model.Params._fields)])
    vec = jnp.arange(len(sub), dtype=jnp.float32)
    params = sub.unflatten(vec, model.Params)
    assert float(params.Q10) == sub.names.index("Q10")
    np.testing.assert_array_equal(sub.flatten(params), vec)
    with pytest.raises(TypeError, match="do not match the table order"):
        sub.unflatten(vec, model.Pools)


def test_bad_rows_and_vectors_are_rejected():
    with pytest.raises(ValueError, match="0 < lower < upper"):
        ParamInfo("x", 2.0, 1.0, "1", "bad")
    with pytest.raises(ValueError, match="group"):
        ParamInfo("x", 1.0, 2.0, "1", "bad", group="other")
    with pytest.raises(ValueError, match="unique"):
        ParamTable([ParamInfo("x", 1.0, 2.0, "1", "a"), ParamInfo("x", 1.0, 3.0, "1", "b")])
    table = get_model("dalec993").table
    with pytest.raises(ValueError, match="last axis of length 40"):
        table.to_physical(jnp.zeros(3))
    theta = np.array(table.default)
    theta[table.names.index("Q10")] = 1.0
    with pytest.raises(ValueError, match="Q10: expected"):
        table.check_physical(theta)
    with pytest.raises(KeyError, match="unknown parameter"):
        table["nope"]


def test_unconstrained_of_bounds_is_huge():
    with jax.enable_x64(True):
        z = to_unconstrained(jnp.array([5.0, 50.0]), 5.0, 50.0)
    assert float(z[0]) < -1e12 and float(z[1]) > 1e12


def test_numpy_transform_matches_the_jax_one():
    from differland_bayes.params import to_physical, to_physical_numpy

    z = np.linspace(-30.0, 30.0, 41)
    lo, hi = 0.01, 5.0
    got = to_physical_numpy(z, lo, hi)
    assert got.dtype == np.float64 and np.all((got > lo) & (got < hi))
    np.testing.assert_allclose(got, np.asarray(to_physical(z, lo, hi)), rtol=1e-5)  # float32


# -- periodic transform of the phases ------------------------------------------------------
@pytest.mark.parametrize("name", sorted(MODELS))
def test_phases_carry_a_period_and_switch_to_the_periodic_transform(name):
    table = get_model(name).table
    assert {r.name for r in table if r.period is not None} == {"Bday", "Fday"}
    assert not table.periodic.any()  # the published transform by default
    circ = table.with_periodic_transform()
    assert circ.names == table.names and list(
        circ.names[i] for i in np.flatnonzero(circ.periodic)
    ) == [n for n in table.names if n in ("Bday", "Fday")]
    with jax.enable_x64(True):
        z = jax.random.uniform(jax.random.key(2), (300, len(table)), jnp.float64, -20.0, 20.0)
        theta = np.asarray(circ.to_physical(z))
        circ.check_physical(theta)  # inside the published bounds
        per = circ.periodic
        # non-periodic rows are untouched; periodic ones stay within one period of the default
        np.testing.assert_allclose(theta[:, ~per], np.asarray(table.to_physical(z))[:, ~per])
        lo, hi = table.default[per] - 182.625, table.default[per] + 182.625
        assert np.all((theta[:, per] >= lo) & (theta[:, per] < hi))
        # z is an angle: z and z + 2 pi k give the same value, and the inverse returns it
        # wrapped into [-pi, pi)
        shift = np.zeros(len(table))
        shift[per] = 2.0 * np.pi * 3
        np.testing.assert_allclose(circ.to_physical(z + shift), theta, atol=1e-9)
        back = np.asarray(circ.to_unconstrained(theta))
        wrapped = np.mod(np.asarray(z) + np.pi, 2.0 * np.pi) - np.pi
        np.testing.assert_allclose(back[:, per], wrapped[:, per], atol=1e-9)
        np.testing.assert_allclose(back[:, ~per], np.asarray(z)[:, ~per], rtol=1e-8, atol=1e-9)
        # any value inside the bounds maps to the angle of its phase (three windings -> one)
        i = table.names.index("Bday")
        v = np.array(table.default)
        zs = [float(circ.to_unconstrained(np.where(np.arange(len(v)) == i, d, v))[i])
              for d in (400.0, 400.0 + 365.25, 400.0 + 2 * 365.25)]  # fmt: skip
        np.testing.assert_allclose(zs, zs[0], atol=1e-9)
        assert float(circ.to_physical(circ.to_unconstrained(v))[i]) == pytest.approx(730.5)
    # d theta / d z is the period over 2 pi everywhere (no vanishing gradient near a bound)
    g = jax.grad(lambda x: circ.to_physical(x)[i])(jnp.full(len(table), 2.9))
    assert float(g[i]) == pytest.approx(365.25 / (2 * np.pi), rel=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_outputs_depend_on_the_phases_only_modulo_the_period(name):
    from differland_bayes.defaults import default_forcing_dataset, default_theta
    from differland_bayes.forcing import build_forcing
    from differland_bayes.process.simulate import simulate

    model = get_model(name)
    forcing = build_forcing(default_forcing_dataset(name, years=2), model)
    vec = np.asarray(default_theta(model), dtype=np.float64)
    b, f = model.table.names.index("Bday"), model.table.names.index("Fday")
    out = []
    for shift_b, shift_f in ((0.0, 0.0), (365.25, 0.0), (0.0, -365.25), (365.25, 365.25)):
        v = vec.copy()
        v[b] += shift_b if v[b] + shift_b < 1461.0 else -365.25
        v[f] += shift_f if v[f] + shift_f > 365.25 else 365.25
        params, pools = model.split(jnp.asarray(v))
        out.append(simulate(model, params, pools, forcing))
    for other in out[1:]:
        for field in ("gpp", "nee", "lai"):
            a, c = np.asarray(getattr(other, field)), np.asarray(getattr(out[0], field))
            np.testing.assert_allclose(a, c, rtol=1e-3, atol=1e-3 * np.abs(c).max(), err_msg=field)
    # and a shift by half a year does change them (the test can fail)
    v = vec.copy()
    v[b] += 182.6 if v[b] + 182.6 < 1461.0 else -182.6
    params, pools = model.split(jnp.asarray(v))
    moved = simulate(model, params, pools, forcing)
    assert np.abs(np.asarray(moved.lai) - np.asarray(out[0].lai)).max() > 0.05


def test_periodic_rows_are_validated():
    with pytest.raises(ValueError, match="period must be positive and at most upper - lower"):
        ParamInfo("x", 1.0, 2.0, "d", "bad", period=5.0)
    with pytest.raises(ValueError, match="transform 'periodic' needs a period"):
        ParamInfo("x", 1.0, 2.0, "d", "bad", transform="periodic")
    with pytest.raises(ValueError, match="transform must be one of"):
        ParamInfo("x", 1.0, 2.0, "d", "bad", transform="circle")
