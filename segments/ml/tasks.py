"""Celery tasks of RFM, ML segments and predictive scores: thin, ids only, safe to run twice."""

from celery import shared_task
from django.core.exceptions import ValidationError

from segments.ml.models import MLJob, RfmRun
from segments.ml.services import (
    lifetime_model_fit,
    ml_job_run,
    ml_segments_assign_all,
    predictive_score_all,
    rfm_refresh,
)


@shared_task(acks_late=True)
def rfm_refresh_task(run_id: int | None = None) -> int | None:
    """Compute RFM (a queued run, or a new scheduled one); returns the run's id."""
    if run_id is None:
        return rfm_refresh(trigger="schedule").pk
    run = RfmRun.objects.filter(pk=run_id).first()
    if run is None or run.status == RfmRun.Status.DONE:
        return run_id if run else None
    return rfm_refresh(
        reference_date=run.reference_date, window_days=run.window_days, trigger=run.trigger, run=run
    ).pk


@shared_task(acks_late=True)
def ml_job_task(job_id: int) -> str | None:
    """Run one training, assignment or scoring job; returns its final status."""
    job = MLJob.objects.filter(pk=job_id).select_related("ml_segment").first()
    if job is None:  # deleted since it was queued
        return None
    return ml_job_run(job=job).status


@shared_task(acks_late=True)
def ml_segments_assign_task() -> int:
    """Re-assign customers of every trained ML segment with its stored model (beat)."""
    return ml_segments_assign_all()


@shared_task(acks_late=True)
def predictive_score_task() -> int:
    """Re-fit lifetime value as of today and re-score churn risk and expected value with the
    active model (beat). Writes current scores only: back-tests keep theirs."""
    try:
        lifetime_model_fit()
    except ValidationError:
        pass  # too few buyers yet: no lifetime value to write
    return predictive_score_all()
