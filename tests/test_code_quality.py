"""Repository standards that can be checked mechanically."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _ruff() -> list[str]:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert exe, "ruff is a test dependency (pip install -e '.[test]')"
    return [exe]


def test_ruff_clean():
    targets = [
        p for p in ("src", "tests", "benchmarks", "scripts", "examples") if (REPO / p).exists()
    ]
    res = subprocess.run([*_ruff(), "check", *targets], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_process_package_is_free_of_numpyro():
    pattern = re.compile(r"^\s*(import|from)\s+numpyro", re.MULTILINE)
    offenders = [
        str(p.relative_to(REPO))
        for p in (REPO / "src" / "differland_bayes" / "process").rglob("*.py")
        if pattern.search(p.read_text())
    ]
    assert not offenders, f"process code must stay pure JAX; numpyro imported in {offenders}"


def test_exported_functions_named_like_their_module_stay_functions():
    """Importing ``analysis.loo`` first must not turn ``analysis.loo`` into the module."""
    import subprocess
    import sys

    code = (
        "import differland_bayes.analysis.partial_dependence, differland_bayes.analysis.loo\n"
        "from differland_bayes.analysis import loo, partial_dependence\n"
        "assert callable(loo) and callable(partial_dependence), (loo, partial_dependence)\n"
        "from differland_bayes.analysis.loo import loo_table\n"
        "assert callable(loo_table)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
