# Every target sets up what it needs: a fresh clone only needs `make pipeline` or `make test`.
SHELL := /bin/bash
DATASET ?= taxi
ARGS ?=
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Airflow 2 pins SQLAlchemy < 2 and Flask 2.x, which MLflow here has outgrown: its own venv.
AIRFLOW_VENV := .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed
KFP_STAMP := $(VENV)/.kfp-installed
# Flink's distribution and Beam's Flink job server, installed at set-up (docs/cluster.md).
FLINK_CACHE := .cache/flink
FLINK_STAMP := $(FLINK_CACHE)/.installed
PYTEST_ARGS ?=

.PHONY: help venv init pipeline score schema expectations mlflow-ui serve predict test test-fast browser \
	clean clean-outputs

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'
	@echo "  variables: DATASET=$(DATASET) (taxi|penguins|taxi_fare), ARGS='--epochs 5 ...' (see python -m pipeline run --help)"

# scripts/install-venv is the recipe, shared with the Dockerfile; it writes the stamp, $(STAMP).
$(STAMP): requirements/lock.txt pyproject.toml
	@scripts/install-venv $(VENV)

venv: $(STAMP)  ## create the virtualenv from requirements/lock.txt

.PHONY: airflow-venv airflow compile-kfp image bench data-scale flink flink-install

$(AIRFLOW_STAMP): requirements/airflow-lock.txt pyproject.toml
	@echo "Setting up $(AIRFLOW_VENV) (Apache Airflow 2, apart from the pipeline's venv; about a minute)..."
	@test -x $(AIRFLOW_VENV)/bin/python || "$$(scripts/find-python310)" -m venv $(AIRFLOW_VENV)
	@$(AIRFLOW_VENV)/bin/python -m pip install --quiet --upgrade "pip<25" 2>&1 | grep -v "is ignored" || true
	@set -o pipefail; $(AIRFLOW_VENV)/bin/python -m pip install --quiet -r requirements/airflow-lock.txt 2>&1 | { grep -v "is ignored" || true; }
	@# The DAG file imports pipeline.runners.airflow.dag (Airflow and the standard library only).
	@set -o pipefail; $(AIRFLOW_VENV)/bin/python -m pip install --quiet --no-deps -e . 2>&1 | { grep -v "is ignored" || true; }
	@touch $@

$(KFP_STAMP): $(STAMP) requirements/kfp-lock.txt
	@set -o pipefail; $(PY) -m pip install --quiet -r requirements/kfp-lock.txt 2>&1 | { grep -v "is ignored" || true; }
	@touch $@

airflow-venv: $(AIRFLOW_STAMP)  ## create the Airflow venv from requirements/airflow-lock.txt

# Order-only on the venv (its pip downloads the sdist): a venv update does not re-run this.
$(FLINK_STAMP): scripts/install-flink | $(STAMP)
	@scripts/install-flink $(FLINK_CACHE) $(PY)
	@touch $@

flink-install: $(FLINK_STAMP)  ## install Flink 1.18 (PyPI's apache-flink-libraries) and Beam's Flink job server into .cache/flink

flink: $(STAMP) $(FLINK_STAMP)  ## a local Flink cluster (JobManager, TaskManager, Beam worker pool) on 127.0.0.1 for --beam-runner flink (Ctrl-C stops it)
	@$(PY) -m pipeline.cluster.flink_session $(ARGS)

# DATASET is passed on only when given (make init CSV=... LABEL=... DATASET=name): otherwise init
# names the dataset after the CSV file, not after this file's default.
init: $(STAMP)  ## draft data/<name>/ (spec, schema, suite) from CSV=path LABEL=column [DATASET=name] [FORCE=1]
	@test -n "$(CSV)" -a -n "$(LABEL)" || { echo "usage: make init CSV=path/to/file.csv LABEL=column [DATASET=name] [FORCE=1]" >&2; exit 2; }
	@$(PY) -m pipeline init --csv "$(CSV)" --label "$(LABEL)" $(if $(filter command line environment,$(origin DATASET)),--dataset "$(DATASET)") $(if $(FORCE),--force) $(ARGS)

pipeline: $(STAMP)  ## run the whole pipeline on DATASET (default taxi)
	@$(PY) -m pipeline run --dataset $(DATASET) $(ARGS)

score: $(STAMP)  ## score a CSV with DATASET's champion model: make score CSV=new.csv (outputs/<dataset>/scores/)
	@test -n "$(CSV)" || { echo "make score needs the file to score: make score CSV=new.csv [DATASET=...]" >&2; exit 2; }
	@$(PY) -m pipeline score --dataset $(DATASET) --csv "$(CSV)" $(ARGS)

schema: $(STAMP)  ## draft a schema for DATASET with SchemaGen, for review
	@$(PY) -m pipeline schema --dataset $(DATASET) $(ARGS)

airflow: $(STAMP) $(AIRFLOW_STAMP)  ## serve DATASET's pipeline as a scheduled Airflow DAG on 127.0.0.1, SCORE_CSV=path also a scoring DAG, AIRFLOW_DB_URL=postgresql+psycopg2://... parallel stages (Ctrl-C stops it)
	@$(PY) -m pipeline airflow --dataset $(DATASET) $(if $(SCORE_CSV),--score-csv "$(SCORE_CSV)") $(ARGS)

compile-kfp: $(KFP_STAMP)  ## write DATASET's pipeline as a Kubeflow Pipelines v2 / Vertex AI JSON spec
	@$(PY) -m pipeline compile-kfp --dataset $(DATASET) $(ARGS)

