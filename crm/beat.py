"""The beat scheduler: django-celery-beat's database scheduler that also records its heartbeat
from its own loop, so /readyz's "beat's last tick" is the scheduler's last iteration, not merely
a sign that the process exists."""

import logging
import socket
import time

from django.conf import settings
from django.db import close_old_connections
from django_celery_beat.schedulers import DatabaseScheduler

from crm.heartbeat import Heartbeat

logger = logging.getLogger(__name__)


class HeartbeatScheduler(DatabaseScheduler):
    _heartbeat: Heartbeat | None = None
    _last_beat = 0.0

    def tick(self, *args, **kwargs) -> float:
        interval = super().tick(*args, **kwargs)
        now = time.monotonic()
        if now - self._last_beat >= settings.CRM_HEARTBEAT_INTERVAL:
            self._last_beat = now
            if self._heartbeat is None:
                self._heartbeat = Heartbeat(
                    name=f"beat@{socket.gethostname()}", kind="beat", queues=[]
                )
            try:
                self._heartbeat.beat()
            except Exception:  # the database may be away for a moment; the next tick retries
                close_old_connections()
                logger.warning("beat heartbeat could not be recorded", exc_info=True)
        # Wake up often enough to keep beating even when nothing is due for a while.
        return min(interval, settings.CRM_HEARTBEAT_INTERVAL)

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._heartbeat is not None:
                self._heartbeat.forget()
