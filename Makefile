# spot-extender developer tasks. Every install step lives here so a fresh clone works.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help venv unit test bench-extender clean

help:
	@echo "make test            unit tests (and end-to-end tests once the control plane exists)"
	@echo "make unit            unit tests only"
	@echo "make bench-extender  extender latency and memory benchmark -> build/bench/extender.json"

venv: $(STAMP)

# Reinstall when the dependency list changes; pip's own cache keeps reinstalls fast.
$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) and installing dependencies"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

unit: $(STAMP)
	$(PY) -m pytest tests/unit -q

test: unit

clean:
	rm -rf build $(VENV) *.egg-info

# Figures, not assertions: latency and memory of the extender over loopback HTTP.
bench-extender: $(STAMP)
	$(PY) -m tests.perf.bench_extender
