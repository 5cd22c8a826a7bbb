"""A log line and a latency sample per request and per task, and the request id carried from a
request into the tasks it queues (in the message headers), so one id follows a click to the
worker that finishes it."""

import logging
import time

from celery import signals
from django.http import HttpRequest, HttpResponse

from crm.logs import request_id_accept, request_id_var
from crm.metrics import REQUEST_LATENCY, task_observe

request_logger = logging.getLogger("crm.request")
task_logger = logging.getLogger("crm.task")

REQUEST_ID_HEADER = "crm_request_id"  # the Celery message header holding it


class RequestObservabilityMiddleware:
    """First of all middleware: sets the request id, times the request and logs it in one line."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_accept(request.headers.get("X-Request-ID"))
        request.request_id = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            response["X-Request-ID"] = request_id
            return response
        finally:
            seconds = time.perf_counter() - started
            match = getattr(request, "resolver_match", None)
            view = (match.view_name or match._func_path) if match else "<unmatched>"
            REQUEST_LATENCY.labels(view=view, method=request.method, status=str(status)).observe(
                seconds
            )
            user = getattr(request, "user", None)
            request_logger.info(
                "%s %s %s %.1fms",
                request.method,
                request.path,
                status,
                seconds * 1000,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "view": view,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                    "user_id": user.pk if user is not None and user.is_authenticated else None,
                },
            )
            request_id_var.reset(token)


@signals.before_task_publish.connect
def _request_id_into_message(headers=None, **kwargs) -> None:
    request_id = request_id_var.get()
    if headers is not None and request_id and REQUEST_ID_HEADER not in headers:
        headers[REQUEST_ID_HEADER] = request_id


_started: dict[str, tuple[float, object]] = {}


@signals.task_prerun.connect
def _task_started(task_id=None, task=None, **kwargs) -> None:
    # An eager task (no broker) runs inside the request that queued it and keeps its id.
    request_id = getattr(task.request, REQUEST_ID_HEADER, None) or request_id_var.get()
    token = request_id_var.set(request_id)
    _started[task_id] = (time.perf_counter(), token)


@signals.task_postrun.connect
def _task_finished(task_id=None, task=None, retval=None, state=None, **kwargs) -> None:
    started, token = _started.pop(task_id, (None, None))
    seconds = time.perf_counter() - started if started is not None else 0.0
    failed = state == "FAILURE"
    task_observe(name=task.name, seconds=seconds, failed=failed, result=retval)
    task_logger.log(
        logging.ERROR if failed else logging.INFO,
        "task %s %s %.1fms",
        task.name,
        state,
        seconds * 1000,
        extra={
            "task": task.name,
            "task_id": task_id,
            "state": state,
            "duration_ms": round(seconds * 1000, 1),
        },
    )
    if token is not None:
        try:
            request_id_var.reset(token)
        except ValueError:  # set in another context (eager tasks nested in a request)
            request_id_var.set("")
