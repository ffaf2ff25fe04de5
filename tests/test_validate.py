"""``validate_dataset`` and ``differland validate``: every rule on a deliberately broken file."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from differland_bayes.cli import build_parser, main
from differland_bayes.dataset import STREAMS, add_masks, write_dataset
from differland_bayes.validate import (
    ERROR,
    NOTICE,
    Problem,
    ValidationError,
    ValidationReport,
    validate_dataset,
)

SITES = ["S0", "S1", "S2"]
N_MONTHS = 24
MJ_PER_W_DAY = 0.0864
SECONDS_PER_DAY = 86400.0


def canonical(n_months: int = N_MONTHS, seed: int = 0) -> xr.Dataset:
    """A valid canonical dataset: 3 sites x n_months monthly steps, all parts present."""
    rng = np.random.default_rng(seed)
    time = pd.date_range("2001-01-01", periods=n_months, freq="MS")
    shape = (len(SITES), n_months)
    season = np.sin(2 * np.pi * (np.asarray(time.day_of_year) - 100) / 365.25)
    t_min = 5 + 10 * season + rng.normal(0, 1, shape)

    def st(values: np.ndarray, units: str) -> tuple:
        return (("site", "time"), values, {"units": units})

    gpp = np.clip(5 + 4 * season + rng.normal(0, 0.5, shape), 0, None)
    gpp[:, ::5] = np.nan  # each stream has its own gaps
    nee = rng.normal(0, 1, shape)
    nee[:, 1::7] = np.nan
    ds = xr.Dataset(
        {
            "t_min": st(t_min, "degC"),
            "t_max": st(t_min + 8 + rng.uniform(0, 2, shape), "degC"),
            "swrad": st(15 + 10 * season + rng.uniform(0, 1, shape), "MJ m-2 d-1"),
            "co2": (("time",), np.linspace(370.0, 375.0, n_months), {"units": "ppm"}),
            "vpd": st(rng.uniform(1, 20, shape), "hPa"),
            "precip": st(rng.uniform(0, 5, shape), "mm d-1"),
            "burned_area": st(np.zeros(shape), "1"),
            "gpp": st(gpp, STREAMS["gpp"].units),
            "nee": st(nee, STREAMS["nee"].units),
            "gpp_unc": st(np.full(shape, 0.5), STREAMS["gpp"].units),
            "env": (("site", "feature"), np.array([[8.0, 100.0], [27.0, 50.0], [3.0, 180.0]])),
            "split_time": (
                ("site", "time"),
                np.repeat(np.where(np.arange(n_months) < n_months // 2, 1, 2)[None], 3, 0).astype(
                    np.int8
                ),
            ),
            "split_site": ("site", np.array(["train", "train", "validation"])),
        },
        coords={
            "site": SITES,
            "time": time,
            "lat": ("site", [45.0, -12.5, 60.0], {"units": "degrees_north"}),
            "lon": ("site", [10.0, 131.0, 24.0], {"units": "degrees_east"}),
            "vegetation_class": ("site", ["ENF", "SAV", "ENF"]),
            "feature": ["mat", "elevation"],
            "feature_units": ("feature", ["degC", "m"]),
        },
        attrs={"conventions": "differland-canonical-1", "step": "monthly"},
    )
    return add_masks(ds)


@pytest.fixture(scope="module")
def valid() -> xr.Dataset:
    return canonical()


def _write(ds: xr.Dataset, path: Path) -> Path:
    ds.to_netcdf(path)
    return path


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["validate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- the valid dataset --------------------------------------------------------------------
def test_valid_dataset_has_no_errors_and_no_notices(valid, tmp_path, capsys):
    report = validate_dataset(valid)
    assert report.ok and report.errors == [] and report.notices == [], str(report)
    assert (report.n_sites, report.n_times, report.step) == (3, N_MONTHS, "monthly")
    path = _write(valid, tmp_path / "ok.nc")
    assert validate_dataset(path).problems == ()
    code, out, err = _cli(capsys, str(path))
    assert code == 0, out + err
    assert out.strip().splitlines()[-1].startswith(f"{path}: OK")


def test_in_memory_dataset_is_not_modified(valid):
    ds = canonical()
    ds["t_min"] = ds["t_min"] + 273.15
    ds["t_min"].attrs["units"] = "K"  # a conversion the validator must not apply in place
    before = ds.copy(deep=True)
    validate_dataset(ds)
    xr.testing.assert_identical(ds, before)
    assert ds["t_min"].attrs == {"units": "K"}


# -- one rule per broken file -------------------------------------------------------------
def _set(name: str, index: tuple, value: object) -> Callable[[xr.Dataset], xr.Dataset]:
    def f(ds: xr.Dataset) -> xr.Dataset:
        values = ds[name].values.copy()
        values[index] = value
        ds[name] = ds[name].copy(data=values)
        return ds

    return f


def _units(name: str, units: str | None) -> Callable[[xr.Dataset], xr.Dataset]:
    def f(ds: xr.Dataset) -> xr.Dataset:
        ds[name].attrs.pop("units", None)
        if units is not None:
            ds[name].attrs["units"] = units
        return ds

    return f


def _tmin_above_tmax(ds: xr.Dataset) -> xr.Dataset:
    return _set("t_min", (0, 7), float(ds["t_max"][0, 7]) + 1.0)(ds)


def _time(values: list[int]) -> Callable[[xr.Dataset], xr.Dataset]:
    """Re-stamp the time axis with the month offsets ``values`` from 2001-01."""

    def f(ds: xr.Dataset) -> xr.Dataset:
        stamps = [pd.Timestamp("2001-01-01") + pd.DateOffset(months=m) for m in values]
        return ds.assign_coords(time=pd.DatetimeIndex(stamps))

    return f


def _no_nee(ds: xr.Dataset) -> xr.Dataset:
    ds["nee"] = ds["nee"] * np.nan
    ds["nee_mask"] = ds["nee_mask"] & False
    return ds


def _nee_mask_all_false(ds: xr.Dataset) -> xr.Dataset:
    ds["nee_mask"] = ds["nee_mask"] & False
    return ds


def _zero_variance(ds: xr.Dataset) -> xr.Dataset:
    return _set("env", (slice(None), 0), 4.0)(ds)


def _sites(ids: list[str]) -> Callable[[xr.Dataset], xr.Dataset]:
    return lambda ds: ds.assign_coords(site=ids)


def _drop(*names: str) -> Callable[[xr.Dataset], xr.Dataset]:
    return lambda ds: ds.drop_vars(list(names))


MONTHS = list(range(N_MONTHS))
# id -> (break the dataset, variable named, site, time, rule)
BROKEN: dict[str, tuple[Callable[[xr.Dataset], xr.Dataset], str, str | None, str | None, str]] = {
    "missing t_min": (_drop("t_min"), "t_min", None, None, "missing-variable"),
    "missing precip": (_drop("precip"), "precip", None, None, "missing-variable"),
    "missing time coordinate": (_drop("time"), "time", None, None, "missing-coordinate"),
    "missing site coordinate": (_drop("site"), "site", None, None, "missing-coordinate"),
    "missing lat": (_drop("lat"), "lat", None, None, "missing-coordinate"),
    "non-finite t_max": (_set("t_max", (1, 5), np.nan), "t_max", "S1", "2001-06-01", "non-finite"),
    "infinite swrad": (_set("swrad", (0, 2), np.inf), "swrad", "S0", "2001-03-01", "non-finite"),
    "negative precip": (
        _set("precip", (2, 3), -1.0),
        "precip",
        "S2",
        "2001-04-01",
        "impossible-value",
    ),
    "negative swrad": (
        _set("swrad", (1, 0), -0.5),
        "swrad",
        "S1",
        "2001-01-01",
        "impossible-value",
    ),
    "t_min above t_max": (_tmin_above_tmax, "t_min", "S0", "2001-08-01", "t_min>t_max"),
    "negative vpd": (_set("vpd", (2, 10), -2.0), "vpd", "S2", "2001-11-01", "impossible-value"),
    "zero co2": (_set("co2", (4,), 0.0), "co2", None, "2001-05-01", "impossible-value"),
    "burned_area above 1": (
        _set("burned_area", (1, 6), 1.5),
        "burned_area",
        "S1",
        "2001-07-01",
        "impossible-value",
    ),
    "unknown forcing units": (_units("vpd", "furlongs"), "vpd", None, None, "unknown-units"),
    "missing forcing units": (_units("swrad", None), "swrad", None, None, "missing-units"),
    "missing stream units": (_units("gpp", None), "gpp", None, None, "missing-units"),
    "unconvertible stream units": (
        _units("gpp", "umol m-2 s-1"),
        "gpp",
        None,
        None,
        "unknown-units",
    ),
    "time not monotonic": (
        _time([0, 1, 2, 4, 3, *MONTHS[5:]]),
        "time",
        None,
        "2001-04-01",
        "time-order",
    ),
    "time duplicated": (
        _time([0, 1, 2, 3, 3, *MONTHS[5:]]),
        "time",
        None,
        "2001-04-01",
        "time-duplicate",
    ),
    "time gap": (
        _time([*MONTHS[:11], *(m + 1 for m in MONTHS[11:])]),
        "time",
        None,
        "2002-01-01",
        "time-step",
    ),
    "duplicate site ids": (_sites(["S0", "S0", "S2"]), "site", "S0", None, "duplicate-site"),
    "stream without observations": (_no_nee, "nee", None, None, "no-observations"),
    "mask all False": (_nee_mask_all_false, "nee", None, None, "no-observations"),
    "mask marks NaN as observed": (
        _set("gpp_mask", (1, 0), True),
        "gpp_mask",
        "S1",
        "2001-01-01",
        "mask-nan-observed",
    ),
    "negative uncertainty": (
        _set("gpp_unc", (2, 9), -0.1),
        "gpp_unc",
        "S2",
        "2001-10-01",
        "negative-uncertainty",
    ),
    "fill value in a stream": (
        _set("gpp", (0, 3), -9999.0),
        "gpp",
        "S0",
        "2001-04-01",
        "sentinel",
    ),
    "env with zero variance": (_zero_variance, "env[mat]", None, None, "zero-variance"),
    "env not finite": (_set("env", (1, 1), np.nan), "env[elevation]", "S1", None, "non-finite"),
    "split_time outside 0-2": (
        _set("split_time", (0, 2), 3),
        "split_time",
        "S0",
        "2001-03-01",
        "split-time-values",
    ),
    "split_site not allowed": (
        _set("split_site", (1,), "holdout"),
        "split_site",
        "S1",
        None,
        "split-site-values",
    ),
    "lat outside [-90, 90]": (_set("lat", (2,), 95.0), "lat", "S2", None, "lat-range"),
}


def _matching(report: ValidationReport, variable: str, rule: str) -> list[Problem]:
    return [p for p in report.errors if p.variable == variable and p.rule == rule]


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_each_rule_is_reported_by_function_and_cli(case, valid, tmp_path, capsys):
    breaker, variable, site, time, rule = BROKEN[case]
    path = _write(breaker(valid.copy(deep=True)), tmp_path / "broken.nc")

    report = validate_dataset(path)
    assert not report.ok
    found = _matching(report, variable, rule)
    assert found, f"no {rule} error for {variable}:\n{report}"
    p = found[0]
    assert (p.site, p.time) == (site, time), str(p)
    assert p.severity == ERROR and p.expected and p.found

    code, out, err = _cli(capsys, str(path))
    assert code == 1, out + err
    assert "Traceback" not in err
    assert str(p) in out.splitlines()
    assert str(p).startswith(f"error: {variable}")
    if site is not None or time is not None:
        assert "[" in str(p) and (site or time) in str(p)
    assert "INVALID" in out.strip().splitlines()[-1]


def test_convertible_units_are_notices_not_errors(valid, tmp_path, capsys):
    ds = valid.copy(deep=True)
    for name, units, convert in (
        ("t_min", "K", lambda x: x + 273.15),
        ("t_max", "K", lambda x: x + 273.15),
        ("swrad", "W m-2", lambda x: x / MJ_PER_W_DAY),
        ("vpd", "kPa", lambda x: x / 10.0),
        ("precip", "kg m-2 s-1", lambda x: x / SECONDS_PER_DAY),
    ):
        ds[name] = convert(ds[name]).assign_attrs(units=units)
    path = _write(ds, tmp_path / "kelvin.nc")
    report = validate_dataset(path)
    assert report.ok, str(report)
    noticed = {p.variable for p in report.notices if p.rule == "convertible-units"}
    assert noticed == {"t_min", "t_max", "swrad", "vpd", "precip"}
    assert all(p.severity == NOTICE for p in report.notices)
    code, out, _ = _cli(capsys, str(path))
    assert code == 0
    assert "notice: t_min: expected units 'degC', found 'K'" in out
    code, quiet, _ = _cli(capsys, str(path), "--quiet")
    assert code == 0 and len(quiet.strip().splitlines()) == 1
    assert "OK" in quiet and not quiet.startswith("notice")


def test_physical_checks_use_converted_values(valid):
    ds = valid.copy(deep=True)
    ds["t_min"] = (ds["t_min"] + 273.15).assign_attrs(units="K")  # still below t_max in degC
    assert validate_dataset(ds).ok
    ds["t_max"] = (ds["t_max"] + 273.15).assign_attrs(units="degC")  # mislabelled kelvin
    report = validate_dataset(ds)
    assert _matching(report, "t_max", "impossible-value")


def test_uneven_daily_steps_and_single_site_without_site_dimension():
    time = pd.date_range("2003-01-01", periods=60, freq="D")
    forcing = {
        "t_min": (np.full(60, 2.0), "degC"),
        "t_max": (np.full(60, 9.0), "degC"),
        "swrad": (np.full(60, 10.0), "MJ m-2 d-1"),
        "co2": (np.full(60, 380.0), "ppm"),
        "vpd": (np.full(60, 5.0), "hPa"),
        "precip": (np.full(60, 1.0), "mm d-1"),
    }
    ds = xr.Dataset(
        {k: ("time", v, {"units": u}) for k, (v, u) in forcing.items()},
        coords={"time": time, "lat": xr.DataArray(45.0, attrs={"units": "degrees_north"})},
    )
    report = validate_dataset(ds)
    assert report.ok and report.step == "daily" and report.n_sites == 1, str(report)
    assert [p.rule for p in report.notices] == ["single-site"]
    gap = ds.isel(time=[*range(30), *range(31, 60)])
    errors = _matching(validate_dataset(gap), "time", "time-step")
    assert [(p.time, p.site) for p in errors] == [("2003-02-01", None)]
    assert "2 d" in errors[0].found


def test_several_problems_in_one_file_are_all_reported(valid, tmp_path, capsys):
    ds = valid.copy(deep=True)
    for case in (
        "missing t_min",
        "negative precip",
        "mask marks NaN as observed",
        "split_site not allowed",
        "lat outside [-90, 90]",
        "env with zero variance",
    ):
        ds = BROKEN[case][0](ds)
    ds = _units("vpd", "kPa")(ds)
    path = _write(ds, tmp_path / "many.nc")
    report = validate_dataset(path)
    rules = {(p.variable, p.rule) for p in report.errors}
    assert rules >= {
        ("t_min", "missing-variable"),
        ("precip", "impossible-value"),
        ("gpp_mask", "mask-nan-observed"),
        ("split_site", "split-site-values"),
        ("lat", "lat-range"),
        ("env[mat]", "zero-variance"),
    }
    assert any(p.variable == "vpd" for p in report.notices)
    code, out, _ = _cli(capsys, str(path))
    assert code == 1
    lines = out.strip().splitlines()
    assert sum(ln.startswith("error: ") for ln in lines) == len(report.errors)
    assert f"{len(report.errors)} errors, 1 notice" in lines[-1]


def test_many_bad_sites_are_summarised():
    ds = canonical().isel(site=np.tile(np.arange(len(SITES)), 5))
    ds = ds.assign_coords(site=[f"S{k}" for k in range(ds.sizes["site"])])
    ds["precip"] = ds["precip"] * 0 - 1.0
    errors = _matching(validate_dataset(ds), "precip", "impossible-value")
    assert len(errors) == 11  # 10 sites listed, then one line for the other 5
    assert errors[-1].site is None and "5 more sites" in errors[-1].found
    assert f"(and {N_MONTHS - 1} more at this site)" in errors[0].found


def test_report_api(valid):
    report = validate_dataset(_drop("t_min")(valid.copy(deep=True)))
    text = str(report)
    assert text.splitlines()[0].startswith("<in-memory dataset>: 3 site(s) x 24")
    assert "error: t_min: expected required forcing variable" in text
    with pytest.raises(ValidationError, match="t_min") as info:
        report.raise_if_errors()
    assert info.value.report is report
    validate_dataset(valid).raise_if_errors()  # no error, nothing raised


# -- files are never touched; command line --------------------------------------------------
def _fingerprint(path: Path) -> list[tuple[str, str, int]]:
    files = sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file())
    return [
        (str(p), hashlib.sha256(p.read_bytes()).hexdigest(), os.stat(p).st_mtime_ns) for p in files
    ]


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_users_file_is_not_modified(valid, tmp_path, capsys, suffix):
    ds = _units("t_min", "K")(valid.copy(deep=True))  # something that would be converted
    ds = _set("precip", (0, 0), -1.0)(ds)
    path = write_dataset(ds, tmp_path / f"user{suffix}")
    before = _fingerprint(path)
    report = validate_dataset(path)
    assert _matching(report, "precip", "impossible-value")
    assert _cli(capsys, str(path))[0] == 1
    assert _fingerprint(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"user{suffix}"]


def test_cli_usage_errors_exit_2_with_one_line(tmp_path, capsys):
    code, out, err = _cli(capsys, str(tmp_path / "missing.nc"))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("differland: error:") and "missing.nc" in err
    garbage = tmp_path / "garbage.nc"
    garbage.write_text("not a netcdf file")
    code, _, err = _cli(capsys, str(garbage))
    assert code == 2 and err.count("\n") == 1 and "cannot read" in err
    wrong = tmp_path / "table.csv"
    wrong.write_text("a,b\n")
    code, _, err = _cli(capsys, str(wrong))
    assert code == 2 and "Traceback" not in err and ".csv" in err


def test_cli_help_has_an_example(capsys):
    assert main(["validate", "--help"]) == 0
    out = capsys.readouterr().out
    assert "differland validate sites.nc" in out and "--quiet" in out
    args = build_parser().parse_args(["-q", "validate", "x.nc", "--quiet"])
    assert args.quiet == 1 and args.quiet_report  # the global -q is kept


# -- real data ----------------------------------------------------------------------------
FLUXVAL_NAMES = {
    "T2M_MIN": "t_min",
    "T2M_MAX": "t_max",
    "SSRD": "swrad",
    "VPD": "vpd",
    "TOTAL_PREC": "precip",
    "CO2": "co2",
    "GPP": "gpp",
    "NEE": "nee",
    "ET": "et",
    "split": "split_time",
}


def test_fluxval_converted_by_hand_has_no_errors(data_dir):
    path = data_dir / "cardamom-fluxval" / "fluxval_monthly.nc"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with xr.open_dataset(path) as raw:
        ds = raw[list(FLUXVAL_NAMES)].load().rename(FLUXVAL_NAMES)
        ds = ds.assign_coords(vegetation_class=raw["igbp"].load())
    report = validate_dataset(ds)  # as published: round-off negatives in the reanalysis
    roundoff = _matching(report, "precip", "impossible-value")
    assert roundoff and "round-off" in roundoff[0].found
    for name in ("swrad", "precip"):  # what the readers do: clip round-off to 0
        ds[name] = ds[name].where(~((ds[name] < 0) & (ds[name] >= -1e-6)), 0.0)
    ds = add_masks(ds)
    before = ds.copy(deep=True)
    report = validate_dataset(ds)
    assert report.ok, "\n".join(report.lines()[:20])
    assert (report.n_sites, report.step) == (176, "monthly")
    xr.testing.assert_identical(ds, before)


def test_single_daily_fluxnet_site_has_no_errors(data_dir):
    path = data_dir / "fluxnet-sites" / "US-Var.nc"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    names = {
        "T2M_MIN": "t_min",
        "T2M_MAX": "t_max",
        "SSRD": "swrad",
        "VPD": "vpd",
        "TOTAL_PREC": "precip",
        "CO2": "co2",
        "GPP": "gpp",
        "NBE": "nee",
    }
    with xr.open_dataset(path) as raw:
        ds = raw[list(names)].load().rename(names)
        lat = float(raw["LAT"])
    ds = ds.assign_coords(
        time=pd.Timestamp("2001-01-01") + pd.to_timedelta(ds["time"].values, unit="D"),
        lat=lat,
    )
    for name in ("swrad", "vpd", "precip", "co2"):
        ds[name].attrs.setdefault(
            "units", {"swrad": "MJ m-2 d-1", "vpd": "hPa", "precip": "mm d-1", "co2": "ppm"}[name]
        )
    for s in ("gpp", "nee"):
        ds[s].attrs["units"] = STREAMS[s].units
    report = validate_dataset(ds)
    assert report.ok, str(report)
    assert report.step == "daily" and report.n_times == 3287


# -- sites with different records (site_time_valid) ---------------------------------------
FORCING = ("t_min", "t_max", "swrad", "vpd", "precip", "burned_area")
#: site -> (first, last) month of its record in ``with_records``
RECORDS = {"S0": (0, N_MONTHS - 1), "S1": (6, N_MONTHS - 1), "S2": (0, 17)}


def _month(m: int) -> str:
    return (pd.Timestamp("2001-01-01") + pd.DateOffset(months=m)).strftime("%Y-%m-%d")


def with_records(ds: xr.Dataset, *, nan_outside: bool = True) -> xr.Dataset:
    """Give the sites of ``canonical()`` different records, as the union readers do."""
    ds = ds.copy(deep=True)
    steps = np.arange(ds.sizes["time"])
    valid = np.stack([(steps >= a) & (steps <= b) for a, b in RECORDS.values()])
    flag = xr.DataArray(valid, dims=("site", "time"), coords={"site": ds["site"]})
    ds["site_time_valid"] = flag
    if nan_outside:
        for name in FORCING:
            ds[name] = ds[name].where(flag)
    for s in ("gpp", "nee"):
        ds[s] = ds[s].where(flag)
        ds[f"{s}_mask"] = ds[f"{s}_mask"] & flag
    ds["gpp_unc"] = ds["gpp_unc"].where(flag)
    ds["split_time"] = ds["split_time"].where(flag, 0).astype(np.int8)
    return ds


@pytest.fixture(scope="module")
def recorded() -> xr.Dataset:
    return with_records(canonical())


def _outside(site: str, month: int, value: float = 1.0) -> Callable[[xr.Dataset], xr.Dataset]:
    """Observe gpp (value and mask True) at a step outside ``site``'s record."""

    def f(ds: xr.Dataset) -> xr.Dataset:
        i = SITES.index(site)
        ds = _set("gpp", (i, month), value)(ds)
        return _set("gpp_mask", (i, month), True)(ds)

    return f


