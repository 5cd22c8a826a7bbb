"""Segments, their materialised membership, and the history of every refresh."""

from django.conf import settings
from django.db import models

from crm.jobs import Job
from customers.models import Customer
from segments.rules import RULE_VERSION


class Segment(models.Model):
    class Kind(models.TextChoices):
        RULE = "rule", "Rule"
        STATIC = "static", "Static"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.RULE)
    rule = models.JSONField(default=dict, blank=True)
    rule_version = models.PositiveSmallIntegerField(default=RULE_VERSION)
    refresh_interval = models.DurationField(
        null=True, blank=True, help_text="Refreshed automatically this often; empty for manual only"
    )
    next_refresh_at = models.DateTimeField(null=True, blank=True)
    min_size_warning = models.PositiveIntegerField(
        default=100, help_text="Warn when the segment has fewer members than this"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="segments",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    last_refresh_duration = models.DurationField(null=True, blank=True)
    member_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["kind", "next_refresh_at"], name="segment_due_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind="rule") | models.Q(refresh_interval__isnull=True),
                name="segment_static_has_no_refresh_interval",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_too_small(self) -> bool:
        return self.last_refreshed_at is not None and self.member_count < self.min_size_warning


class Membership(models.Model):
    """A customer in a segment, since the refresh (or the hand) that put them there.

    The row is also the record of the customer's latest join: `since` and `run` say when and by
    which refresh they joined, so a refresh that puts a million customers in a segment writes a
    million rows, not two million. When they leave, the join moves to the change log together
    with the leave (see MembershipChange).
    """

    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="memberships", db_index=False
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="segment_memberships", db_index=False
    )
    since = models.DateTimeField()
    # No database constraint: a per-row foreign-key check on every member a refresh inserts
    # would cost almost as much as the insert itself. Runs are deleted only with their segment,
    # which deletes its memberships too.
    run = models.ForeignKey(
        "RefreshRun",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "customer"], name="membership_unique")
        ]
        indexes = [models.Index(fields=["customer", "segment"], name="membership_customer_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.segment_id}"


class RefreshRun(Job):
    """One refresh of a segment: when, how long, the size after it, and who joined and left."""

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Manual"
        SCHEDULE = "schedule", "Schedule"
        API = "api", "API"
        COMMAND = "command", "Command"
        EDIT = "edit", "Rule edited"
        MEMBERS = "members", "Members added or removed"
        ERASURE = "erasure", "Rule edited by an erasure"
        REALTIME = "realtime", "Real time (customers' writes)"

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    task_id = models.CharField(max_length=64, blank=True)
    duration = models.DurationField(null=True, blank=True)
    size = models.PositiveIntegerField(null=True, blank=True)
    joined = models.PositiveIntegerField(default=0)
    left = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["segment", "-created_at"], name="refresh_run_segment_idx")]

    def __str__(self) -> str:
        return f"{self.segment_id} refresh {self.pk} ({self.status})"


class RealtimeQueue(models.Model):
    """One row: when a real-time update of memberships was last queued and not yet started, so
    that the writes of a busy second queue one task, not one each (segments.realtime)."""

    queued_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"real-time update queued at {self.queued_at}" if self.queued_at else "idle"


class MembershipChange(models.Model):
    """A customer joining or leaving a segment, for the stays in a segment that have ended.

    A leave is logged with the join it ends (copied from the membership row, with its original
    time and run); the join of a current member is its membership row. So the full history of
    joins and leaves is this log plus the memberships: read it through
    `segments.selectors.membership_changes` (campaigns trigger on its joins).
    """

    class Change(models.TextChoices):
        JOINED = "joined", "Joined"
        LEFT = "left", "Left"

    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="changes", db_index=False
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="segment_changes", db_index=False
    )
    run = models.ForeignKey(
        RefreshRun,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="changes",
        db_index=False,
    )
    change = models.CharField(max_length=8, choices=Change.choices)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["segment", "at"], name="membership_change_segment_idx"),
            models.Index(fields=["customer", "at"], name="membership_change_customer_idx"),
            models.Index(fields=["run", "change"], name="membership_change_run_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.change} {self.segment_id}"


from segments.ml.models import *  # noqa: E402,F401,F403
