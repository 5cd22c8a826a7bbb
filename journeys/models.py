"""Journeys: a trigger, an ordered list of steps with branches, a goal; one enrolment row per
customer's way through a journey, and what happened to it at each step.

A send step owns a campaign of kind "journey" (campaigns.Campaign): the journey writes the send
row of an enrolment in the same transaction that moves the enrolment on, and campaign delivery
hands the message over with its claim, consent re-check and honest states.
"""

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q

from campaigns.models import Campaign
from customers.models import Customer
from privacy.models import Purpose
from segments.models import Segment


class Journey(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"

    class Trigger(models.TextChoices):
        SEGMENT = "segment", "Enters a segment"
        EVENT = "event", "An event happens"
        MANUAL = "manual", "Enrolled by hand or through the API"

    class Reentry(models.TextChoices):
        ONCE = "once", "Once ever"
        AFTER_DAYS = "after_days", "Again after a number of days"
        ALWAYS = "always", "Every time the trigger fires"

    class Goal(models.TextChoices):
        NONE = "none", "No goal"
        PURCHASE = "purchase", "Makes a purchase"
        SEGMENT = "segment", "Enters a segment"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.SEGMENT)
    trigger_segment = models.ForeignKey(
        Segment, null=True, blank=True, on_delete=models.PROTECT, related_name="journeys_entered"
    )
    trigger_event_type = models.CharField(max_length=64, blank=True)
    exit_on_segment_leave = models.BooleanField(
        default=False, help_text="End the enrolment when the customer leaves the trigger segment"
    )
    reentry = models.CharField(max_length=16, choices=Reentry.choices, default=Reentry.ONCE)
    reentry_days = models.PositiveIntegerField(default=30)
    goal = models.CharField(max_length=16, choices=Goal.choices, default=Goal.NONE)
    goal_segment = models.ForeignKey(
        Segment, null=True, blank=True, on_delete=models.PROTECT, related_name="journeys_goal"
    )
    consent_purpose = models.ForeignKey(
        Purpose,
        on_delete=models.PROTECT,
        related_name="journeys",
        default=Purpose.EMAIL_MARKETING,
        help_text="A customer who withdraws this consent leaves the journey",
    )
    # Triggers up to this moment have been turned into enrolments.
    trigger_cursor = models.DateTimeField(null=True, blank=True)
    # When it was last activated (or resumed): who triggered it before does not enter.
    activated_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status"], name="journey_status_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_editable(self) -> bool:
        return self.status != self.Status.ACTIVE


class Step(models.Model):
    class Kind(models.TextChoices):
        SEND = "send", "Send an email"
        WAIT = "wait", "Wait"
        SPLIT = "split", "Split on a condition"
        TASK = "task", "Create a task for the owner"
        EXIT = "exit", "End the journey"

    class Condition(models.TextChoices):
        OPENED = "opened", "Opened the previous email"
        CLICKED = "clicked", "Clicked in the previous email"
        IN_SEGMENT = "in_segment", "Is in a segment"
        PURCHASED = "purchased", "Made a purchase since entering"

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    label = models.CharField(max_length=200, blank=True)
    # Send: the message (its campaign is created when the step is saved).
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    campaign = models.OneToOneField(
        Campaign, null=True, blank=True, on_delete=models.PROTECT, related_name="journey_step"
    )
    # Wait.
    wait = models.DurationField(null=True, blank=True)
    # Split: where a customer goes when the condition holds (yes) or not (no); empty: the next
    # step in the list.
    condition = models.CharField(max_length=16, choices=Condition.choices, blank=True)
    condition_segment = models.ForeignKey(
        Segment, null=True, blank=True, on_delete=models.PROTECT, related_name="journey_splits"
    )
    yes_step = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    no_step = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Task: what the customer's owner is asked to do, due this many days later.
    task_subject = models.CharField(max_length=200, blank=True)
    task_due_days = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["journey", "position", "id"]
        indexes = [models.Index(fields=["journey", "position"], name="journey_step_position_idx")]

    def __str__(self) -> str:
        return f"{self.position}. {self.summary}"

    @property
    def summary(self) -> str:
        if self.label:
            return self.label
        if self.kind == self.Kind.SEND:
            return f"Send “{self.subject}”"
        if self.kind == self.Kind.WAIT and self.wait is not None:
            return f"Wait {duration_words(self.wait)}"
        if self.kind == self.Kind.SPLIT:
            return f"Split: {self.get_condition_display().lower()}"
        if self.kind == self.Kind.TASK:
            return f"Task for the owner: {self.task_subject}"
        return self.get_kind_display()


def duration_words(value: dt.timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


class Enrolment(models.Model):
    """One customer's way through a journey: where they are, since when, and when to act next."""

    class State(models.TextChoices):
        ACTIVE = "active", "In the journey"
        COMPLETED = "completed", "Completed"
        CONVERTED = "converted", "Reached the goal"
        EXITED = "exited", "Left early"

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="enrolments")
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="journey_enrolments"
    )
    # 1 for a customer's first time in this journey, 2 for the next, ...: the send rows of an
    # enrolment use it as their occurrence, so each send step writes one message per enrolment.
    entry = models.PositiveIntegerField(default=1)
    is_test = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    step = models.ForeignKey(
        Step, null=True, blank=True, on_delete=models.SET_NULL, related_name="enrolments"
    )
    step_since = models.DateTimeField()
    due_at = models.DateTimeField(null=True, blank=True)
    entered_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-entered_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["journey", "customer", "entry"], name="enrolment_entry_unique"
            ),
            # One enrolment at a time per customer and journey.
            models.UniqueConstraint(
                fields=["journey", "customer"],
                condition=Q(state="active"),
                name="enrolment_one_active",
            ),
        ]
        indexes = [
            models.Index(fields=["due_at"], condition=Q(state="active"), name="enrolment_due_idx"),
            models.Index(fields=["journey", "state", "step"], name="enrolment_journey_idx"),
            models.Index(fields=["customer"], name="enrolment_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.journey_id}/{self.customer_id}#{self.entry} ({self.state})"


class EnrolmentEvent(models.Model):
    """What happened to an enrolment at a step: the enrolment's history."""

    class Kind(models.TextChoices):
        ENTERED = "entered", "Entered"
        REACHED = "reached", "Reached the step"
        SENT = "sent", "Message queued"
        NOT_SENT = "not_sent", "Message not sent"
        WAITED = "waited", "Waited"
        BRANCH_YES = "yes", "Condition held"
        BRANCH_NO = "no", "Condition did not hold"
        TASK = "task", "Task created"
        CONVERTED = "converted", "Reached the goal"
        EXITED = "exited", "Left the journey"
        COMPLETED = "completed", "Completed"

    enrolment = models.ForeignKey(Enrolment, on_delete=models.CASCADE, related_name="events")
    step = models.ForeignKey(
        Step, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    at = models.DateTimeField()
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["enrolment", "at"], name="enrolment_event_idx"),
            models.Index(fields=["step", "kind"], name="enrolment_event_step_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at:%Y-%m-%d %H:%M}"
