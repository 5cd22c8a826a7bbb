#!/usr/bin/env bash
# The production process set on this machine, for a smoke test (`make serve`): gunicorn with
# DEBUG off and static files through whitenoise, a Celery worker for campaign delivery and the
# short default tasks, a worker for heavy jobs (imports, refreshes, ML, exports), and one beat.
# Ctrl-C (or SIGTERM) stops all of them; if one of them dies, the others are stopped too.
#
# Only for this machine: a throwaway SECRET_KEY is generated when none is set, and cookies are
# not marked secure because it serves plain http on loopback. Production sets these in its
# environment (deploy/crm.env.example).
set -eu
PY=${PY:-.venv/bin/python}
BIN=$(dirname "$PY")
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
: "${CELERY_BROKER_URL:?make serve needs a broker: set CELERY_BROKER_URL (redis://127.0.0.1:6379/0)}"
export CELERY_BROKER_URL
export DEBUG=false
export SECRET_KEY=${SECRET_KEY:-$("$PY" -c 'import secrets; print(secrets.token_urlsafe(50))')}
export ALLOWED_HOSTS=${ALLOWED_HOSTS:-127.0.0.1,localhost}
export SECURE_SSL_REDIRECT=${SECURE_SSL_REDIRECT:-false}
export SESSION_COOKIE_SECURE=${SESSION_COOKIE_SECURE:-false}
export CSRF_COOKIE_SECURE=${CSRF_COOKIE_SECURE:-false}
export SECURE_HSTS_SECONDS=${SECURE_HSTS_SECONDS:-0}
export METRICS_ALLOWED_IPS=${METRICS_ALLOWED_IPS:-127.0.0.1}
export GUNICORN_BIND="$HOST:$PORT"
export PYTHONUNBUFFERED=1
metrics_dir=$(mktemp -d "${TMPDIR:-/tmp}/crm-metrics.XXXXXX")
export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-$metrics_dir}
CONCURRENCY=${SERVE_WORKER_CONCURRENCY:-2}
DEFAULT_QUEUE=${CELERY_TASK_DEFAULT_QUEUE:-celery}
DELIVERY_QUEUE=${CRM_QUEUE_DELIVERY:-delivery}
HEAVY_QUEUE=${CRM_QUEUE_HEAVY:-heavy}
NAME=${SERVE_NAME:-serve}

pids=()
stopping=0
stop_all() {
  [ "$stopping" = 1 ] && return
  stopping=1
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$metrics_dir"
}
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

"$PY" manage.py migrate --noinput
"$PY" manage.py collectstatic --noinput --verbosity 0

"$BIN/gunicorn" -c deploy/gunicorn.conf.py crm.wsgi & pids+=($!)
"$PY" -m celery -A crm worker -Q "$DELIVERY_QUEUE,$DEFAULT_QUEUE" -n "$NAME-delivery@%h" \
  --concurrency="$CONCURRENCY" --loglevel=INFO & pids+=($!)
"$PY" -m celery -A crm worker -Q "$HEAVY_QUEUE" -n "$NAME-heavy@%h" \
  --concurrency="$CONCURRENCY" --loglevel=INFO & pids+=($!)
"$PY" -m celery -A crm beat --loglevel=INFO & pids+=($!)

cat <<MSG

  The CRM (production set, DEBUG off) is at http://$HOST:$PORT/
  Readiness: http://$HOST:$PORT/readyz   Metrics: http://$HOST:$PORT/metrics
  Workers: $NAME-delivery ($DELIVERY_QUEUE, $DEFAULT_QUEUE), $NAME-heavy ($HEAVY_QUEUE); one beat.

MSG
# Stop everything as soon as any one process ends.
wait -n "${pids[@]}" || true
echo "A process of the production set exited: stopping the others." >&2
stop_all
exit 1
