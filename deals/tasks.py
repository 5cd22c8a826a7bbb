"""Celery tasks of the pipeline: thin, ids only, safe to run twice."""

from celery import shared_task

from deals.models import DealBulkJob


@shared_task(acks_late=True)
def deal_bulk_job_run_task(job_id: int) -> None:
    from deals.bulk import deal_bulk_job_run

    job = DealBulkJob.objects.filter(pk=job_id).first()
    if job is None or job.finished:
        return
    deal_bulk_job_run(job=job)
