"""Maps of per-site results (analysis.maps) and their report section."""

from __future__ import annotations

import numpy as np
import pytest

from _analysis_runs import tiny_datatree
from differland_bayes.analysis.maps import (
    has_coordinates,
    maps_section,
    plot_site_maps,
    site_parameter_summary,
    site_r2,
)


@pytest.fixture(scope="module")
def dt(tmp_path_factory):
    return tiny_datatree(tmp_path_factory.getbasetemp() / "analysis-runs")


def test_parameter_summary_and_r2_per_site(dt):
    assert has_coordinates(dt)
    table = site_parameter_summary(dt)
    theta = dt["posterior"]["parameters"]
    assert len(table) == theta.sizes["site"] * theta.sizes["parameter"]
    row = table.iloc[0]
    draws = theta.sel(site=row["site"], parameter=row["parameter"]).values.ravel()
    assert row["median"] == pytest.approx(np.median(draws), rel=1e-6)
    lo, hi = np.quantile(draws, [0.05, 0.95])
    assert row["width"] == pytest.approx(hi - lo, rel=1e-6)
    lat = float(dt["posterior"]["lat"].sel(site=row["site"]))
    assert row["lat"] == pytest.approx(lat)
    r2 = site_r2(dt)
    assert set(r2["stream"]) <= set(dt["observed_data"].data_vars)
    assert (r2["r2"] <= 1.0).all() and r2[["lon", "lat"]].notna().all().all()


def test_section_draws_labelled_maps_and_skips_without_coordinates(dt):
    section = maps_section(dt)
    fig = section.figures["site maps"]
    axes = fig.get_axes()
    maps = [a for a in axes if a.get_xlabel() == "longitude (degrees east)"]
    assert maps and all(a.get_ylabel() == "latitude (degrees north)" for a in maps)
    titles = [a.get_title() for a in maps]
    assert any("posterior median (" in t for t in titles)
    assert any("predictive R² per site" in t for t in titles)
    assert {"site_parameters", "site_r2"} <= set(section.tables)
    bare = dt.copy()
    bare["posterior"] = bare["posterior"].to_dataset().drop_vars(["lat", "lon"])
    empty = maps_section(bare)
    assert not empty.figures and "no coordinates" in empty.text


def test_plot_needs_panels():
    with pytest.raises(ValueError, match="panels: expected at least one"):
        plot_site_maps([])
