"""Celery tasks of segments: thin, ids only, safe to run twice."""

from celery import shared_task

from segments.models import RefreshRun, Segment
from segments.realtime import memberships_update_run
from segments.services import segment_refresh, segments_refresh_due


@shared_task(acks_late=True)
def segment_refresh_task(
    segment_id: int, trigger: str = RefreshRun.Trigger.SCHEDULE, run_id: int | None = None
) -> int | None:
    """Refresh one segment; returns the refresh run's id (None when the segment is gone)."""
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:  # deleted since it was queued
        return None
    run = RefreshRun.objects.filter(pk=run_id, segment=segment).first() if run_id else None
    if run is not None and run.status == RefreshRun.Status.DONE:  # a retry after success
        return run.pk
    return segment_refresh(segment=segment, trigger=trigger, run=run).pk


@shared_task(acks_late=True)
def segments_refresh_due_task() -> int:
    """Refresh every segment whose interval has passed (beat runs this every few minutes)."""
    return len(segments_refresh_due())


@shared_task(acks_late=True)
def segments_realtime_task() -> int:
    """Re-evaluate the customers writes marked, batch after batch (queued after such writes
    commit, and by beat every few seconds as a safety net); returns the customers taken."""
    return memberships_update_run().customers
