"""The ``differland`` command line, run in-process through ``main``."""

from __future__ import annotations

import subprocess
import sys

import pytest
import xarray as xr

from differland_bayes.cli import build_parser, main
from differland_bayes.defaults import default_forcing_dataset
from differland_bayes.process import MODELS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SHORT_YEARS = 2  #: years of the forcing files written by these tests


def _error_line(stderr: str) -> str:
    """The single ``differland: error:`` line of stderr (fails if not exactly one)."""
    assert "Traceback" not in stderr
    lines = [ln for ln in stderr.splitlines() if ln.startswith("differland: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture(scope="module")
def monthly_forcing() -> xr.Dataset:
    return default_forcing_dataset("dalec993", years=SHORT_YEARS)


def _write(ds: xr.Dataset, path) -> str:
    ds.to_netcdf(path)
    return str(path)


# -- info ---------------------------------------------------------------------------------
def test_info_lists_models_options_parameters_and_outputs(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for text in ("dalec993", "dalec990", "faithful", "conserving", "nothing", "baseline"):
        assert text in out
    assert "canopy_efficiency" in out and "gC m-2 d-1" in out
    assert "runoff_focal_point" in out and "PAW_Qmax" in out
    assert "next_som_pool" in out


def test_info_for_one_model(capsys):
    assert main(["info", "--model", "dalec990"]) == 0
    out = capsys.readouterr().out
    assert "PAW_Qmax" in out and "q_puw" in out
    assert "runoff_focal_point" not in out


def test_parser_accepts_every_registered_model():
    parser = build_parser()
    for name in MODELS:
        args = parser.parse_args(["simulate", "--model", name, "--out", "x"])
        assert args.model == name


def test_help_and_bad_arguments_return_exit_codes(capsys):
    assert main(["--help"]) == 0
    assert "Examples:" in capsys.readouterr().out
    assert main(["simulate", "--help"]) == 0
    assert "--overwrite" in capsys.readouterr().out
    assert main(["simulate", "--model", "dalec000", "--out", "x"]) == 2
    assert main([]) == 2


# -- simulate -----------------------------------------------------------------------------
def test_simulate_refuses_to_clobber_then_overwrites(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["simulate", "--out", str(out)]) == 0
    nc, png = out / "simulation.nc", out / "simulation.png"
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    with xr.open_dataset(nc) as ds:
        assert ds.attrs["model"] == "dalec993"
        assert ds.sizes["time"] == 120
        assert ds["gpp"].attrs["units"] == "gC m-2 d-1"
    assert "summary" in capsys.readouterr().err

    before = {p: (p.read_bytes(), p.stat().st_ino) for p in (nc, png)}
    assert main(["simulate", "--out", str(out)]) == 2
    line = _error_line(capsys.readouterr().err)
    assert "simulation.nc" in line and "--overwrite" in line
    assert {p: (p.read_bytes(), p.stat().st_ino) for p in (nc, png)} == before

    assert main(["-q", "simulate", "--out", str(out), "--overwrite"]) == 0
    assert capsys.readouterr().err == ""  # -q silences the INFO log
    assert nc.stat().st_ino != before[nc][1]  # replaced by a new file
    assert sorted(p.name for p in out.iterdir()) == ["simulation.nc", "simulation.png"]


def test_simulate_dalec990_with_forcing_and_params(tmp_path, capsys):
    forcing = _write(default_forcing_dataset("dalec990", years=SHORT_YEARS), tmp_path / "f.nc")
    params = tmp_path / "params.csv"
    params.write_text("name,value\nCwood,8000\ncanopy_efficiency, 25\n")
    out = tmp_path / "run"
    argv = ["simulate", "--model", "dalec990", "--water-stress", "baseline", "--mode"]
    argv += ["conserving", "--forcing", forcing, "--params", str(params), "--out", str(out)]
    assert main(argv) == 0
    with xr.open_dataset(out / "simulation.nc") as ds:
        assert ds.attrs["model"] == "dalec990"
        assert ds.attrs["mode"] == "conserving"
        assert ds.attrs["water_stress"] == "baseline"
        assert ds.sizes["time"] == 365 * SHORT_YEARS
        assert float(ds["parameters"].sel(parameter="Cwood")) == 8000.0
        assert float(ds["parameters"].sel(parameter="canopy_efficiency")) == 25.0


def test_daily_forcing_is_aggregated_for_dalec993(tmp_path, capsys):
    forcing = _write(default_forcing_dataset("dalec990", years=SHORT_YEARS), tmp_path / "f.nc")
    assert main(["simulate", "--forcing", forcing, "--out", str(tmp_path / "run")]) == 0
    assert "aggregating" in capsys.readouterr().err
    with xr.open_dataset(tmp_path / "run" / "simulation.nc") as ds:
        assert ds.sizes["time"] == 12 * SHORT_YEARS


def test_unknown_parameter_names_are_reported(tmp_path, capsys):
    params = tmp_path / "params.csv"
    params.write_text("name,value\nCwood,8000\nleaf_colour,3\nCsoil,1\n")
    assert main(["simulate", "--params", str(params), "--out", str(tmp_path / "run")]) == 2
    line = _error_line(capsys.readouterr().err)
    assert "leaf_colour" in line and "Csoil" in line and "Cwood" not in line
    assert not (tmp_path / "run").exists()


def test_out_of_bounds_parameter_is_reported(tmp_path, capsys):
    params = tmp_path / "params.csv"
    params.write_text("name,value\nLCMA,1000\n")
    assert main(["simulate", "--params", str(params), "--out", str(tmp_path / "run")]) == 2
    assert "LCMA" in _error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [("drop precip", "precip"), ("t_max in furlongs", "furlongs")],
)
def test_bad_forcing_file_is_one_line_naming_the_variable(
    tmp_path, capsys, monthly_forcing, breakage, expected
):
    ds = monthly_forcing.copy()
    if breakage == "drop precip":
        ds = ds.drop_vars("precip")
    else:
        ds["t_max"].attrs["units"] = "furlongs"
    forcing = _write(ds, tmp_path / "bad.nc")
    code = main(["-q", "simulate", "--forcing", forcing, "--out", str(tmp_path / "run")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # exactly one line under -q
    line = _error_line(err)
    assert expected in line
    if breakage != "drop precip":
        assert "t_max" in line
    assert not (tmp_path / "run").exists()


def test_missing_forcing_file_and_bad_water_stress(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["simulate", "--forcing", str(tmp_path / "nope.nc"), "--out", out]) == 2
    assert "nope.nc" in _error_line(capsys.readouterr().err)
    assert main(["simulate", "--water-stress", "severe", "--out", out]) == 2
    assert "severe" in _error_line(capsys.readouterr().err)


# -- demo ---------------------------------------------------------------------------------
def test_demo_quick_writes_report_figure_and_truth_and_refuses_to_clobber(tmp_path, capsys):
    import json

    import pandas as pd

    from differland_bayes.commands.demo import OUTPUTS

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quick", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "demo [4/4]" in err and "index.html" in err and "R²" in err
    assert (out / "report" / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE")
    assert (out / "traits_vs_truth.png").read_bytes().startswith(PNG_SIGNATURE)
    for name in OUTPUTS:
        assert (out / name).exists(), name
    assert "traits_vs_truth.png" in (out / "index.html").read_text(encoding="utf-8")
    assert "traits_vs_truth.png" in (out / "README.txt").read_text(encoding="utf-8")

    sites = pd.read_csv(out / "traits_vs_truth.csv")
    assert {"site", "parameter", "units", "fitted", "true", "lower", "median", "upper"} <= set(
        sites.columns
    )
    assert sites["fitted"].any() and not sites["fitted"].all()  # fitted and unseen sites
    assert (sites["lower"] <= sites["median"]).all() and (sites["median"] <= sites["upper"]).all()
    curves = pd.read_csv(out / "partial_dependence_vs_truth.csv")
    assert {"grid_value", "learned_mean", "true", "feature_units"} <= set(curves.columns)

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    for key in ("coverage_fitted", "coverage_unseen"):
        assert 0.0 <= summary[key] <= 1.0
    assert summary["coverage_fitted"] == pytest.approx(
        sites.loc[sites["fitted"], "covered"].mean(), abs=1e-3
    )
    for r in summary["r_relationship"].values():
        assert r is None or -1.0 <= r <= 1.0
    assert set(summary["r2_unseen"]) == {"gpp", "nee", "et", "lai"}
    assert all(v is None or v <= 1.0 for v in summary["r2_unseen"].values())
    assert summary["sites_fitted"] + summary["sites_unseen"] == summary["settings"]["sites"]

    files = [p for p in out.rglob("*") if p.is_file()]
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    assert main(["demo", "--out", str(out), "--quick"]) == 2
    line = _error_line(capsys.readouterr().err)
    assert "--overwrite" in line and "world.nc" in line
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files} == before
    assert sorted(p for p in out.rglob("*") if p.is_file()) == sorted(files)


def test_demo_refuses_a_file_as_out_and_too_few_sites(tmp_path, capsys):
    file = tmp_path / "not-a-dir"
    file.write_text("x")
    assert main(["demo", "--out", str(file), "--quick"]) == 2
    assert "not a directory" in _error_line(capsys.readouterr().err)
    assert main(["demo", "--out", str(tmp_path / "d"), "--sites", "3"]) == 2
    assert "--sites" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


# -- help of every subcommand -------------------------------------------------------------
SUBCOMMANDS = ("info", "simulate", "validate", "synthesize", "fit", "predict", "report",
               "compare", "demo")  # fmt: skip


def test_every_subcommand_is_listed_and_has_help_with_a_description_and_an_example(capsys):
    assert main(["--help"]) == 0
    top = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in top
        assert main([name, "--help"]) == 0
        text = capsys.readouterr().out
        assert "Example" in text, name
        assert f"differland {name}" in text.split("Example", 1)[1], name
        description = text.split("\n\n")[1]  # the paragraph after the usage
        assert len(description.split()) >= 8 and not description.startswith("options"), name


def test_verbose_and_quiet_set_the_log_level(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["simulate", "--out", out]) == 0
    assert "INFO" in capsys.readouterr().err
    assert main(["-q", "simulate", "--out", out, "--overwrite"]) == 0
    assert capsys.readouterr().err == ""
    missing = str(tmp_path / "nope.nc")
    assert main(["validate", missing]) == 2
    assert "DEBUG" not in capsys.readouterr().err
    assert main(["-v", "validate", missing]) == 2  # -v adds the details of the error
    err = capsys.readouterr().err
    assert "DEBUG" in err and "Traceback" in err and "differland: error:" in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["validate", "{tmp}/nope.nc"], "nope.nc"),
        (["fit", "{tmp}/nope.toml", "--out", "{tmp}/run"], "nope.toml"),
        (["fit", "{tmp}/bad.toml", "--out", "{tmp}/run"], "svi.steps"),
        (["predict", "{tmp}/norun", "--data", "training", "--out", "{tmp}/p.nc"], "norun"),
        (["report", "{tmp}/norun"], "norun"),
        (["compare", "{tmp}/a", "{tmp}/b", "--out", "{tmp}/c"], "run directory not found"),
        (["synthesize", "--sites", "4", "--out", "{tmp}/world.csv"], ".nc or .zarr"),
    ],
)
def test_user_mistakes_are_one_line_with_exit_status_2(tmp_path, capsys, argv, expected):
    (tmp_path / "bad.toml").write_text('[svi]\nsteps = "many"\n', encoding="utf-8")
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    assert expected in _error_line(capsys.readouterr().err)


def test_python_dash_m_help():
    result = subprocess.run(
        [sys.executable, "-m", "differland_bayes", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "simulate" in result.stdout and "demo" in result.stdout