def _nee_outside_without_mask(ds: xr.Dataset) -> xr.Dataset:
    ds = _set("nee", (1, 2), 0.5)(ds)
    return ds.drop_vars("nee_mask")


def _flag(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[xr.Dataset], xr.Dataset]:
    def f(ds: xr.Dataset) -> xr.Dataset:
        ds["site_time_valid"] = ds["site_time_valid"].copy(data=fn(ds["site_time_valid"].values))
        return ds

    return f


def _gap(site: int, months: slice) -> Callable[[np.ndarray], np.ndarray]:
    def f(v: np.ndarray) -> np.ndarray:
        v = v.copy()
        v[site, months] = False
        return v

    return f


def _empty(site: int) -> Callable[[np.ndarray], np.ndarray]:
    return _gap(site, slice(None))


def _int_flag(ds: xr.Dataset) -> xr.Dataset:
    ds["site_time_valid"] = ds["site_time_valid"].astype(np.int8)
    return ds


def _time_only_flag(ds: xr.Dataset) -> xr.Dataset:
    ds["site_time_valid"] = ds["site_time_valid"].any("site")
    return ds


# id -> (break the dataset with records, variable named, site, time, rule)
BROKEN_RECORDS: dict[
    str, tuple[Callable[[xr.Dataset], xr.Dataset], str, str | None, str | None, str]
] = {
    "NaN forcing inside the record": (
        _set("t_max", (1, 8), np.nan),
        "t_max",
        "S1",
        _month(8),
        "non-finite",
    ),
    "fill value in forcing inside the record": (
        _set("swrad", (2, 17), -9999.0),
        "swrad",
        "S2",
        _month(17),
        "sentinel",
    ),
    "impossible forcing inside the record": (
        _set("precip", (1, 6), -1.0),
        "precip",
        "S1",
        _month(6),
        "impossible-value",
    ),
    "mask True outside the record": (
        _outside("S2", 20),
        "gpp_mask",
        "S2",
        _month(20),
        "mask-outside-record",
    ),
    "observed outside the record without a mask": (
        _nee_outside_without_mask,
        "nee",
        "S1",
        _month(2),
        "observed-outside-record",
    ),
    "gap inside a site's record": (
        _flag(_gap(0, slice(10, 12))),
        "site_time_valid",
        "S0",
        _month(10),
        "record-gap",
    ),
    "site without a record": (_flag(_empty(2)), "site_time_valid", "S2", None, "empty-record"),
    "record flag not boolean": (_int_flag, "site_time_valid", None, None, "dtype"),
    "record flag without site dimension": (_time_only_flag, "site_time_valid", None, None, "dims"),
}


