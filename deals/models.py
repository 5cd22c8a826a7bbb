"""Pipelines of stages, deals moving through them, their product lines, every stage change, the
activities logged on deals, accounts and customers, and each salesperson's monthly targets."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from crm.jobs import Job
from customers.models import Account, Customer, Product, Purchase


class Pipeline(models.Model):
    """A sales process (new business, renewals, ...) with its own ordered stages."""

    name = models.CharField(max_length=100, unique=True)
    # When set, a deal reaching a won stage is recorded as a purchase of its customer, so
    # segments and campaigns see it.
    creates_purchases = models.BooleanField(default=False)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_default", "name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="pipeline_one_default"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Stage(models.Model):
    class Outcome(models.TextChoices):
        OPEN = "open", "Open"
        WON = "won", "Won"
        LOST = "lost", "Lost"

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField()
    probability = models.PositiveSmallIntegerField(
        default=10,
        validators=[MaxValueValidator(100)],
        help_text="Default chance of winning, in percent, for deals in this stage",
    )
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.OPEN)

    class Meta:
        ordering = ["pipeline", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "name"], name="stage_name_unique"),
            models.UniqueConstraint(
                fields=["pipeline", "position"],
                name="stage_position_unique",
                deferrable=models.Deferrable.DEFERRED,  # reordering swaps positions
            ),
            models.CheckConstraint(
                condition=Q(probability__lte=100), name="stage_probability_lte_100"
            ),
            models.CheckConstraint(
                condition=~Q(outcome="won") | Q(probability=100), name="stage_won_is_100"
            ),
            models.CheckConstraint(
                condition=~Q(outcome="lost") | Q(probability=0), name="stage_lost_is_0"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_closed(self) -> bool:
        return self.outcome != self.Outcome.OPEN


class Deal(models.Model):
    """Something a salesperson is trying to sell to an account and/or a customer."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, related_name="deals")
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="deals")
    name = models.CharField(max_length=200)
    amount = models.DecimalField(
        max_digits=14, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(0)]
    )
    currency = models.CharField(max_length=3, default="EUR")
    expected_close_date = models.DateField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_deals",
        db_index=False,  # deal_owner_figures_idx leads with the owner
    )
    # NULL: the stage's default probability applies; a number overrides it for this deal.
    probability = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(100)]
    )
    source = models.CharField(max_length=50, blank=True)
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.CASCADE, related_name="deals"
    )
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="deals"
    )
    next_step = models.CharField(max_length=300, blank=True)
    lost_reason = models.CharField(max_length=300, blank=True)
    stage_entered_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    purchase = models.OneToOneField(
        Purchase, null=True, blank=True, on_delete=models.SET_NULL, related_name="deal"
    )
    # The learned chance of winning, in percent, written by the last scoring of the active
    # WinModel (deals.win_model); NULL when no model is active or the deal is closed.
    win_probability = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(account__isnull=False) | Q(customer__isnull=False),
                name="deal_has_account_or_customer",
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="deal_amount_gte_0"),
            models.CheckConstraint(
                condition=Q(probability__isnull=True) | Q(probability__lte=100),
                name="deal_probability_lte_100",
            ),
        ]
        indexes = [
            # Covering the figures of the board and the list (count, amount, weighted amount),
            # so a salesperson's totals and everyone's are index-only scans.
            models.Index(
                fields=["owner", "stage", "id"],
                include=["amount", "probability", "pipeline"],
                name="deal_owner_figures_idx",
            ),
            models.Index(
                fields=["pipeline", "stage"],
                include=["amount", "probability", "id"],
                name="deal_pipeline_figures_idx",
            ),
            # A board column's first cards: one index range per stage, already in order.
            models.Index(
                fields=["stage", "expected_close_date", "id"], name="deal_stage_cards_idx"
            ),
            models.Index(fields=["created_at", "id"], name="deal_created_idx"),
            models.Index(fields=["expected_close_date", "id"], name="deal_close_idx"),
            models.Index(fields=["amount", "id"], name="deal_amount_idx"),
            models.Index(fields=["name", "id"], name="deal_name_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class DealLine(models.Model):
    """A product on a deal, with the quantity and the price agreed."""

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="deal_lines")
    quantity = models.PositiveIntegerField(default=1)
    price = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(0)])

    class Meta:
        ordering = ["deal", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="deal_line_quantity_gte_1"),
            models.CheckConstraint(condition=Q(price__gte=0), name="deal_line_price_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product_id} at {self.price}"

    @property
    def total(self) -> Decimal:
        return self.price * self.quantity


class StageChange(models.Model):
    """One move of a deal from a stage to another (from is empty when the deal was created)."""

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="stage_changes")
    from_stage = models.ForeignKey(
        Stage, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    to_stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="+")
    changed_at = models.DateTimeField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [
            models.Index(fields=["deal", "changed_at"], name="stage_change_deal_idx"),
            models.Index(fields=["to_stage", "changed_at"], name="stage_change_to_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.from_stage_id} → {self.to_stage_id} at {self.changed_at:%Y-%m-%d}"


class Activity(models.Model):
    """A call, meeting or email logged on a deal, an account or a customer; with a due date and an
    assignee it is a follow-up, shown on the assignee's dashboard until done."""

    class Kind(models.TextChoices):
        CALL = "call", "Call"
        MEETING = "meeting", "Meeting"
        EMAIL = "email", "Email"
        TASK = "task", "Task"

    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CALL)
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    deal = models.ForeignKey(
        Deal, null=True, blank=True, on_delete=models.CASCADE, related_name="activities"
    )
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.CASCADE, related_name="activities"
    )
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="activities"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_activities",
        db_index=False,  # activity_followups_idx leads with the assignee
    )
    due_date = models.DateField(null=True, blank=True)
    done = models.BooleanField(default=False)
    done_at = models.DateTimeField(null=True, blank=True)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name_plural = "activities"
        constraints = [
            models.CheckConstraint(
                condition=Q(deal__isnull=False)
                | Q(account__isnull=False)
                | Q(customer__isnull=False),
                name="activity_has_subject_record",
            ),
            models.CheckConstraint(
                condition=Q(done=False) | Q(done_at__isnull=False),
                name="activity_done_has_done_at",
            ),
        ]
        indexes = [
            models.Index(fields=["assignee", "done", "due_date"], name="activity_followups_idx"),
            models.Index(fields=["deal", "occurred_at"], name="activity_deal_idx"),
            models.Index(fields=["customer", "occurred_at"], name="activity_customer_idx"),
            models.Index(fields=["account", "occurred_at"], name="activity_account_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject}"

    @property
    def is_follow_up(self) -> bool:
        return self.due_date is not None


class ForecastTarget(models.Model):
    """What a salesperson is expected to win in a month."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="forecast_targets"
    )
    month = models.DateField(help_text="The first day of the month")
    amount = models.DecimalField(max_digits=14, decimal_places=2, validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, default="EUR")

    class Meta:
        ordering = ["month", "owner", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "month", "currency"], name="forecast_target_unique"
            ),
            models.CheckConstraint(condition=Q(month__day=1), name="forecast_target_month_start"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="forecast_target_amount_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.owner_id} {self.month:%Y-%m}: {self.amount} {self.currency}"


class WinModel(Job):
    """One training of the win-probability model (deals/winprob.py) on the recorded stage
    history: its held-out metrics against the stages' default probabilities, and the fitted
    model. The newest done one that beats the default is active; a refusal (too little history)
    is a failed job with the reason."""

    metrics = models.JSONField(default=dict, blank=True)
    typical = models.JSONField(default=dict, blank=True)
    fitted = models.BinaryField(null=True, blank=True, editable=False)
    active = models.BooleanField(default=False)
    scored = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(Job.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["active"], condition=Q(active=True), name="win_model_one_active"
            )
        ]

    def __str__(self) -> str:
        return f"Win model {self.pk} ({self.status})"
