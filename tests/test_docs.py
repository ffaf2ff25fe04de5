"""The generated documentation is up to date with the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from differland_bayes.process import DALEC990_TABLE, DALEC993_TABLE

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "generate_docs.py"
PARAMETERS_MD = REPO / "docs" / "parameters.md"


def test_parameters_md_is_up_to_date():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (
        "docs/parameters.md is stale; regenerate it with `python scripts/generate_docs.py`\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )


@pytest.mark.parametrize("table", [DALEC993_TABLE, DALEC990_TABLE], ids=["dalec993", "dalec990"])
def test_every_parameter_is_documented(table):
    text = PARAMETERS_MD.read_text(encoding="utf-8")
    missing = [name for name in table.names if f"`{name}`" not in text]
    assert not missing, f"parameters missing from docs/parameters.md: {missing}"


def test_check_mode_detects_stale_file(tmp_path):
    stale = tmp_path / "parameters.md"
    stale.write_text(PARAMETERS_MD.read_text(encoding="utf-8") + "\nedited by hand\n")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--output", str(stale)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "stale" in result.stderr
