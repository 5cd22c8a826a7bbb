"""Celery tasks of the pipeline: thin, ids only, safe to run twice."""

from celery import shared_task

from deals.models import WinModel


@shared_task(acks_late=True)
def win_model_train_task(job_id: int) -> None:
    from deals.win_model import win_model_run

    job = WinModel.objects.filter(pk=job_id).first()
    if job is None or job.finished:  # deleted since it was queued, or already run
        return
    win_model_run(job=job)
