"""What every run shares: its job's progress, and the reference day it scores."""

import datetime as dt

from django.utils import timezone

from segments.ml.models import MLJob


def _job_progress(job: MLJob | None, progress: int, step: str) -> None:
    if job is not None:
        MLJob.objects.filter(pk=job.pk).update(progress=progress, step=step[:200])


def _reference(reference_date: dt.date | None) -> dt.datetime:
    """The end of the reference day (exclusive), in the project's time zone."""
    day = reference_date or timezone.localdate()
    start = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min)
    return timezone.make_aware(start, timezone.get_current_timezone())
