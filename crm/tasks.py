"""Celery tasks of the project itself: thin, ids only, safe to run twice."""

from celery import shared_task

from crm.models import BulkJob


@shared_task(acks_late=True)
def bulk_job_run_task(job_id: int) -> None:
    from crm.bulk import bulk_job_run

    job = BulkJob.objects.filter(pk=job_id).first()
    if job is None or job.finished:  # deleted since it was queued, or already run
        return
    bulk_job_run(job=job)
