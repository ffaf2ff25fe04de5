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
