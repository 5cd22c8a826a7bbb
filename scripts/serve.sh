#!/usr/bin/env bash
# Serve the app, with a Celery worker and beat when a broker is configured.
set -eu
PY=${PY:-.venv/bin/python}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
pids=()
cleanup() { for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
if [ -n "${CELERY_BROKER_URL:-}" ]; then
  "$PY" -m celery -A crm worker --loglevel=INFO --concurrency=2 & pids+=($!)
  "$PY" -m celery -A crm beat --loglevel=INFO & pids+=($!)
  echo "Celery worker and beat started against $CELERY_BROKER_URL"
else
  echo "No CELERY_BROKER_URL: background jobs run in-process."
fi
cat <<MSG

  The CRM is at   http://$HOST:$PORT/
  API docs:       http://$HOST:$PORT/api/docs/
  Demo sign-ins (password for all: demo-pass-2024):
    admin       superuser, every role
    sales       sales (owns part of the demo customers)
    sales2      sales (owns another part)
    marketing   marketing
    privacy     privacy officer

MSG
"$PY" manage.py runserver "$HOST:$PORT"
