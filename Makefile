# Every target sets up what it needs: a fresh clone only needs `make pipeline` or `make test`.
SHELL := /bin/bash
DATASET ?= taxi
ARGS ?=
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help venv pipeline schema test test-fast clean clean-outputs

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'
	@echo "  variables: DATASET=$(DATASET) (taxi|penguins), ARGS='--epochs 5 ...' (see python -m pipeline run --help)"

$(STAMP): requirements/lock.txt pyproject.toml
	@echo "Setting up $(VENV) (Python 3.10, TFX 1.16; first time takes a few minutes)..."
	@test -x $(PY) || "$$(scripts/find-python310)" -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade "pip<25" 2>&1 | grep -v "is ignored" || true
	@set -o pipefail; $(PY) -m pip install --quiet -r requirements/lock.txt 2>&1 | { grep -v "is ignored" || true; }
	@set -o pipefail; $(PY) -m pip install --quiet --no-deps -e . 2>&1 | { grep -v "is ignored" || true; }
	@touch $@

venv: $(STAMP)  ## create the virtualenv from requirements/lock.txt

pipeline: $(STAMP)  ## run the whole pipeline on DATASET (default taxi)
	@$(PY) -m pipeline run --dataset $(DATASET) $(ARGS)

schema: $(STAMP)  ## draft a schema for DATASET with SchemaGen, for review
	@$(PY) -m pipeline schema --dataset $(DATASET) $(ARGS)

test: $(STAMP)  ## run every test, end-to-end pipelines included
	@$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)  ## unit tests only (no pipeline runs)
	@$(PY) -m pytest -m "not e2e" $(PYTEST_ARGS)

clean-outputs:  ## delete generated outputs (pipeline roots, ML Metadata, models)
	rm -rf outputs

clean: clean-outputs  ## also delete the virtualenv
	rm -rf $(VENV)
