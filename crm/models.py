"""Models of the project itself: the views a person saves of a list, the bulk actions run over a
list's rows, and the heartbeats of workers and beat."""

from django.conf import settings
from django.db import models

from crm.jobs import Job


class SavedView(models.Model):
    """A named filter, sort and set of columns of a list (deals, customers, accounts); private
    views are their owner's alone, shared ones every colleague who may open the list sees."""

    class ListName(models.TextChoices):
        DEALS = "deals", "Deals"
        CUSTOMERS = "customers", "Customers"
        ACCOUNTS = "accounts", "Accounts"

    list_name = models.CharField(max_length=16, choices=ListName.choices)
    name = models.CharField(max_length=100)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views"
    )
    shared = models.BooleanField(default=False)
    # The list's query string as pairs (filters and sort), and the columns shown, in order.
    query = models.JSONField(default=dict, blank=True)
    columns = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["list_name", "name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "list_name", "name"], name="saved_view_name_unique"
            )
        ]
        indexes = [models.Index(fields=["list_name", "shared"], name="saved_view_list_idx")]

    def __str__(self) -> str:
        return self.name


class ProcessHeartbeat(models.Model):
    """The last sign of life of a Celery worker or beat process (crm/heartbeat.py)."""

    class Kind(models.TextChoices):
        WORKER = "worker", "Worker"
        BEAT = "beat", "Beat"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    queues = models.JSONField(default=list, blank=True)
    pid = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField()

    class Meta:
        ordering = ["kind", "name"]

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


class BulkJob(Job):
    """One bulk action over the rows picked on a list (deals, customers, accounts), by id or by
    the list's filter, run set-based by a Celery task in batches whose progress a person follows.
    The rows are found again when the job runs, under its author's rules (crm/bulk.py)."""

    list_name = models.CharField(max_length=16, choices=SavedView.ListName.choices)
    action = models.CharField(max_length=30)
    # What the action needs, as the action's checks cleaned it (a new owner's id, a tag's id, ...).
    params = models.JSONField(default=dict, blank=True)
    # Either the ids ticked on the list, or (when `by_filter`) the list's query string.
    ids = models.JSONField(default=list, blank=True)
    by_filter = models.BooleanField(default=False)
    filter = models.JSONField(default=dict, blank=True)
    matched = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    progress_done = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(Job.Meta):
        indexes = [models.Index(fields=["created_by", "created_at"], name="bulk_job_author_idx")]

    def __str__(self) -> str:
        return f"{self.action} on {self.matched} {self.list_name} ({self.status})"

    @property
    def progress_percent(self) -> int:
        if not self.progress_total:
            return 100 if self.finished else 0
        return min(100, round(100 * self.progress_done / self.progress_total))
