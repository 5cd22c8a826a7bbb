# Two commands for a fresh clone: `make run` and `make test`. See README.md.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_CUSTOMERS ?= 3000
# The PostgreSQL database the second test pass uses (created by the test run itself).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/crm
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/crm_bench
# The import benchmark empties its tables on every run, so it has a database of its own.
BENCH_IMPORT_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/crm_bench_import

.PHONY: venv run serve test test-sqlite test-postgres lint format bench bench-import bench-ui bench-segments bench-ml bench-suppression bench-campaigns services

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

run: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --if-empty --customers $(DEMO_CUSTOMERS) --seed 1
	$(PY) manage.py collectstatic --noinput --verbosity 0
	HOST=$(HOST) PORT=$(PORT) PY=$(PY) scripts/serve.sh

services:
	scripts/ensure-services.sh

test: venv
	$(MAKE) --no-print-directory lint
	@scripts/ensure-services.sh || true
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

test-sqlite: venv
	@echo "== Test pass 1: SQLite, Celery in-process =="
	env -u DATABASE_URL -u CELERY_BROKER_URL $(PY) -m pytest -m "not integration and not e2e" $(PYTEST_ARGS)

test-postgres: venv
	@if scripts/ensure-services.sh; then \
	  echo "== Test pass 2: PostgreSQL + Redis, real Celery worker, real browser =="; \
	  env -u CELERY_BROKER_URL DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) \
	    $(PY) -m pytest $(PYTEST_ARGS); \
	else \
	  echo "!!! PostgreSQL or Redis is unreachable: the PostgreSQL, Redis, worker and browser tests were NOT run !!!"; \
	  exit 1; \
	fi

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: bench-import bench-ui bench-segments bench-ml bench-suppression bench-campaigns

bench-import: venv
	@scripts/ensure-services.sh
	DATABASE_URL=$(BENCH_IMPORT_DATABASE_URL) $(PY) -m bench.bench_import $(BENCH_ARGS)

bench-ui: venv
	@scripts/ensure-services.sh
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench.bench_ui $(BENCH_ARGS)

bench-segments: venv
	@scripts/ensure-services.sh
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench.bench_segments $(BENCH_ARGS)

bench-ml: venv
	@scripts/ensure-services.sh
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench.bench_ml $(BENCH_ARGS)

bench-suppression: venv
	@scripts/ensure-services.sh
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench.bench_suppression $(BENCH_ARGS)

bench-campaigns: venv
	@scripts/ensure-services.sh
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench.bench_campaigns $(BENCH_ARGS)
