"""An optional read replica (DATABASE_REPLICA_URL) for heavy reads, and the primary for the rest.

Only reads that are marked heavy go to the replica: segment previews and counts (inside
`heavy_reads()`), and the ML feature extraction (`heavy_read_connection()` for its raw SQL).
Everything else, every write, and every read inside a transaction stays on the primary.

Read-your-writes: during a web request that wrote anything, and for REPLICA_PIN_SECONDS after
it for the same browser (a cookie), heavy reads go to the primary too, so a marketer who has just
imported customers sees them in the next preview although the replica may lag. Celery tasks are
not pinned: they read the replica for features while they write their own job rows on the
primary, and never read those rows back through a heavy read.
"""

import contextvars
import time
from contextlib import ContextDecorator

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse

REPLICA = "replica"
PIN_COOKIE = "crm_primary_until"

_heavy: contextvars.ContextVar[bool] = contextvars.ContextVar("heavy_reads", default=False)
_pinned: contextvars.ContextVar[bool] = contextvars.ContextVar("primary_pinned", default=False)
_pin_on_write: contextvars.ContextVar[bool] = contextvars.ContextVar("pin_on_write", default=False)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


class heavy_reads(ContextDecorator):  # noqa: N801 (used as a decorator, like `atomic`)
    """Reads inside go to the replica (when there is one, and the request is not pinned)."""

    def _recreate_cm(self):  # a fresh instance per decorated call: reentrant and thread-safe
        return type(self)()

    def __enter__(self):
        self._token = _heavy.set(True)
        return self

    def __exit__(self, *exc):
        _heavy.reset(self._token)
        return False


def read_alias() -> str:
    if not (_heavy.get() and replica_configured()) or _pinned.get():
        return "default"
    if connections["default"].in_atomic_block:  # inside a transaction: see its own writes
        return "default"
    return REPLICA


def heavy_read_connection():
    """The connection for a heavy read in raw SQL: the replica when configured and allowed."""
    with heavy_reads():
        return connections[read_alias()]


class ReplicaRouter:
    def db_for_read(self, model, **hints) -> str:
        return read_alias()

    def db_for_write(self, model, **hints) -> str:
        if _pin_on_write.get():
            _pinned.set(True)
        return "default"

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool:
        return db == "default"


class ReplicaPinMiddleware:
    """Pins a request's heavy reads to the primary after a write in it, and for
    REPLICA_PIN_SECONDS after that for the same browser."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not replica_configured():
            return self.get_response(request)
        try:
            until = float(request.COOKIES.get(PIN_COOKIE, "0"))
        except ValueError:
            until = 0.0
        now = time.time()
        pinned = _pinned.set(now < until <= now + settings.REPLICA_PIN_SECONDS)
        on_write = _pin_on_write.set(True)
        try:
            response = self.get_response(request)
            wrote = _pinned.get() and not now < until
            if wrote or request.method not in ("GET", "HEAD", "OPTIONS"):
                response.set_cookie(
                    PIN_COOKIE,
                    str(now + settings.REPLICA_PIN_SECONDS),
                    max_age=settings.REPLICA_PIN_SECONDS,
                    httponly=True,
                    samesite="Lax",
                    secure=settings.SESSION_COOKIE_SECURE,
                )
            return response
        finally:
            _pin_on_write.reset(on_write)
            _pinned.reset(pinned)