def test_different_records_are_valid(recorded, tmp_path, capsys):
    report = validate_dataset(recorded)
    assert report.ok and report.problems == (), str(report)
    assert (report.n_sites, report.n_times, report.step) == (3, N_MONTHS, "monthly")
    path = write_dataset(recorded, tmp_path / "records.nc")
    assert validate_dataset(path).problems == ()
    code, out, err = _cli(capsys, str(path))
    assert code == 0, out + err


def test_forcing_outside_the_record_is_not_checked():
    ds = with_records(canonical(), nan_outside=False)  # finite forcing outside: fine
    assert validate_dataset(ds).problems == ()
    ds = _set("precip", (1, 0), -5.0)(ds)  # impossible, but outside S1's record
    ds = _set("t_min", (2, 20), np.inf)(ds)
    assert validate_dataset(ds).problems == ()


@pytest.mark.parametrize("case", list(BROKEN_RECORDS), ids=list(BROKEN_RECORDS))
def test_each_record_rule_is_reported(case, recorded, tmp_path, capsys):
    breaker, variable, site, time, rule = BROKEN_RECORDS[case]
    ds = breaker(recorded.copy(deep=True))
    report = validate_dataset(ds)
    found = _matching(report, variable, rule)
    assert found, f"no {rule} error for {variable}:\n{report}"
    p = found[0]
    assert (p.site, p.time) == (site, time), str(p)
    if rule == "record-gap":
        assert "S0" in str(p) and f"record {_month(0)} to {_month(N_MONTHS - 1)}" in p.found
        assert "(and 1 more at this site)" in p.found
    path = write_dataset(ds, tmp_path / "broken.nc")
    assert str(p) in [str(q) for q in validate_dataset(path).errors]
    code, out, _ = _cli(capsys, str(path))
    assert code == 1 and str(p) in out.splitlines()


