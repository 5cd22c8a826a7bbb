"""Prometheus metrics (prometheus-client), answered at /metrics.

Web processes measure requests (crm.observability), worker processes measure tasks; with
PROMETHEUS_MULTIPROC_DIR set for every process of a host, /metrics sums them all. Queue depths
are read from the broker when scraped. Segment refresh durations and campaign outcomes come from
the tasks that do the work (by task name, so this module imports no app above crm).
"""

import hmac
import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from crm.client_address import client_address

REQUEST_LATENCY = Histogram(
    "crm_request_duration_seconds",
    "Time to answer a request, by view.",
    ["view", "method", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TASK_DURATION = Histogram(
    "crm_task_duration_seconds",
    "Time a Celery task ran, by task name and outcome.",
    ["task", "outcome"],
    buckets=(0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600),
)
TASK_FAILURES = Counter(
    "crm_task_failures_total", "Celery tasks that raised, by task name.", ["task"]
)
MESSAGES = Counter(
    "crm_campaign_messages_total",
    "Campaign messages by outcome (sent: accepted by the server or provider).",
    ["outcome"],
)
SEGMENT_REFRESH = Histogram(
    "crm_segment_refresh_duration_seconds",
    "Time a segment refresh task took.",
    buckets=(0.05, 0.1, 0.5, 1, 2.5, 5, 15, 60, 300, 900),
)

SEGMENT_REFRESH_TASK = "segments.tasks.segment_refresh_task"
SEND_BATCH_TASK = "campaigns.tasks.campaign_send_batch_task"
MESSAGE_OUTCOMES = ("sent", "failed", "skipped")


def task_observe(*, name: str, seconds: float, failed: bool, result: object) -> None:
    """Record one finished task (called from crm.observability's Celery signal handlers)."""
    TASK_DURATION.labels(task=name, outcome="failure" if failed else "success").observe(seconds)
    if failed:
        TASK_FAILURES.labels(task=name).inc()
        return
    if name == SEGMENT_REFRESH_TASK:
        SEGMENT_REFRESH.observe(seconds)
    if name == SEND_BATCH_TASK and isinstance(result, dict):
        for outcome in MESSAGE_OUTCOMES:
            if result.get(outcome):
                MESSAGES.labels(outcome=outcome).inc(result[outcome])


class QueueDepthCollector:
    """crm_queue_depth{queue}: messages waiting in each queue, read from the broker on scrape."""

    def collect(self):
        from crm.operations import queue_lengths

        family = GaugeMetricFamily(
            "crm_queue_depth", "Messages waiting in a Celery queue.", labels=["queue"]
        )
        for queue, length in queue_lengths().items():
            if length is not None:
                family.add_metric([queue], length)
        yield family


def registry_for_scrape() -> CollectorRegistry:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    return registry


def metrics_allowed(request: HttpRequest) -> bool:
    """A scraper with the token (Authorization: Bearer ...) or from an allowed address."""
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        if hmac.compare_digest(header.removeprefix("Bearer ").encode(), token.encode()):
            return True
    return bool(settings.METRICS_ALLOWED_IPS) and client_address(request) in set(
        settings.METRICS_ALLOWED_IPS
    )


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        return HttpResponse(
            "Forbidden: metrics need METRICS_TOKEN or METRICS_ALLOWED_IPS.\n",
            status=403,
            content_type="text/plain",
        )
    registry = registry_for_scrape()
    output = generate_latest(registry)
    output += generate_latest(_queue_registry())
    return HttpResponse(output, content_type=CONTENT_TYPE_LATEST)


def _queue_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueDepthCollector())
    return registry
