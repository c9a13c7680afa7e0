# mlplatform: `make demo` runs the whole lifecycle, `make test` runs the test suite.
# Settings below are defaults; variables already set in the environment win.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

# One embedded Dagster instance per data set: .dagster/<spec name or spec file stem>.
export DAGSTER_HOME ?= $(CURDIR)/.dagster/$(basename $(notdir $(MLPLATFORM_DATASET)))
export MLPLATFORM_HOME ?= $(CURDIR)/.mlplatform
export MLPLATFORM_DATASET ?= synthetic_churn
export MLPLATFORM_DATA_PATH ?=
export MLPLATFORM_STORAGE ?=
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/.mlflow/mlflow.db
export MLFLOW_ARTIFACT_ROOT ?= $(CURDIR)/.mlflow/artifacts
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR ?= false
export MLPLATFORM_MLFLOW_RETRIES ?= 5
export MLPLATFORM_MLFLOW_RETRY_SECONDS ?= 1.0
export MLPLATFORM_MIN_AUC ?= 0.80
export MLPLATFORM_MIN_DELTA ?= 0.005
export MLPLATFORM_APPROVERS ?= reviewer
export MLPLATFORM_REQUIRE_APPROVAL ?= true
export MLPLATFORM_SERVING_URL ?=
export MLPLATFORM_CANARY_MIN_REQUESTS ?= 200
export MLPLATFORM_CANARY_MIN_DWELL_SECONDS ?= 60

.PHONY: install demo test test-fast bench dev mlflow-ui lint format clean

$(BIN)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "mlplatform needs Python 3.11, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

install: $(BIN)/.installed $(DAGSTER_HOME)/dagster.yaml ## create .venv, install pinned dependencies

# The embedded instance: SQLite storage, a run queue the daemon of `make dev` drains.
$(DAGSTER_HOME)/dagster.yaml: | $(BIN)/.installed
	$(BIN)/python -c 'import pathlib; from mlplatform.lifecycle import ensure_dagster_home; ensure_dagster_home(pathlib.Path("$(DAGSTER_HOME)"))'

demo: install ## run raw_data -> deployed_model twice on the embedded default and score rows
	$(BIN)/mlplatform demo

# The suite mostly waits on one core (daemons, subprocesses, MLflow I/O): one worker per CPU,
# each test module kept on one worker (its module fixtures built once). The load test then runs
# alone: it measures the highest rate the machine sustains.
PYTEST_WORKERS ?= auto

test: install ## the full test suite (unit, asset, end-to-end), then the load test alone
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile -m "not load"
	$(BIN)/python -m pytest -m load

test-fast: install ## everything but the end-to-end tests
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile -m "not e2e"

# Evidently is a comparison baseline of benchmarks/psi.py only: the bench extra adds packages
# and changes no pinned version.
$(BIN)/.installed-bench: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	@touch $@

# Each benchmark writes benchmarks/results/<name>.json; the report turns them into RESULTS.md.
BENCHMARKS := data_validation delong psi serving orchestration

bench: install $(BIN)/.installed-bench ## every benchmark against its baseline, then benchmarks/RESULTS.md; fails if a goal is missed
	@rm -f benchmarks/results/*.json; status=0; for name in $(BENCHMARKS); do \
		echo "== benchmarks/$$name.py"; $(BIN)/python benchmarks/$$name.py || status=1; \
	done; \
	echo "== benchmarks/results_report.py"; $(BIN)/python benchmarks/results_report.py || status=1; \
	exit $$status

dev: install ## Dagster UI + daemon (schedules, sensors) on http://127.0.0.1:3000
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

mlflow-ui: install ## MLflow UI on http://127.0.0.1:5000 for the embedded store
	$(BIN)/mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI) -h 127.0.0.1 -p 5000

lint: install
	$(BIN)/ruff check mlplatform mlplatform_tests
	$(BIN)/ruff format --check mlplatform mlplatform_tests

format: install
	$(BIN)/ruff format mlplatform mlplatform_tests

clean: ## forget all local state (instance, MLflow store, holdouts); keeps .venv
	rm -rf .dagster .mlflow .mlplatform
