# spot-extender developer tasks. Every install and build step lives here, so a fresh
# clone on a fresh machine works; Python packages go to .venv (pip's cache keeps
# reinstalls fast) and control-plane binaries to ~/.cache/spot-extender.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help venv lock unit package-test image-test chart-test dashboard fuzz chaos e2e e2e-autoscaled bench-smoke test demo demo-autoscaled cluster-bins cluster-bins-helm cluster-bins-karpenter bins-in-background bench bench-throughput bench-burst bench-http-stack bench-availability \
	bench-extender bench-reclaim soak docs clean

help:
	@echo "make demo            local control plane + extender + sample workloads + a spot reclaim"
	@echo "make demo-autoscaled Karpenter provisions every node: on-demand for floors, spot for the rest, a spot loss"
	@echo "make test            every suite: unit, package, image, fuzz, e2e, chart, autoscaled, chaos, bench-smoke"
	@echo "make unit            unit tests only"
	@echo "make package-test    build the wheel, install it from the lock in a fresh venv beside another 'app' package, run it"
	@echo "make image-test      build the image with buildah (installed from Debian if missing) and run it against a control plane"
	@echo "make chart-test      helm lint/template of charts/spot-extender, its schema, agreement with k8s/, server dry-run"
	@echo "make dashboard       make demo scraped by Prometheus; docs/grafana's panels drawn -> docs/img/dashboard.png"
	@echo "make docs            regenerate the generated parts of the docs: flags, metrics, figures, chart values"
	@echo "make lock            re-resolve requirements/runtime.txt and dev.txt after a dependency change in pyproject.toml"
	@echo "make fuzz            an HTTP fuzz run against a live extender process (no cluster needed)"
	@echo "make chaos           faults injected into a control plane of its own (API server down, etcd compacted)"
	@echo "make e2e             end-to-end tests only"
	@echo "make e2e-autoscaled  end-to-end tests with Karpenter (its KWOK provider) provisioning every node"
	@echo "make bench-smoke     every benchmark at a small size (part of make test)"
	@echo "make cluster-bins    build kube-apiserver, -scheduler, -controller-manager, kubectl, etcd and kwok (cached);"
	@echo "                     cluster-bins-helm and cluster-bins-karpenter add helm or Karpenter's KWOK provider"
	@echo "make bench           all six benchmarks below, one after another -> build/bench/, see docs/performance.md"
	@echo "make bench-throughput  pods/s: kube-scheduler alone vs extender only, webhook only and both, with CPU"
	@echo "                     ms per pod per process and profiles (BENCH_NODES, BENCH_PODS, BENCH_PROFILE_SECONDS)"
	@echo "make bench-burst     500 pods created at once: the webhook's latency as kube-apiserver measures it,"
	@echo "                     event-loop lag, creation to Ready with and without the webhook -> build/bench/burst.json"
	@echo "make bench-http-stack  server CPU per call of the same handlers on aiohttp, httptools, uvicorn, granian"
	@echo "make bench-availability  spot-extender vs native affinity through spot reclaims, then a drain"
	@echo "                     paced to a 2-minute notice vs at once, pods starting in 5 s and 30 s, then with"
	@echo "                     Karpenter: webhook vs capacity-type spread vs native, every spot NodeClaim lost"
	@echo "make bench-reclaim   time from termination taint to all pods evicted -> build/bench/reclaim.json"
	@echo "make bench-extender  extender latency against same-run references, memory, list-and-sync and watch events/s,"
	@echo "                     at 50,000 and 150,000 pods over 5000 nodes -> build/bench/extender.json"
	@echo "make soak            30 minutes of churn and an API server restart; memory, fds, tasks, index vs list"
	@echo "                     each minute -> build/bench/soak.json and .png (SOAK_MINUTES; not in CI)"

venv: $(STAMP)

# Reinstall when the dependency list or the lock changes. Every dependency comes from
# the lock, hash-checked; the project itself goes on top without resolving anything.
$(STAMP): pyproject.toml requirements/dev.txt
	@echo "==> creating $(VENV) and installing dependencies from requirements/dev.txt"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip check
	@touch $@

UV_VERSION := 0.13.8
UV := build/uv/bin/uv

# Re-resolve the locks after changing dependencies in pyproject.toml. The dev lock is
# constrained by the runtime lock, so tests run on exactly what the image ships; the build
# lock is what the image builds its wheel with.
lock:
	@test -x $(UV) || { $(PYTHON) -m venv build/uv && build/uv/bin/pip install --quiet uv==$(UV_VERSION); }
	$(UV) pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes -q \
		-o requirements/runtime.txt
	$(UV) pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes -q \
		--extra test --extra bench -c requirements/runtime.txt -o requirements/dev.txt
	$(UV) pip compile requirements/build.in --universal --python-version 3.11 --generate-hashes -q \
		-o requirements/build.txt

# Built from Go modules once per pinned version (tests/cluster/versions.env); each target
# builds only the parts it runs: a control plane, plus helm or Karpenter where needed.
CONTROL_PLANE := k8s etcd kwok
cluster-bins:
	@command -v openssl >/dev/null || { echo "openssl is needed: apt-get install -y openssl"; exit 1; }
	BUILD_PARTS="$(CONTROL_PLANE)" bash tests/cluster/build-bins.sh >/dev/null

cluster-bins-helm: cluster-bins
	BUILD_PARTS="$(CONTROL_PLANE) helm" bash tests/cluster/build-bins.sh >/dev/null

cluster-bins-karpenter: cluster-bins
	BUILD_PARTS="$(CONTROL_PLANE) karpenter" bash tests/cluster/build-bins.sh >/dev/null

