# Two commands for a fresh clone: `make run` and `make test`. See README.md.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_CUSTOMERS ?= 3000
# The tests run on TEST_DATABASE_URL, else DATABASE_URL, else this checkout's embedded PostgreSQL
# server (crm/embedded_db); pytest-django creates the test_<name> database itself.
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/crm_bench
# The import benchmark empties its tables on every run, so it has a database of its own.
BENCH_IMPORT_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/crm_bench_import
# The real-time benchmark records purchases (and removes them on its next run): a database of its own.
BENCH_REALTIME_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/crm_bench_realtime
# The load benchmark seeds its own tier (20k customers by default).
BENCH_LOAD_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/crm_bench_load
BENCH_LOAD_BROKER_URL ?= redis://127.0.0.1:6379/0
# The lifetime-value benchmark holds a simulated BG/NBD world, not the tiers: a database of its own.
BENCH_CLV_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/crm_bench_clv
# The deals benchmark reassigns deals on every run: a database of its own.
BENCH_DEALS_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/crm_bench_deals

.PHONY: venv lock run serve test test-delivery-faults lint format bench bench-import bench-ui bench-segments bench-segment-edit bench-ml bench-clv bench-suppression bench-campaigns bench-kpi bench-realtime bench-journeys bench-deals bench-load services

# Installs exactly what requirements-dev.lock pins (with hashes), then this project without
# resolving anything again. After changing dependencies in pyproject.toml: make lock.
$(VENV)/.installed: pyproject.toml requirements-dev.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

venv: $(VENV)/.installed

PIP_COMPILE_ARGS ?= --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links
lock: venv
	$(VENV)/bin/pip-compile $(PIP_COMPILE_ARGS) -o requirements.lock pyproject.toml
	$(VENV)/bin/pip-compile $(PIP_COMPILE_ARGS) --extra dev -o requirements-dev.lock pyproject.toml

run: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --if-empty --customers $(DEMO_CUSTOMERS) --seed 1
	$(PY) manage.py collectstatic --noinput --verbosity 0
	HOST=$(HOST) PORT=$(PORT) PY=$(PY) scripts/serve.sh

# The production process set on this machine (gunicorn, a delivery+default worker, a heavy-jobs
# worker, one beat; DEBUG off, whitenoise): a smoke test of deploy/, not a development server.
SERVE_BROKER_URL ?= redis://127.0.0.1:6379/0
serve: venv
	@scripts/ensure-services.sh redis
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$(SERVE_BROKER_URL)} HOST=$(HOST) PORT=$(PORT) PY=$(PY) \
	  scripts/serve-production.sh

services:
	scripts/ensure-services.sh

# One pass: every test (unit, integration with a real Celery worker on Redis, browser) on PostgreSQL.
test: venv
	$(MAKE) --no-print-directory lint
	@scripts/ensure-services.sh redis || { \
	  echo "!!! Redis is unreachable: the worker tests cannot run, so the suite was NOT run !!!"; \
	  exit 1; }
	env -u CELERY_BROKER_URL TEST_REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest $(PYTEST_ARGS)

# The campaign fault test, longer than in `make test`: workers killed with SIGKILL at random
# moments (DELIVERY_FAULT_SEED picks them), then every message is checked against what the
# SMTP server received.
DELIVERY_FAULT_KILLS ?= 100
DELIVERY_FAULT_RECIPIENTS ?= 10000
test-delivery-faults: venv
	@scripts/ensure-services.sh redis
	env -u CELERY_BROKER_URL TEST_REDIS_URL=$(TEST_REDIS_URL) \
	  DELIVERY_FAULT_KILLS=$(DELIVERY_FAULT_KILLS) DELIVERY_FAULT_RECIPIENTS=$(DELIVERY_FAULT_RECIPIENTS) \
	  $(PY) -m pytest -s tests/integration/test_campaign_delivery.py -k random $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: bench-import bench-ui bench-segments bench-segment-edit bench-ml bench-clv bench-suppression bench-campaigns bench-kpi bench-realtime bench-journeys bench-deals

bench-import: venv
	@scripts/ensure-services.sh
	DATABASE_URL=$(BENCH_IMPORT_DATABASE_URL) $(PY) -m bench.bench_import $(BENCH_ARGS)

bench-ui: venv
	@scripts/ensure-services.sh
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench.bench_ui $(BENCH_ARGS)

bench-segments: venv
	@scripts/ensure-services.sh
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench.bench_segments $(BENCH_ARGS)

bench-segment-edit: venv
	@scripts/ensure-services.sh
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench.bench_segment_edit $(BENCH_ARGS)

bench-ml: venv
	@scripts/ensure-services.sh
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench.bench_ml $(BENCH_ARGS)

bench-clv: venv
	@scripts/ensure-services.sh
	DATABASE_URL=$(BENCH_CLV_DATABASE_URL) $(PY) -m bench.bench_clv $(BENCH_ARGS)

bench-suppression: venv
	@scripts/ensure-services.sh
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench.bench_suppression $(BENCH_ARGS)

bench-campaigns: venv
	@scripts/ensure-services.sh
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench.bench_campaigns $(BENCH_ARGS)

bench-kpi: venv
	@scripts/ensure-services.sh
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench.bench_kpi $(BENCH_ARGS)

bench-realtime: venv
	@scripts/ensure-services.sh
	DATABASE_URL=$(BENCH_REALTIME_DATABASE_URL) $(PY) -m bench.bench_realtime $(BENCH_ARGS)

bench-journeys: venv
	@scripts/ensure-services.sh
	DATABASE_URL=$(BENCH_REALTIME_DATABASE_URL) $(PY) -m bench.bench_journeys $(BENCH_ARGS)

# The board, the deal list and a bulk action on 100k deals at 1M customers / 200k deals.
bench-deals: venv
	@scripts/ensure-services.sh
	DATABASE_URL=$(BENCH_DEALS_DATABASE_URL) $(PY) -m bench.bench_deals $(BENCH_ARGS)

# The production set (gunicorn, workers, beat) under N signed-in clients on loopback:
# make bench-load BENCH_ARGS="--clients 20 --duration 30"
bench-load: venv
	@scripts/ensure-services.sh
	DATABASE_URL=$(BENCH_LOAD_DATABASE_URL) CELERY_BROKER_URL=$(BENCH_LOAD_BROKER_URL) \
	  $(PY) -m bench.bench_load $(BENCH_ARGS)