def test_non_boolean_record_flag_of_zeros_and_ones_is_still_used(recorded):
    report = validate_dataset(_int_flag(recorded.copy(deep=True)))
    assert [p.rule for p in report.errors] == ["dtype"]  # the NaN forcing is not flagged
    assert "0/1" in report.errors[0].found


def test_streams_are_judged_within_each_record(recorded):
    ds = recorded.copy(deep=True)
    inside = ds["site_time_valid"].values[1]
    values = ds["gpp"].values.copy()
    values[1] = np.where(inside, np.nan, 3.0)  # S1: observed only outside its record
    ds["gpp"] = ds["gpp"].copy(data=values)
    ds["gpp_mask"] = ds["gpp_mask"] & np.isfinite(ds["gpp"]) & ds["site_time_valid"]
    report = validate_dataset(ds)
    assert report.ok, str(report)
    (p,) = [p for p in report.notices if p.rule == "site-without-observations"]
    assert p.variable == "gpp" and "S1" in p.found and "within its record" in p.expected
    ds["gpp_mask"] = ds["gpp_mask"] & False
    errors = _matching(validate_dataset(ds), "gpp", "no-observations")
    assert errors and "within the sites' records" in errors[0].expected


def test_split_outside_the_record_is_a_notice(recorded):
    ds = _set("split_time", (1, 0), 1)(recorded.copy(deep=True))
    report = validate_dataset(ds)
    assert report.ok
    (p,) = report.notices
    assert (p.rule, p.variable, p.site, p.time) == (
        "split-outside-record",
        "split_time",
        "S1",
        _month(0),
    )


