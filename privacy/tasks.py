"""Celery tasks of privacy: thin, ids only, safe to run twice."""

from celery import shared_task

from privacy.models import BulkConsentJob, DataExport


@shared_task(acks_late=True)
def data_export_build_task(export_id: int) -> None:
    from privacy.exports import data_export_build

    export = DataExport.objects.filter(pk=export_id).first()
    if export is None or export.status == DataExport.Status.DONE:
        return
    data_export_build(export=export)


@shared_task(acks_late=True)
def consent_bulk_job_run_task(job_id: int) -> None:
    from privacy.services import consent_bulk_job_run

    job = BulkConsentJob.objects.filter(pk=job_id).first()
    if job is None or job.status == BulkConsentJob.Status.DONE:
        return
    consent_bulk_job_run(job=job)


@shared_task(acks_late=True)
def retention_run_task() -> None:
    from privacy.retention import retention_run

    retention_run(dry_run=False)
