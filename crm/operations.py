"""What an operator needs to know about the running system: the checks of /readyz and the
figures of the admin System page (queues, workers, scheduled jobs, stuck or failed jobs, sizes).

Every call to the broker has a short timeout: a broker that does not answer makes a check fail
in seconds, never hang the page or the load balancer's probe.
"""

import datetime as dt
from dataclasses import dataclass, field

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Q
from django.utils import timezone

from crm.celery import app as celery_app
from crm.heartbeat import heartbeats_alive
from crm.jobs import Job, JobStatus
from crm.queues import queues_consumed

BROKER_TIMEOUT = 2.0


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    data: dict = field(default_factory=dict)


def queue_names() -> list[str]:
    return queues_consumed(
        default=settings.CELERY_TASK_DEFAULT_QUEUE,
        delivery=settings.CRM_QUEUE_DELIVERY,
        heavy=settings.CRM_QUEUE_HEAVY,
    )


def tasks_run_in_process() -> bool:
    """True without a broker: tasks run inside the request, no worker or beat is expected."""
    return bool(celery_app.conf.task_always_eager) or str(celery_app.conf.broker_url).startswith(
        "memory://"
    )


def _broker_connection():
    return celery_app.connection_for_read(connect_timeout=BROKER_TIMEOUT)


def queue_lengths() -> dict[str, int | None]:
    """Messages waiting per queue; None for a queue the broker would not tell."""
    if tasks_run_in_process():
        return {}
    from kombu.exceptions import ChannelError

    lengths: dict[str, int | None] = {}
    try:
        with _broker_connection() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT)
            for queue in queue_names():
                channel = conn.channel()
                try:
                    lengths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
                except ChannelError:  # never declared: nobody queued anything there yet
                    lengths[queue] = 0
                finally:
                    channel.close()
    except Exception:
        return {queue: None for queue in queue_names()}
    return lengths


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return Check("database", False, f"unreachable: {type(exc).__name__}: {exc}".strip())
    return Check("database", True, "reachable")


def check_migrations() -> Check:
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:
        return Check("migrations", False, f"cannot be read: {type(exc).__name__}")
    if plan:
        pending = [f"{m.app_label}.{m.name}" for m, _ in plan]
        return Check(
            "migrations",
            False,
            f"{len(pending)} not applied (run manage.py migrate)",
            {"pending": pending[:20]},
        )
    return Check("migrations", True, "all applied")


def check_broker() -> Check:
    if tasks_run_in_process():
        return Check("broker", True, "none configured: tasks run in-process")
    try:
        with _broker_connection() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT)
    except Exception as exc:
        return Check("broker", False, f"unreachable: {type(exc).__name__}")
    return Check("broker", True, "reachable")


def check_workers(*, now: dt.datetime | None = None) -> Check:
    if tasks_run_in_process():
        return Check("workers", True, "none needed: tasks run in-process")
    try:
        alive = [h for h in heartbeats_alive(now=now) if h.kind == "worker"]
    except Exception as exc:
        return Check("workers", False, f"cannot be read: {type(exc).__name__}")
    consumed = {queue for h in alive for queue in h.queues}
    unserved = [queue for queue in queue_names() if queue not in consumed]
    data = {"workers": {h.name: h.queues for h in alive}, "queues_without_worker": unserved}
    if not alive:
        return Check(
            "workers",
            False,
            f"no worker heartbeat in the last {settings.CRM_HEARTBEAT_MAX_AGE}s",
            data,
        )
    detail = f"{len(alive)} alive"
    if unserved:
        detail += f"; no worker consumes {', '.join(unserved)}"
    return Check("workers", True, detail, data)


def check_beat(*, now: dt.datetime | None = None) -> Check:
    if tasks_run_in_process():
        return Check("beat", True, "none needed: tasks run in-process")
    try:
        beats = [h for h in heartbeats_alive(now=now) if h.kind == "beat"]
    except Exception as exc:
        return Check("beat", False, f"cannot be read: {type(exc).__name__}")
    if not beats:
        return Check(
            "beat", False, f"no beat heartbeat in the last {settings.CRM_HEARTBEAT_MAX_AGE}s"
        )
    data = {"beats": [b.name for b in beats], "last_tick": max(b.seen_at for b in beats)}
    if len(beats) > 1:  # two beats send every scheduled task twice
        return Check("beat", False, f"{len(beats)} beats are running; exactly one must", data)
    return Check("beat", True, "alive", data)


def readiness_checks() -> list[Check]:
    database = check_database()
    if not database.ok:
        return [database, check_broker()]
    return [database, check_migrations(), check_broker(), check_workers(), check_beat()]


# The System page.


def workers_inspect() -> dict[str, list[str]] | None:
    """Each worker that answers within a second, with the queues it consumes; None on failure."""
    if tasks_run_in_process():
        return {}
    try:
        replies = celery_app.control.inspect(timeout=1.0).active_queues() or {}
    except Exception:
        return None
    return {worker: sorted(q["name"] for q in queues) for worker, queues in replies.items()}


def scheduled_jobs() -> list[dict]:
    from django_celery_beat.models import PeriodicTask

    return list(
        PeriodicTask.objects.order_by("name").values(
            "name", "task", "enabled", "last_run_at", "total_run_count"
        )
    )


def job_models() -> list[type[Job]]:
    return [m for m in apps.get_models() if issubclass(m, Job)]


def jobs_needing_attention(*, now: dt.datetime | None = None, limit: int = 20) -> list[dict]:
    """Stuck jobs of every kind, and the ones that failed in the last week, with their reason."""
    now = now or timezone.now()
    queued_before = now - dt.timedelta(seconds=settings.JOBS_QUEUED_STUCK_AFTER)
    running_before = now - dt.timedelta(seconds=settings.JOBS_RUNNING_STUCK_AFTER)
    failed_since = now - dt.timedelta(days=7)
    rows = []
    for model in job_models():
        stuck_or_failed = (
            Q(status=JobStatus.QUEUED, created_at__lt=queued_before)
            | Q(status=JobStatus.RUNNING, started_at__lt=running_before)
            | Q(status=JobStatus.RUNNING, started_at__isnull=True, created_at__lt=running_before)
            | Q(status=JobStatus.FAILED, finished_at__gte=failed_since)
        )
        for job in model.objects.filter(stuck_or_failed).order_by("-created_at")[:limit]:
            rows.append(
                {
                    "kind": model._meta.verbose_name,
                    "id": job.pk,
                    "state": job.job_state_label,
                    "reason": job.job_state_reason,
                    "created_at": job.created_at,
                }
            )
    rows.sort(key=lambda row: row["created_at"], reverse=True)
    return rows[: limit * 2]


def database_size() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        return cursor.fetchone()[0]


def redis_size() -> dict | None:
    """Memory used and keys held by the Redis broker; None when the broker is not Redis."""
    url = str(celery_app.conf.broker_url)
    if not url.startswith(("redis://", "rediss://")):
        return None
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=BROKER_TIMEOUT)
        return {"used_memory": client.info("memory")["used_memory"], "keys": client.dbsize()}
    except Exception:
        return None