def test_single_site_record_without_site_dimension(recorded):
    one = recorded.isel(site=1)  # scalar site coordinate, time-only variables
    assert validate_dataset(one).ok, str(validate_dataset(one))
    flag = one["site_time_valid"].values.copy()
    flag[10] = False
    broken = one.assign(site_time_valid=one["site_time_valid"].copy(data=flag))
    (p,) = _matching(validate_dataset(broken), "site_time_valid", "record-gap")
    assert (p.site, p.time) == ("S1", _month(10))


# -- the readers' outputs -----------------------------------------------------------------
@pytest.fixture(scope="module")
def fluxnet_daily(fluxnet_dir):
    from differland_bayes.io import read_fluxnet_sites

    return read_fluxnet_sites(fluxnet_dir)


def _assert_reader_output_ok(ds: xr.Dataset, step: str) -> ValidationReport:
    report = validate_dataset(ds)
    assert report.ok, "\n".join(report.lines()[:20])
    assert report.step == step
    assert not [p for p in report.notices if p.rule == "unknown-variable"], str(report)
    return report


@pytest.mark.parametrize("monthly", [False, True], ids=["daily", "monthly"])
def test_fluxnet_reader_output_has_no_errors(monthly, fluxnet_daily, fluxnet_dir):
    from differland_bayes.io import read_fluxnet_sites

    ds = read_fluxnet_sites(fluxnet_dir, monthly=True) if monthly else fluxnet_daily
    valid = ds["site_time_valid"].values
    assert ds.sizes["site"] > 1 and not valid.all()  # a union axis with NaN forcing
    assert np.isnan(ds["t_min"].values[~valid]).all()
    _assert_reader_output_ok(ds, "monthly" if monthly else "daily")


