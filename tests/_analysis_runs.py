"""A tiny fitted run shared by the analysis tests (built once per test session).

The synthetic world is written to a file once and the fit reads it from there, so that
neither the fit nor the DataTree of the run regenerates it. ``run_b`` is a copy of
``run_a`` whose site residuals are three times as uncertain (a worse posterior of the
same data, without a second fit).
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import numpy as np

from conftest import REPO

FREE = ["canopy_efficiency", "LCMA", "f_fol", "Q10"]
SAMPLES = 60  #: posterior draws of the test DataTrees


def tiny_config(data_path: Path) -> dict:
    return {
        "data.source": str(data_path),
        "data.site_split": "all",
        "data.holdout_fraction": 0.25,
        "model.free_parameters": FREE,
        "network.hidden": [8],
        "svi.schedule": "constant",
        "svi.warmup": 0,
        "svi.lr": 0.02,
        "svi.steps": 30,
        "svi.checkpoint_every": 0,
        "svi.early_stopping.every": 10,
        "svi.early_stopping.patience": 100,
    }


@functools.cache
def tiny_runs(root: Path) -> dict[str, Path]:
    """Write the data, fit ``run_a`` and derive ``run_b`` under ``root``; return paths."""
    from differland_bayes.bayes.fitconfig import config_to_toml, config_with, load_config
    from differland_bayes.cli import main
    from differland_bayes.dataset import write_dataset
    from differland_bayes.synthetic import synthesize

    root.mkdir(parents=True, exist_ok=True)
    data = root / "world.nc"
    write_dataset(synthesize(8, years=2, seed=0, free_parameters=FREE), data)
    cfg = config_with(load_config(REPO / "examples" / "configs" / "synthetic.toml"),
                      tiny_config(data))  # fmt: skip
    toml = root / "tiny.toml"
    toml.write_text(config_to_toml(cfg), encoding="utf-8")
    run_a = root / "run_a"
    assert main(["-q", "fit", str(toml), "--out", str(run_a), "--no-progress"]) == 0
    run_b = root / "run_b"
    shutil.copytree(run_a, run_b)
    params = dict(np.load(run_b / "params.npz"))
    params["eps_auto_scale"] = params["eps_auto_scale"] * 3.0
    np.savez(run_b / "params.npz", **params)
    return {"data": data, "run_a": run_a, "run_b": run_b}


@functools.cache
def tiny_datatree(root: Path, run: str = "run_a"):
    """The DataTree of a tiny run on its training data, stored as its report's."""
    from differland_bayes.analysis.report import DATATREE_FILE, datatree_for_run
    from differland_bayes.dataset import read_dataset

    paths = tiny_runs(root)
    run_dir = paths[run]
    (run_dir / "report").mkdir(exist_ok=True)
    return datatree_for_run(
        run_dir, run_dir / "report" / DATATREE_FILE, data=read_dataset(paths["data"]),
        num_samples=SAMPLES,
    )  # fmt: skip
