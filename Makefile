# differland_bayes: two commands for a fresh machine.
#   make demo   set everything up, then run the demo (writes demo-output/)
#   make test   set everything up, then run the whole test suite
# Setup finds a Python >= 3.12 by itself (scripts/find-python.sh); override with PYTHON=...

VENV    ?= .venv
STAMP   := $(VENV)/.differland-installed
PY      := $(VENV)/bin/python
DEMO_OUT ?= demo-output
# two pytest-xdist workers, each test file in one worker (module fixtures built once);
# PYTEST_WORKERS=0 runs in this process
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?= $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile)

.PHONY: setup demo test lint bench docs clean

$(STAMP): pyproject.toml scripts/find-python.sh
	@set -e; \
	if [ -x "$(PY)" ] && ! "$(PY)" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
		echo "setup: $(VENV) uses an old Python; recreating it"; rm -rf "$(VENV)"; fi; \
	if [ ! -x "$(PY)" ]; then \
		BASE=$$(sh scripts/find-python.sh) || exit 1; \
		echo "setup: creating $(VENV) with $$BASE"; \
		"$$BASE" -m venv "$(VENV)"; fi
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test]"
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/differland demo --out $(DEMO_OUT) --overwrite

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks examples scripts
	$(VENV)/bin/ruff format --check src tests benchmarks examples scripts

bench: setup
	$(PY) benchmarks/process_throughput.py

docs: setup
	$(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache site
