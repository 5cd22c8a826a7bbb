"""Probes for load balancers and the admin System page.

/healthz answers as long as the process serves requests (no database: a database outage must
not make the orchestrator restart every web process). /readyz answers 200 only when this process
can do its work: database reachable, migrations applied, broker reachable, a worker and beat alive.
"""

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from crm import operations


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    checks = operations.readiness_checks()
    ready = all(check.ok for check in checks)
    return JsonResponse(
        {
            "status": "ready" if ready else "unavailable",
            "checks": {
                check.name: {"ok": check.ok, "detail": check.detail, **check.data}
                for check in checks
            },
        },
        status=200 if ready else 503,
    )


class HealthProbeMiddleware:
    """First of all middleware: answers /healthz and /readyz before host validation and the
    HTTPS redirect, because a load balancer probes each backend by its address over plain http
    (Host: 10.0.0.7 would be refused by ALLOWED_HOSTS, http redirected), and without a log line
    per probe."""

    PROBES = {"/healthz": healthz, "/readyz": readyz}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        probe = self.PROBES.get(request.path_info)
        if probe is not None and request.method in ("GET", "HEAD"):
            return probe(request)
        return self.get_response(request)


@never_cache
@staff_member_required
def system(request: HttpRequest) -> HttpResponse:
    """Queues, workers, the schedule, jobs needing attention and sizes, for superusers."""
    if not request.user.is_superuser:
        raise PermissionDenied
    lengths = operations.queue_lengths()
    context = {
        "title": "System",
        "checks": operations.readiness_checks(),
        "in_process": operations.tasks_run_in_process(),
        "queues": [(name, lengths.get(name)) for name in operations.queue_names()],
        "workers": operations.workers_inspect(),
        "heartbeats": operations.heartbeats_alive(),
        "schedule": operations.scheduled_jobs(),
        "jobs": operations.jobs_needing_attention(),
        "database_size": operations.database_size(),
        "redis": operations.redis_size(),
    }
    return render(request, "admin/system.html", context)
