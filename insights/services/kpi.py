"""KPI snapshots: computed set-based (insights.kpi), kept per segment and period, refreshed
nightly by beat and on request as a job (KpiRefresh)."""

import datetime as dt

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from crm.roles import Role, user_has_role
from insights.kpi import PERIOD_DAYS, Period, kpi_counts_timed
from insights.models import KpiRefresh, KpiSnapshot
from segments.models import Segment

# The windows the nightly run keeps ready for every segment and for all customers.
NIGHTLY_DAYS = (30, 90)
OLDEST_END = dt.date(2000, 1, 1)


def kpi_period(*, days: object, end: object) -> Period:
    """The period a person asked for, or a ValidationError naming the field."""
    errors = {}
    try:
        days = int(days)
    except (TypeError, ValueError):
        days = None
    if days not in PERIOD_DAYS:
        errors["days"] = f"choose one of {', '.join(map(str, PERIOD_DAYS))}"
    today = timezone.localdate()
    if end in (None, ""):
        end = today - dt.timedelta(days=1)  # the last complete day
    elif not isinstance(end, dt.date):
        try:
            end = dt.date.fromisoformat(str(end))
        except ValueError:
            end = None
            errors["end"] = "a date as YYYY-MM-DD"
    if end is not None and not OLDEST_END <= end <= today:
        errors["end"] = f"a date from {OLDEST_END} to today"
    if errors:
        raise ValidationError(errors)
    return Period(days=days, end=end)


def kpi_snapshot_compute(*, segment: Segment | None, period: Period) -> KpiSnapshot:
    """Compute the figures now and keep them (replacing what was kept for the same period)."""
    counts, duration_ms = kpi_counts_timed(
        segment_id=segment.pk if segment else None, period=period
    )
    snapshot, _ = KpiSnapshot.objects.update_or_create(
        segment=segment,
        days=period.days,
        end=period.end,
        defaults={"figures": counts, "computed_at": timezone.now(), "duration_ms": duration_ms},
    )
    return snapshot


def kpi_snapshot_get(*, segment: Segment | None, period: Period) -> KpiSnapshot:
    """The kept figures of the period, computed now when nobody has asked for them before."""
    snapshot = KpiSnapshot.objects.filter(segment=segment, days=period.days, end=period.end).first()
    return snapshot or kpi_snapshot_compute(segment=segment, period=period)


def _require_marketer(actor: AbstractBaseUser | None) -> None:
    if actor is not None and not user_has_role(actor, Role.MARKETING):
        raise ValidationError({"actor": "only marketers and administrators may do this"})


def kpi_refresh_queue(
    *, segment: Segment | None, period: Period, actor: AbstractBaseUser | None
) -> KpiRefresh:
    """Queue a recomputation of the figures; the page follows the job."""
    _require_marketer(actor)
    refresh = KpiRefresh.objects.create(
        segment=segment,
        days=period.days,
        end=period.end,
        requested_by=actor if actor is not None and actor.is_authenticated else None,
    )
    transaction.on_commit(lambda: _queue(refresh.pk))
    return refresh


def _queue(refresh_id: int) -> None:
    from insights.tasks import kpi_refresh_task  # tasks import this module

    kpi_refresh_task.delay(refresh_id)


def kpi_refresh_run(*, refresh: KpiRefresh) -> KpiRefresh:
    """Run a queued recomputation; a failure is recorded in words, never left running."""
    if refresh.status == KpiRefresh.Status.DONE:
        return refresh
    refresh.status = KpiRefresh.Status.RUNNING
    refresh.started_at = timezone.now()
    refresh.save(update_fields=["status", "started_at"])
    try:
        kpi_snapshot_compute(
            segment=refresh.segment, period=Period(days=refresh.days, end=refresh.end)
        )
    except Exception as exc:
        refresh.status = KpiRefresh.Status.FAILED
        refresh.message = f"The figures could not be computed: {exc}"
    else:
        refresh.status = KpiRefresh.Status.DONE
        refresh.message = ""
    refresh.finished_at = timezone.now()
    refresh.save(update_fields=["status", "message", "finished_at"])
    return refresh


def kpi_snapshots_refresh_nightly(*, today: dt.date | None = None) -> int:
    """Recompute the figures of every segment and of all customers for the windows ending
    yesterday (the last complete day); returns how many were computed."""
    end = (today or timezone.localdate()) - dt.timedelta(days=1)
    segments = [None, *Segment.objects.order_by("pk")]
    for segment in segments:
        for days in NIGHTLY_DAYS:
            kpi_snapshot_compute(segment=segment, period=Period(days=days, end=end))
    # Figures of periods that ended over 400 days ago go: anyone asking gets them recomputed.
    KpiSnapshot.objects.filter(end__lt=end - dt.timedelta(days=400)).delete()
    return len(segments) * len(NIGHTLY_DAYS)
