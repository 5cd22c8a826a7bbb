"""ML jobs: queued on a worker, run with their progress, result and failure recorded."""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from segments.ml.churn import TrainingRefused
from segments.ml.models import MLJob, MLSegment
from segments.ml.services.clustering import ml_segment_assign, ml_segment_train
from segments.ml.services.lifetime import lifetime_model_fit
from segments.ml.services.predictive import predictive_score_all, predictive_train
from segments.ml.services.rfm import rfm_refresh


def ml_job_queue(
    *,
    kind: str,
    user: AbstractBaseUser | None,
    ml_segment: MLSegment | None = None,
    options: dict | None = None,
) -> MLJob:
    """Record a job and queue it on a worker after the transaction commits."""
    from segments.ml.tasks import ml_job_task

    job = MLJob.objects.create(
        kind=kind,
        ml_segment=ml_segment,
        options=options or {},
        created_by=user if user is not None and user.is_authenticated else None,
    )
    transaction.on_commit(lambda: ml_job_task.delay(job.pk))
    return job


def ml_job_run(*, job: MLJob) -> MLJob:
    """Run a queued job, recording its progress, its result and any failure in words."""
    if job.finished:
        return job
    MLJob.objects.filter(pk=job.pk).update(
        status=MLJob.Status.RUNNING, started_at=timezone.now(), progress=1
    )
    try:
        if job.kind == MLJob.Kind.TRAIN:
            version = ml_segment_train(ml_segment=job.ml_segment, job=job)
            message = f"Version {version.version} trained: {version.k} clusters."
        elif job.kind == MLJob.Kind.ASSIGN:
            count = ml_segment_assign(ml_segment=job.ml_segment, job=job)
            message = f"{count} customers assigned."
        elif job.kind == MLJob.Kind.PREDICTIVE:
            model = predictive_train(job=job, **job.options)
            message = f"Churn model trained as of {model.as_of}: held-out ROC AUC " + (
                f"{model.metrics['roc_auc']:.3f}."
            )
            if model.backtest:
                message += " Back-test: kept with its report, current scores untouched."
            elif not model.active:
                message += " " + model.metrics["refused"]
        elif job.kind == MLJob.Kind.LIFETIME:
            model = lifetime_model_fit(job=job, **job.options)
            message = f"Lifetime value as of {model.as_of}: {model.customers} buyers scored" + (
                " (back-test, current scores untouched)." if model.backtest else "."
            )
        elif job.kind == MLJob.Kind.SCORE:
            message = f"{predictive_score_all(job=job)} customers scored."
        else:
            run = rfm_refresh(**job.options)
            message = f"{run.customers} customers scored by RFM."
    except (TrainingRefused, ValidationError, ValueError) as exc:
        text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        MLJob.objects.filter(pk=job.pk).update(
            status=MLJob.Status.FAILED, message=text, finished_at=timezone.now()
        )
    else:
        MLJob.objects.filter(pk=job.pk).update(
            status=MLJob.Status.DONE, progress=100, step="done", message=message,
            finished_at=timezone.now(),
        )  # fmt: skip
    job.refresh_from_db()
    return job