def test_fluxval_reader_output_has_no_errors(data_dir):
    from differland_bayes.io import read_fluxval

    path = data_dir / "cardamom-fluxval" / "fluxval_monthly.nc"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    report = _assert_reader_output_ok(read_fluxval(path), "monthly")
    assert report.n_sites == 176


def _first_step(ds: xr.Dataset, site: int, inside: bool, *, middle: bool = False) -> int:
    steps = np.flatnonzero(ds["site_time_valid"].values[site] == inside)
    return int(steps[len(steps) // 2] if middle else steps[0])


def _fluxnet_nan_forcing(ds: xr.Dataset) -> tuple[xr.Dataset, int, int]:
    j = _first_step(ds, 3, True, middle=True)
    return _set("t_min", (3, j), np.nan)(ds), 3, j


def _fluxnet_mask_outside(ds: xr.Dataset) -> tuple[xr.Dataset, int, int]:
    j = _first_step(ds, 0, False)
    ds = _set("gpp", (0, j), 2.0)(ds)
    return _set("gpp_mask", (0, j), True)(ds), 0, j


def _fluxnet_record_gap(ds: xr.Dataset) -> tuple[xr.Dataset, int, int]:
    j = _first_step(ds, 5, True, middle=True)
    return _flag(_gap(5, slice(j, j + 3)))(ds), 5, j


@pytest.mark.parametrize(
    ("breaker", "variable", "rule"),
    [
        (_fluxnet_nan_forcing, "t_min", "non-finite"),
        (_fluxnet_mask_outside, "gpp_mask", "mask-outside-record"),
        (_fluxnet_record_gap, "site_time_valid", "record-gap"),
    ],
    ids=["NaN forcing inside the record", "mask True outside the record", "gap in the record"],
)
def test_broken_fluxnet_reader_output_is_reported(fluxnet_daily, breaker, variable, rule):
    ds, i, j = breaker(fluxnet_daily.copy(deep=True))
    report = validate_dataset(ds)
    assert not report.ok
    found = _matching(report, variable, rule)
    assert len(found) == 1, str(report)
    site = str(ds["site"].values[i])
    day = pd.Timestamp(ds["time"].values[j]).strftime("%Y-%m-%d")
    assert (found[0].site, found[0].time) == (site, day)
