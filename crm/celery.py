"""The Celery application: configured from Django settings (CELERY_* names)."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")

# Packages whose `tasks` module autodiscovery would miss: it imports `<app>.tasks` for each
# installed app only, and these packages live inside an app. A task defined anywhere else is
# never registered on a worker, and its jobs would wait forever (tests/integration checks).
TASK_PACKAGES = ["segments.ml"]

app = Celery("crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(TASK_PACKAGES)

# Request ids into task messages, a log line and metrics per task (crm/observability.py).
import crm.observability  # noqa: E402, F401

_heartbeats = []


@signals.worker_ready.connect
def _worker_heartbeat_start(sender=None, **kwargs) -> None:
    from crm.heartbeat import Heartbeat

    queues = sorted(sender.app.amqp.queues.consume_from)
    heartbeat = Heartbeat(name=sender.hostname, kind="worker", queues=queues)
    heartbeat.start()
    _heartbeats.append(heartbeat)


@signals.worker_shutdown.connect
def _worker_heartbeat_stop(**kwargs) -> None:
    while _heartbeats:
        _heartbeats.pop().stop()
