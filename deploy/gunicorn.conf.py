"""Gunicorn settings for the CRM (gunicorn -c deploy/gunicorn.conf.py crm.wsgi).

Every value can be changed through the environment without editing this file.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# The usual (2 x cores) + 1 synchronous workers: requests spend most of their time in
# PostgreSQL, so a core serves about two at a time.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# A request longer than this is killed and logged: exports and imports run on workers, so a
# page that takes half a minute is a fault, not a slow job.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Recycle workers now and then so a slow leak never takes the host down.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "200"))
# Load the application in the master: a broken setting fails at start, not in each worker.
preload_app = os.environ.get("GUNICORN_PRELOAD", "true").lower() == "true"
# The proxy in front sets X-Forwarded-*; Django decides what to trust (TRUSTED_PROXIES).
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")

# Logs to stdout/stderr (journald or the process manager keeps them). The access log is one JSON
# object per line with the request id the app answers in X-Request-ID; the app's own request
# line (crm.observability) says the same with the view and user, so switch one off if you wish
# (GUNICORN_ACCESS_LOG=-: stdout, empty: off).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = (
    '{"time": "%(t)s", "logger": "gunicorn.access", "remote": "%(h)s", "method": "%(m)s", '
    '"path": "%(U)s", "status": %(s)s, "bytes": "%(B)s", "duration_ms": %(M)s, '
    '"request_id": "%({x-request-id}o)s", "user_agent": "%(a)s"}'
)


def child_exit(server, worker):
    """Prometheus multiprocess mode: forget the metrics files of a worker that exited."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
