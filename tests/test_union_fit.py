"""A fit on FLUXNET sites with different records (union time axis), then its prediction."""

from __future__ import annotations

import numpy as np

from differland_bayes.bayes.fit import run_fit
from differland_bayes.bayes.fitconfig import FitConfig, config_with
from differland_bayes.bayes.predict_dataset import predict_to_dataset
from differland_bayes.io import read_fluxnet_sites, to_monthly


def test_fit_and_predict_sites_with_different_records(fluxnet_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFERLAND_DATA_DIR", str(fluxnet_dir.parent))
    sites = ["DE-Hai", "FI-Hyy"]  # 2001-2009 and 2006-2014
    cfg = config_with(
        FitConfig(),
        {
            "data.source": "fluxnet-sites",
            "data.sites": sites,
            "data.period": "union",
            "data.streams": ["gpp", "et"],
            "data.site_split": "all",
            "model.process": "dalec993",
            "network.hidden": [4],
            "likelihood.use_data_uncertainty": False,
            "svi.steps": 3,
            "svi.checkpoint_every": 0,
        },
    )
    res = run_fit(cfg, tmp_path / "run", progress_bar=False)
    assert np.isfinite(res.fit.losses).all()
    ds = to_monthly(read_fluxnet_sites(fluxnet_dir, sites=sites, period="union"))
    pred = predict_to_dataset(tmp_path / "run", ds, num_samples=5, key=0)
    assert bool(pred["fitted"].all())
    valid = ds["site_time_valid"].values
    gpp = pred["gpp"].values
    assert np.isfinite(gpp).all()  # forcing filled outside the records: finite everywhere
    # observations are only where a record is
    assert not np.asarray(pred["gpp_mask"].values)[~valid].any()