unit: $(STAMP)
	$(PY) -m pytest tests/unit tests/helpers -q

# A wheel in a fresh venv: what users install, not this editable checkout.
package-test: $(STAMP)
	$(PY) -m pytest tests/packaging -q

# The Dockerfile built with buildah (Debian's packages; no daemon) and the image run:
# its packages against the lock, and serve against the local control plane.
image-test: $(STAMP) cluster-bins
	$(PY) -m pytest tests/image -q

# charts/spot-extender: helm lint and template, the schema, agreement with k8s/, and a
# server-side dry-run on a local control plane (helm comes from cluster-bins).
chart-test: $(STAMP) cluster-bins-helm
	$(PY) -m pytest tests/chart -q

# Thousands of malformed and hostile requests at a live process; prints its figures.
fuzz: $(STAMP)
	$(PY) -m pytest tests/fuzz -q -s

# The slowest tests listed, so a CI log shows where the suite's time goes.
e2e: $(STAMP) cluster-bins
	$(PY) -m pytest tests/e2e -q --durations=20

# A control plane of its own, whose nodes Karpenter makes; never beside e2e's.
e2e-autoscaled: $(STAMP) cluster-bins-karpenter
	$(PY) -m pytest tests/autoscaled -q -s

chaos: $(STAMP) cluster-bins
	$(PY) -m pytest tests/chaos -q -s

# The benchmarks at a small size, so they keep working; figures come from `make bench`.
bench-smoke: $(STAMP) cluster-bins-karpenter
	$(PY) -m pytest tests/perf -q --durations=0

# On a cold machine helm, Karpenter and `go tool pprof` (bench-smoke's profiles) build in
# the background at the lowest CPU priority while suites that need none of them run (e2e
# mostly waits on start-ups). chart-test and the Karpenter suites come after e2e, and
# build-bins.sh's lock makes them wait for that build if it is not done.
test: cluster-bins bins-in-background unit package-test image-test fuzz e2e chart-test e2e-autoscaled chaos bench-smoke

BACKGROUND_LOG := build/bins-background.log
bins-in-background: cluster-bins
	@mkdir -p build
	@echo "==> helm, Karpenter's KWOK provider and go tool pprof: built in the background (nice 19) if missing, log in $(BACKGROUND_LOG)"
	@{ BUILD_PARTS="$(CONTROL_PLANE) helm karpenter" nice -n 19 bash tests/cluster/build-bins.sh; \
		! command -v go >/dev/null || nice -n 19 go tool pprof -h >/dev/null 2>&1 || true; } \
		</dev/null >$(BACKGROUND_LOG) 2>&1 &

demo: $(STAMP) cluster-bins
	$(PY) -m tests.cluster.demo

# make demo with Prometheus scraping it, then docs/grafana's panels drawn from its answers
# -> docs/img/dashboard.png. Prometheus is built from its Go module for this only.
dashboard: $(STAMP) cluster-bins
	BUILD_PROMETHEUS=1 BUILD_PARTS="$(CONTROL_PLANE)" bash tests/cluster/build-bins.sh >/dev/null
	$(PY) -m tests.cluster.dashboard

# Karpenter provisions every node: floors on on-demand, the rest on spot, then a spot loss.
demo-autoscaled: $(STAMP) cluster-bins-karpenter
	$(PY) -m tests.cluster.demo_autoscaled

BENCH_NODES ?= 500
BENCH_PODS ?= 2000
BENCH_PROFILE_SECONDS ?= 8

# Figures, not assertions; each writes build/bench/<name>.json (and .png), documented in docs/performance.md.
bench: bench-throughput bench-burst bench-http-stack bench-availability bench-reclaim bench-extender

bench-throughput: $(STAMP) cluster-bins
	$(PY) -m tests.perf.bench_throughput --nodes=$(BENCH_NODES) --pods=$(BENCH_PODS) \
		--profile-seconds=$(BENCH_PROFILE_SECONDS)

# 500 pods created at once: the webhook's latency as kube-apiserver measures it, the event-loop lag.
bench-burst: $(STAMP) cluster-bins
	$(PY) -m tests.perf.bench_burst

# The same handlers behind aiohttp, a raw httptools protocol, uvicorn and granian: CPU per call.
bench-http-stack: $(STAMP)
	$(PY) -m tests.perf.bench_http_stack

SOAK_MINUTES ?= 30

# Not part of make test or make bench: it takes half an hour by design.
soak: $(STAMP) cluster-bins
	$(PY) -m tests.perf.soak --minutes=$(SOAK_MINUTES)

bench-availability: $(STAMP) cluster-bins-karpenter
	$(PY) -m tests.perf.bench_availability
	$(PY) -m tests.perf.bench_pacing
	$(PY) -m tests.perf.bench_autoscaled

# Latency and memory of the extender over loopback HTTP, 5000 nodes and 50,000 or 150,000 pods in its index.
bench-extender: $(STAMP)
	$(PY) -m tests.perf.bench_extender

# Figures: time from a termination taint to every pod evicted, 100 and 1000 pods on one node.
bench-reclaim: $(STAMP) cluster-bins
	$(PY) -m tests.perf.bench_reclaim

# The parts of the docs made from the code and the benchmark reports; make unit fails when
# one is stale (tests/unit/test_docs.py, test_configuration_doc.py, tests/chart).
docs: $(STAMP)
	$(PY) tools/render_configuration.py --write
	$(PY) tools/render_reference.py --write
	$(PY) tools/render_figures.py --write
	$(PY) tools/chart_readme.py --write

clean:
	rm -rf build $(VENV) *.egg-info
