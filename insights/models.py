"""What segmentation earns: cached KPI figures per segment and period, their refresh jobs, and
one-question satisfaction surveys with each customer's latest answer.

The answers themselves are behaviour events (customers.Event of type `survey_answer`); the
latest NPS and CSAT answer of each customer is kept here so a segment rule can target it.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from campaigns.models import Campaign
from crm.jobs import Job
from customers.models import Customer
from segments.models import Segment

SURVEY_EVENT = "survey_answer"


class KpiSnapshot(models.Model):
    """The raw counts behind the KPI figures of one segment (or all customers: no segment) for
    the `days` days ending on `end`, the previous such period and the twelve months to `end`."""

    segment = models.ForeignKey(
        Segment, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    days = models.PositiveSmallIntegerField()
    end = models.DateField()
    figures = models.JSONField(default=dict)
    computed_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-end", "segment_id", "days"]
        constraints = [
            models.UniqueConstraint(
                fields=["segment", "days", "end"],
                nulls_distinct=False,
                name="kpi_snapshot_period_unique",
            )
        ]

    def __str__(self) -> str:
        return f"KPIs of {self.segment_id or 'all'} for {self.days} days to {self.end}"


class KpiRefresh(Job):
    """Recomputing the KPI figures of one segment (or of all customers) on request or nightly."""

    segment = models.ForeignKey(
        Segment, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    days = models.PositiveSmallIntegerField()
    end = models.DateField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"KPI refresh {self.pk} ({self.status})"


class Survey(models.Model):
    """A one-question NPS or CSAT survey, sent by email as a campaign to one segment."""

    class Kind(models.TextChoices):
        NPS = "nps", "NPS (0 to 10: how likely to recommend us)"
        CSAT = "csat", "CSAT (1 to 5: how satisfied)"

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.NPS)
    question = models.CharField(max_length=300)
    segment = models.ForeignKey(
        Segment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    campaign = models.OneToOneField(
        Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="survey"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def scores(self) -> range:
        return range(0, 11) if self.kind == self.Kind.NPS else range(1, 6)


class NpsClass(models.TextChoices):
    PROMOTER = "promoter", "Promoter (9-10)"
    PASSIVE = "passive", "Passive (7-8)"
    DETRACTOR = "detractor", "Detractor (0-6)"


def nps_class(score: int) -> str:
    if score >= 9:
        return NpsClass.PROMOTER
    if score >= 7:
        return NpsClass.PASSIVE
    return NpsClass.DETRACTOR


class CustomerSatisfaction(models.Model):
    """A customer's latest survey answers: the rule fields nps_score, nps_class, csat_score."""

    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, primary_key=True, related_name="satisfaction"
    )
    nps_score = models.PositiveSmallIntegerField(null=True, blank=True)
    nps_class = models.CharField(max_length=16, choices=NpsClass.choices, blank=True)
    nps_answered_at = models.DateTimeField(null=True, blank=True)
    csat_score = models.PositiveSmallIntegerField(null=True, blank=True)
    csat_answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["nps_class"], name="satisfaction_nps_class_idx"),
            models.Index(fields=["nps_score"], name="satisfaction_nps_score_idx"),
            models.Index(fields=["csat_score"], name="satisfaction_csat_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(nps_score__isnull=True) | Q(nps_score__lte=10),
                name="satisfaction_nps_score_range",
            ),
            models.CheckConstraint(
                condition=Q(csat_score__isnull=True)
                | (Q(csat_score__gte=1) & Q(csat_score__lte=5)),
                name="satisfaction_csat_score_range",
            ),
        ]

    def __str__(self) -> str:
        return f"satisfaction of {self.customer_id}"
