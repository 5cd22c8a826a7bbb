"""Celery tasks of journeys: thin, safe to run twice (enrolments are locked, steps run once)."""

from celery import shared_task

from journeys.engine import enrolments_advance_due, journeys_run_due


@shared_task(acks_late=True)
def journeys_run_task() -> dict:
    """Beat: enrol the new triggers of every active journey and move the due enrolments on."""
    return journeys_run_due()


@shared_task(acks_late=True)
def journeys_advance_task() -> int:
    """Move the due enrolments on now (queued after a test run or a manual enrolment)."""
    return enrolments_advance_due()
