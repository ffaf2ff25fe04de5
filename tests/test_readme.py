"""The README's Python example runs as written (on a tiny configuration)."""

from __future__ import annotations

import re

from conftest import REPO
from differland_bayes.bayes.fitconfig import config_to_toml, config_with, load_config

TINY = {
    "data.synthetic.sites": 6,
    "data.synthetic.years": 1,
    "data.synthetic.free_parameters": ["canopy_efficiency", "LCMA"],
    "data.site_split": "all",
    "data.holdout_fraction": 0.0,
    "model.free_parameters": ["canopy_efficiency", "LCMA"],
    "network.hidden": [4],
    "svi.steps": 20,
    "svi.warmup": 0,
    "svi.map_steps": 0,
    "svi.checkpoint_every": 0,
    "output.posterior_samples": 8,
}


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_python_example_runs(tmp_path, monkeypatch):
    blocks = _python_blocks((REPO / "README.md").read_text(encoding="utf-8"))
    assert blocks, "the README needs a Python example"
    code = blocks[0]
    assert len(code.strip().splitlines()) <= 6
    cfg = config_with(load_config(REPO / "examples" / "configs" / "synthetic.toml"), TINY)
    tiny = tmp_path / "tiny.toml"
    tiny.write_text(config_to_toml(cfg), encoding="utf-8")
    code = code.replace("examples/configs/synthetic.toml", str(tiny))
    monkeypatch.chdir(tmp_path)  # runs/ is created under the test's folder
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    pred = namespace["pred"]
    assert {"gpp", "gpp_quantile"} <= set(pred.data_vars)
    assert (tmp_path / "runs" / "synthetic" / "config.toml").is_file()
    assert any((tmp_path / "runs" / "synthetic").rglob("*.html"))
