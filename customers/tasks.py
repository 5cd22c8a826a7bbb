"""Celery tasks of customers: thin, ids only, safe to run twice."""

from celery import shared_task

from customers.importing import import_job_run
from customers.models import ImportJob
from customers.services import customer_figures_check


@shared_task(acks_late=True)
def import_run_task(job_id: int) -> None:
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:  # deleted since it was queued
        return
    import_job_run(job=job)


@shared_task(acks_late=True)
def customer_figures_check_task() -> None:
    """Nightly: the derived figures agree with the purchases; drift is logged, recorded and
    repaired (customers.services.customer_figures_check)."""
    customer_figures_check(repair=True)
