"""The one shape of a background job: queued, running, done or failed, and stuck when no worker
has moved it for too long.

Every long job (an import, a segment refresh, an RFM run, an ML job, a data export, a bulk consent
change) is a row of a model built on `Job`, written by its service and shown by the
`crm/_job_state.html` partial and `crm.api.jobs.JobStateFields` in the API. "Stuck" is not stored: it is what
a queued or running row is once JOBS_QUEUED_STUCK_AFTER or JOBS_RUNNING_STUCK_AFTER seconds have
passed, so a job nobody picks up is reported on the page instead of saying "Queued" forever.
"""

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils import timezone


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


STUCK = "stuck"
QUEUED_HINT = (
    "No worker has picked this job up. Check that a Celery worker is running and listens to "
    "the queue (make run starts one; see the README), and that the broker (CELERY_BROKER_URL) "
    "answers."
)
RUNNING_HINT = (
    "The worker running this job has given no sign of life. It may have been stopped or run out "
    "of memory: check the worker's log, then start the job again."
)


class Job(models.Model):
    """Status, timing and the reason of a failure, shared by every kind of background job."""

    Status = JobStatus

    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.DONE, JobStatus.FAILED)

    def stuck_reason(self, *, now: dt.datetime | None = None) -> str:
        """Why the job counts as stuck, or "" while it is moving or has ended."""
        now = now or timezone.now()
        if self.status == JobStatus.QUEUED and self.created_at:
            if (now - self.created_at).total_seconds() > settings.JOBS_QUEUED_STUCK_AFTER:
                return QUEUED_HINT
        if self.status == JobStatus.RUNNING:
            since = self.started_at or self.created_at
            if since and (now - since).total_seconds() > settings.JOBS_RUNNING_STUCK_AFTER:
                return RUNNING_HINT
        return ""

    @property
    def job_state(self) -> str:
        """queued, running, done, failed or stuck: what a person is told."""
        return STUCK if self.stuck_reason() else self.status

    @property
    def job_state_label(self) -> str:
        return "Stuck" if self.job_state == STUCK else self.get_status_display()

    @property
    def job_state_reason(self) -> str:
        """What to check when stuck, else the job's own message (the reason of a failure)."""
        return self.stuck_reason() or self.message


JOB_STATES = [*JobStatus.choices, (STUCK, "Stuck")]
