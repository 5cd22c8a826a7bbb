"""Heartbeats: each Celery worker and beat process writes a row every CRM_HEARTBEAT_INTERVAL
seconds, so /readyz and the System page know who is alive and which queues someone consumes.

A thread of the worker's main process writes the row, so a worker busy with a long task still
beats; beat writes it from its scheduler loop (crm/beat.py), so a beat whose loop hangs stops
beating; a process that is killed stops beating and drops out of /readyz after
CRM_HEARTBEAT_MAX_AGE seconds; one that stops cleanly deletes its row at once.
"""

import datetime as dt
import logging
import os
import threading

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from crm.models import ProcessHeartbeat

logger = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, *, name: str, kind: str, queues: list[str]):
        self.name = name
        self.kind = kind
        self.queues = queues
        self.started_at = timezone.now()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"heartbeat-{kind}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        self.forget()

    def forget(self) -> None:
        """Remove this process's row: it stops cleanly, so nobody need wait for it to age."""
        try:
            ProcessHeartbeat.objects.filter(name=self.name, pid=os.getpid()).delete()
        except Exception:  # the database may be gone at shutdown; the row then just ages
            logger.warning("heartbeat: could not remove %s", self.name, exc_info=True)
        finally:
            connection.close()

    def beat(self) -> None:
        ProcessHeartbeat.objects.update_or_create(
            name=self.name,
            defaults={
                "kind": self.kind,
                "queues": self.queues,
                "pid": os.getpid(),
                "started_at": self.started_at,
                "seen_at": timezone.now(),
            },
        )

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.beat()
            except Exception:  # a database hiccup must not kill the thread; the next beat retries
                logger.warning("heartbeat: could not record %s", self.name, exc_info=True)
            finally:
                close_old_connections()
                connection.close()
            self.stopped.wait(settings.CRM_HEARTBEAT_INTERVAL)


def heartbeats_alive(*, now: dt.datetime | None = None) -> list[ProcessHeartbeat]:
    """The workers and beats that gave a sign of life within CRM_HEARTBEAT_MAX_AGE seconds."""
    now = now or timezone.now()
    since = now - dt.timedelta(seconds=settings.CRM_HEARTBEAT_MAX_AGE)
    return list(ProcessHeartbeat.objects.filter(seen_at__gte=since))