# IMAGE defaults to the name compile-kfp and the cluster runners use (--cluster-image); docs/image.md.
IMAGE ?= csv2model:latest
CONTAINER_ENGINE ?= docker
IMAGE_BUILD_ARGS ?=
image:  ## build the container image IMAGE (csv2model:latest) for Kubeflow steps and Beam workers
	$(CONTAINER_ENGINE) build -t $(IMAGE) $(IMAGE_BUILD_ARGS) .

expectations: $(STAMP)  ## draft a Great Expectations suite (data contract) for DATASET, for review
	@$(PY) -m pipeline expectations --dataset $(DATASET) $(ARGS)

mlflow-ui: $(STAMP)  ## MLflow UI on 127.0.0.1 for DATASET's runs and models (Ctrl-C stops it)
	@$(PY) -m pipeline.tracking.mlflow_cli ui --dataset $(DATASET) $(ARGS)

# A team's tracking server (docs/team.md): the backend store's URL, password included, stays in
# the environment; clients use it with MLFLOW_TRACKING_URI=http://127.0.0.1:5000.
.PHONY: mlflow-server postgres
mlflow-server: $(STAMP)  ## MLflow tracking server on 127.0.0.1:5000 for a team: MLFLOW_BACKEND_STORE_URI=postgresql+psycopg2://... (Ctrl-C stops it)
	@$(PY) -m pipeline.tracking.mlflow_cli server $(ARGS)

serve: $(STAMP)  ## serve DATASET's `champion` model over HTTP on 127.0.0.1 (Ctrl-C stops it)
	@$(PY) -m pipeline.tracking.mlflow_cli serve --dataset $(DATASET) $(ARGS)

predict: $(STAMP)  ## send a few rows of DATASET to the model `make serve` serves, print the answer
	@$(PY) -m pipeline.tracking.mlflow_cli predict --dataset $(DATASET) $(ARGS)

# A Debian package some tests need, installed at set-up when missing, if this is root with apt-get;
# otherwise those tests fail and say how. $(1): the shell check that it is there, $(2): the
# package, $(3): the tests that need it.
define debian_package
	@$(1) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing $(2) (Debian's package) for $(3)..."; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) \
	      >/dev/null; } || echo "apt-get could not install $(2): $(3) will fail"; \
	  else \
	    echo "$(2) is missing (installing it needs root and apt-get): $(3) will fail"; \
	  fi; }
endef

# The MLflow UI browser test (tests/tracking/test_mlflow_ui_browser.py) drives Debian's Chromium.
browser:
	$(call debian_package,command -v chromium,chromium,the MLflow UI browser test)

# The PostgreSQL tests (Airflow's LocalExecutor, the MLflow tracking server) start Debian's
# PostgreSQL server (pipeline/bench/local_postgres.py).
postgres:
	$(call debian_package,ls /usr/lib/postgresql/*/bin/initdb,postgresql,the PostgreSQL tests)

test: postgres

# Tests run with a temp folder of their own, removed afterwards: what the processes they start
# leave in TMPDIR (TensorFlow's autograph sources, Beam's temp folders) must not pile up in /tmp
# run after run. PYTEST_TMPDIR=/some/folder keeps it, e.g. to look at a failing test's files.
PYTEST_TMPDIR ?=
# Test files are spread over one pytest-xdist worker per core (a file's tests stay together, so a
# module's shared pipeline run happens once; tests/conftest.py names the groups);
# PYTEST_WORKERS=0 runs them in this process.
PYTEST_WORKERS ?= auto
RUN_TESTS = if [ -n "$(PYTEST_TMPDIR)" ]; then tmp="$(PYTEST_TMPDIR)"; mkdir -p "$$tmp"; \
	else tmp=$$(mktemp -d -t csv2model-tests.XXXXXX); trap 'rm -rf "$$tmp"' EXIT; fi; \
	TMPDIR="$$tmp" $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup

test: $(STAMP) $(AIRFLOW_STAMP) $(KFP_STAMP) $(FLINK_STAMP) browser  ## check the layers, run every test, end-to-end pipelines included
	@$(VENV)/bin/lint-imports --no-cache
	@$(RUN_TESTS) $(PYTEST_ARGS)

test-fast: $(STAMP) $(AIRFLOW_STAMP) $(KFP_STAMP)  ## check the layers, unit tests only (no pipeline runs, no import probes)
	@$(VENV)/bin/lint-imports --no-cache
	@$(RUN_TESTS) -m "not e2e and not probe" $(PYTEST_ARGS)

# Multiples of the 15,002-row taxi sample for the scaling section; 10 adds 150k rows, 100 (1.5M
# rows) takes long. BENCH_SECTIONS=targets runs the speed targets alone.
BENCH_SIZES ?= 1
BENCH_SECTIONS ?= targets,regression,scoring,init,airflow,scaling
bench: $(STAMP) $(AIRFLOW_STAMP)  ## speed targets vs TFX's reference pipeline, then scaling vs plain baselines (BENCH_SIZES=1[,10[,100]]; ~10 min)
	@BENCH_SIZES=$(BENCH_SIZES) BENCH_SECTIONS=$(BENCH_SECTIONS) $(PY) -m pipeline.bench

data-scale: $(STAMP)  ## write an N-row taxi CSV by resampling with jitter: make data-scale N=150000
	@$(PY) -m pipeline.bench.scaled_csv --dataset $(DATASET) --rows $(N) --out outputs/scaled/$(DATASET)-$(N)/data.csv

clean-outputs:  ## delete generated outputs (pipeline roots, ML Metadata, models)
	rm -rf outputs

clean: clean-outputs  ## also delete the virtualenv
	rm -rf $(VENV) $(AIRFLOW_VENV)
