"""The documentation: generated pages up to date with the code, and the site builds."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from differland_bayes.bayes.fitconfig_schema import FitConfig
from differland_bayes.process import DALEC990_TABLE, DALEC993_TABLE

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "generate_docs.py"
PARAMETERS_MD = REPO / "docs" / "parameters.md"
CONFIGURATION_MD = REPO / "docs" / "configuration.md"
API_DIR = REPO / "docs" / "api"
PACKAGE = REPO / "src" / "differland_bayes"
#: modules documented in the user guide instead of the API reference
NOT_IN_API = ("differland_bayes.cli", "differland_bayes.commands")


def test_generated_pages_are_up_to_date():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (
        "docs/parameters.md or docs/configuration.md is stale; regenerate them with "
        "`python scripts/generate_docs.py`\n"
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


def _sections(cls: type, name: str) -> list[tuple[str, type]]:
    out = [(name, cls)]
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            out += _sections(hints[f.name], f"{name}.{f.name}")
    return out


def test_every_configuration_key_is_documented():
    text = CONFIGURATION_MD.read_text(encoding="utf-8")
    # "## [section]" -> the text up to the next section heading
    parts = re.split(r"^## \[([a-z_.]+)\]$", text, flags=re.M)
    documented = dict(zip(parts[1::2], parts[2::2], strict=True))
    hints = typing.get_type_hints(FitConfig)
    missing = []
    for f in dataclasses.fields(FitConfig):
        for name, cls in _sections(hints[f.name], f.name):
            body = documented.get(name)
            if body is None:
                missing.append(f"[{name}]")
                continue
            missing += [
                f"{name}.{k.name}" for k in dataclasses.fields(cls) if f"| `{k.name}` |" not in body
            ]
    assert not missing, f"configuration keys missing from docs/configuration.md: {missing}"


def test_check_mode_detects_stale_configuration_page(tmp_path):
    stale = tmp_path / "configuration.md"
    stale.write_text(CONFIGURATION_MD.read_text(encoding="utf-8").replace("`2000`", "`2001`"))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--configuration-output", str(stale)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "stale" in result.stderr and "configuration.md" in result.stderr


def _public_modules() -> list[str]:
    """Dotted names of the package's modules and subpackages without a leading underscore."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        if not any(p.startswith("_") for p in parts) and not name.startswith(NOT_IN_API):
            names.append(name)
    return names


def test_every_public_module_is_in_the_api_reference():
    blocks = set()
    for page in API_DIR.glob("*.md"):
        blocks |= set(re.findall(r"^::: ([\w.]+)$", page.read_text(encoding="utf-8"), re.M))
    missing = [m for m in _public_modules() if m not in blocks]
    assert not missing, f"public modules without a `::: module` block in docs/api/*.md: {missing}"


def test_mkdocs_build_strict(tmp_path):
    """The site builds with warnings as errors (broken links, pages missing from the nav,
    docstring problems). About 5-10 s."""
    tools = ("mkdocs", "mkdocstrings", "mkdocstrings_handlers", "pymdownx")
    missing = [m for m in tools if importlib.util.find_spec(m) is None]
    if missing:
        msg = f"documentation tools not installed ({missing}); pip install -e '.[docs]'"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(msg + "; under CI=true this is a failure, not a skip")
        pytest.skip(msg)
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-6000:]}"
    assert (site / "index.html").is_file()
    assert (site / "api" / "bayes" / "index.html").is_file()
