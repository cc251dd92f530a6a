# clocklab: `make help` lists the targets. The first `make up` or `make test`
# on a fresh clone creates .venv and installs everything it needs.

PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed
TRIAL       ?= 1
EXPERIMENT  ?= original
BACKEND     ?=
DURATION    ?=
TIME_SCALE  ?=
VMS         ?=
OUT         ?=
RUN         ?=
HOSTS       ?= 3

# Only the variables that are set become flags.
UP_FLAGS = --experiment $(EXPERIMENT) \
	$(if $(BACKEND),--backend $(BACKEND)) \
	$(if $(DURATION),--duration $(DURATION)) \
	$(if $(TIME_SCALE),--time-scale $(TIME_SCALE)) \
	$(if $(VMS),--vms $(VMS)) \
	$(if $(OUT),--out $(OUT))

.DEFAULT_GOAL := help
.PHONY: help venv docker-setup test unit lint ci up trials down image base-image compose report bench bench-smoke cluster cluster-down clean

help:  ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# editable_mode=compat puts the checkout in a plain .pth file, because the default
# editable finder is imported by every process, each local VM included, with pathlib and
# what that imports. compileall writes the bytecode a wheel would have had, so that where
# PYTHONDONTWRITEBYTECODE is set no local VM compiles vm_node afresh as it starts.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[lab,dev]' --config-settings editable_mode=compat
	$(BIN)/python -m compileall -q vm_node analysis orchestrator
	@touch $@

venv: $(STAMP)  ## Create .venv and install clocklab with its dependencies

# Where a Docker engine answers, containers need Compose v2: install it if missing.
docker-setup:
	@if docker info >/dev/null 2>&1; then scripts/install-compose.sh; fi

test: $(STAMP) docker-setup  ## Run the whole test suite (Docker tests run where an engine answers)
	$(BIN)/pytest

unit: $(STAMP)  ## Run the unit tests only (no Docker, a few seconds)
	$(BIN)/pytest tests/unit

ci: venv image test bench-smoke  ## What CI runs after scripts/provision.sh: the image, every test, the short benchmarks

lint: $(STAMP)  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

up: $(STAMP) docker-setup  ## One trial: make up TRIAL=1 [EXPERIMENT= DURATION= TIME_SCALE= VMS= BACKEND=]
	$(BIN)/clocklab up --trial $(TRIAL) $(UP_FLAGS)

trials: $(STAMP) docker-setup  ## Every trial of an experiment: make trials EXPERIMENT=variation
	$(BIN)/clocklab trials $(UP_FLAGS)

down: $(STAMP)  ## Remove what crashed trials left: make down [RUN=id] (default: every clocklab run)
	$(BIN)/clocklab down $(if $(RUN),--run $(RUN),--all)

image: $(STAMP)  ## Build the VM image (and, offline, a local Python base first)
	$(BIN)/clocklab image

base-image:  ## Build a local Python base image from Debian's packages
	scripts/base-image.sh

compose:  ## Install Compose v2 as a Docker CLI plugin where it is missing
	scripts/install-compose.sh

report: $(STAMP)  ## HTML report over every run under runs/
	$(BIN)/clocklab report runs

bench: $(STAMP) docker-setup  ## Benchmarks, ~20 min: print a table, write JSON to bench/results/ [ONLY=names]
	$(BIN)/python -m bench $(if $(ONLY),--only $(ONLY))

bench-smoke: $(STAMP) docker-setup  ## The benchmarks in short (about 2.5 minutes), to keep them working; JSON in bench/results/quick/
	$(BIN)/python -m bench --quick

cluster: $(STAMP)  ## A simulated cluster of HOSTS hosts (default 3) with a swarm across them
	$(BIN)/clocklab cluster up --hosts $(HOSTS)

cluster-down: $(STAMP)  ## Remove the simulated cluster: hosts, volumes, network, cgroups, contexts
	$(BIN)/clocklab cluster down

clean:  ## Remove .venv, caches and runs/
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache runs *.egg-info
