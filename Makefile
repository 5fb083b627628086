# Everyday entry points. `make test` is the test command CI runs (via .ci/run).
PYTHON ?= python
PIP ?= $(PYTHON) -m pip

.PHONY: install test test-all lint train

# torch first and pinned: its CPU wheel is on local disk; any other spec downloads CUDA builds.
install:
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[dev]'

test: install
	$(PYTHON) -m pytest -q

test-all: install
	$(PYTHON) -m pytest -q -m ''

lint:
	$(PYTHON) -m ruff check .

# The main job: BC on the shipped corpus. `make train CONFIG=configs/mlp.yaml` for a quick run.
CONFIG ?= configs/hgt.yaml
train: install
	$(PYTHON) scripts/train_bc.py --config $(CONFIG)
