# make test  - create .venv if needed, install rig_sync with its test and sdk-check extras, run ruff, mypy --strict, pytest
#              with branch coverage (full table, then the five lowest-covered modules)
# make demo  - same set-up, then run the end-to-end demo against the loopback fake provider
# make bench - run the benchmarks (ratios against raw requests, in one run)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo bench lint typecheck clean interop

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) setup.cfg setup.py
	$(PY) -m pip install --quiet -e '.[test,sdk-check]'
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check rig_sync tests benchmarks interop

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict rig_sync

# Branch coverage over the whole run, then the five lowest-covered modules (`coverage report`
# sorts ascending; lines 1-2 are its header).
test: lint typecheck
	$(PY) -m pytest -q --cov=rig_sync --cov-branch --cov-report=term
	@echo "Lowest-covered modules:"
	@$(PY) -m coverage report --sort=cover | sed -n '1,7p'

demo: $(STAMP)
	$(PY) -m rig_sync demo

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# make interop - the llamacpp provider against a real llama-server built from PyPI's llama-cpp-python
#                sdist (cached in .venv/interop), with a tiny random-weight model; not part of `make test`
interop: $(STAMP)
	$(PY) interop/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
