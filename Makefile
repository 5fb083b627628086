# Everyday entry points. Everything installs into and runs from a project-local virtual environment
# (.venv, created when missing), never the system interpreter, so an undeclared dependency fails here
# the way it fails on a new machine. `make test` is the test command CI runs (via .ci/run).
PYTHON_SYSTEM ?= python3
VENV ?= .venv
PYTHON := $(VENV)/bin/python
PIP := $(PYTHON) -m pip
STAMP := $(VENV)/.installed
RAY_STAMP := $(VENV)/.installed-ray

.PHONY: install test test-all lint train clean-venv

$(PYTHON):
	$(PYTHON_SYSTEM) -m venv $(VENV)

# torch first and pinned: its CPU wheel is on local disk; any other spec downloads CUDA builds.
$(STAMP): pyproject.toml | $(PYTHON)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	touch $(STAMP)

# Tests also cover the Ray executor, so they install the `ray` extra (one ~80 MB wheel, a few
# seconds); `make train` stays on the lighter install.
$(RAY_STAMP): $(STAMP)
	$(PIP) install --quiet -e '.[dev,ray]'
	touch $(RAY_STAMP)

install: $(STAMP)

test: $(RAY_STAMP)
	$(PYTHON) -m pytest -q

test-all: $(RAY_STAMP)
	$(PYTHON) -m pytest -q -m ''

lint: install
	$(PYTHON) -m ruff check .

# The main job: BC on the shipped data plus 1000 generated levels (about 9 minutes on 2 CPU
# cores from nothing cached). `make train CONFIG=configs/mlp.yaml` for another config.
CONFIG ?= configs/generalist.yaml
train: install
	@if [ "$(CONFIG)" = "configs/generalist.yaml" ]; then echo "make train: about 9 minutes on 2 CPU cores (generating 1000 levels, then BC); progress bars show the ETA" >&2; fi
	$(PYTHON) scripts/train_bc.py --config $(CONFIG)

clean-venv:
	rm -rf $(VENV)
