"""Structured logs: one JSON object per line, each carrying the id of the request it serves.

The request id is set by crm.observability for a web request (taken from a well-formed
X-Request-ID header of the proxy in front, else new) and for a task (from the headers of the
message, put there when the task was queued during a request), so one grep finds what a click
caused on every process.
"""

import contextvars
import datetime as dt
import json
import logging
import re
import uuid

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

# What a request id may look like when it comes from outside (a proxy's X-Request-ID): short,
# no spaces or quotes, so it cannot forge log lines or fields.
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")

# The attributes every LogRecord has; anything else was passed as `extra=` and is logged.
_RECORD_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "request_id",
}


def request_id_new() -> str:
    return uuid.uuid4().hex


def request_id_accept(value: str | None) -> str:
    """The id to use for a request: the proxy's one when well-formed, else a new one."""
    if value and REQUEST_ID_PATTERN.match(value):
        return value
    return request_id_new()


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (the current request's or task's, else "-") to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = request_id_var.get() or "-"
        return True


def _request_id_of(record: logging.LogRecord) -> str | None:
    value = getattr(record, "request_id", "") or request_id_var.get()
    return value if value and value != "-" else None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and the extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": _request_id_of(record),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
