# spot-extender developer tasks. Every install and build step lives here, so a fresh
# clone on a fresh machine works; Python packages go to .venv (pip's cache keeps
# reinstalls fast) and control-plane binaries to ~/.cache/spot-extender.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)

.PHONY: help venv unit e2e test demo cluster-bins bench-extender bench-reclaim clean

help:
	@echo "make demo            local control plane + extender + sample workloads + a spot reclaim"
	@echo "make test            unit tests, then end-to-end tests against a real kube-scheduler"
	@echo "make unit            unit tests only"
	@echo "make e2e             end-to-end tests only"
	@echo "make cluster-bins    build kube-apiserver, -scheduler, -controller-manager, kubectl, etcd, kwok (cached)"
	@echo "make bench-extender  extender latency and memory benchmark -> build/bench/extender.json"
	@echo "make bench-reclaim   time from termination taint to all pods evicted -> build/bench/reclaim.json"

venv: $(STAMP)

# Reinstall when the dependency list changes.
$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) and installing dependencies"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

# Built from Go modules once per pinned version (tests/cluster/versions.env).
cluster-bins:
	@command -v openssl >/dev/null || { echo "openssl is needed: apt-get install -y openssl"; exit 1; }
	bash tests/cluster/build-bins.sh >/dev/null

unit: $(STAMP)
	$(PY) -m pytest tests/unit -q

e2e: $(STAMP) cluster-bins
	$(PY) -m pytest tests/e2e -q

test: unit e2e

demo: $(STAMP) cluster-bins
	$(PY) -m tests.cluster.demo

# Figures, not assertions: latency and memory of the extender over loopback HTTP.
bench-extender: $(STAMP)
	$(PY) -m tests.perf.bench_extender

# Figures: time from a termination taint to every pod evicted, 100 and 1000 pods on one node.
bench-reclaim: $(STAMP) cluster-bins
	$(PY) -m tests.perf.bench_reclaim

clean:
	rm -rf build $(VENV) *.egg-info
