"""Campaigns, their variants and promotion, one send row per recipient, and what recipients did.

The send row is the unit of delivery: it is created set-based at launch (or when a customer
enters a triggered campaign's segment), claimed by exactly one worker, and records its outcome.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from customers.models import Customer
from privacy.models import Purpose
from segments.models import Segment

# A frequency cap is counted over at most ten years, and at most a million messages.
FREQUENCY_CAP_DAYS_MAX = 3650
FREQUENCY_CAP_COUNT_MAX = 1_000_000


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"


# The consent purpose a channel needs unless the campaign names another one.
CHANNEL_PURPOSE = {Channel.EMAIL: Purpose.EMAIL_MARKETING, Channel.WEBHOOK: Purpose.EMAIL_MARKETING}


# The settings a marketer edits, by the step of the editor that shows them: the one list the
# editor's form, the API's serializer and the services (campaign_create / campaign_update) use.
CAMPAIGN_SETTINGS_BY_STEP = {
    "audience": (
        "name",
        "goal",
        "channel",
        "kind",
        "target_segments",
        "exclusion_segments",
        "consent_purpose",
        "frequency_cap_count",
        "frequency_cap_days",
        "holdout_percent",
        "webhook_url",
        "from_email",
    ),
    "schedule": ("send_at", "time_zone", "attribution_days", "allow_repeats", "trigger_delay"),
}
CAMPAIGN_SETTINGS = tuple(name for step in CAMPAIGN_SETTINGS_BY_STEP.values() for name in step)
CAMPAIGN_SEGMENT_SETTINGS = ("target_segments", "exclusion_segments")


class Campaign(models.Model):
    class Kind(models.TextChoices):
        BROADCAST = "broadcast", "One-off broadcast"
        TRIGGERED = "triggered", "Triggered by segment entry"
        # The message of a journey's send step: its rows are written by the journey as each
        # enrolment reaches the step (journeys/), delivered like any other send.
        JOURNEY = "journey", "Journey step"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        PAUSED = "paused", "Paused"
        SENT = "sent", "Sent"
        CANCELLED = "cancelled", "Cancelled"
        STOPPED = "stopped", "Stopped"

    name = models.CharField(max_length=200)
    goal = models.CharField(max_length=300, blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.EMAIL)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.BROADCAST)
    target_segments = models.ManyToManyField(Segment, related_name="targeted_by", blank=True)
    exclusion_segments = models.ManyToManyField(Segment, related_name="excluded_by", blank=True)
    consent_purpose = models.ForeignKey(
        Purpose, on_delete=models.PROTECT, related_name="campaigns", null=True, blank=True
    )
    frequency_cap_count = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(FREQUENCY_CAP_COUNT_MAX)],
        help_text="At most this many marketing messages per customer (0: no cap)",
    )
    frequency_cap_days = models.PositiveIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(FREQUENCY_CAP_DAYS_MAX)]
    )
    holdout_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(0), MaxValueValidator(50)],
    )
    send_at = models.DateTimeField(null=True, blank=True, help_text="Empty: send at launch")
    time_zone = models.CharField(max_length=64, default="UTC")
    attribution_days = models.PositiveIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    allow_repeats = models.BooleanField(default=False)
    trigger_delay = models.DurationField(null=True, blank=True)
    webhook_url = models.URLField(blank=True)
    # The key the webhook channel signs each POST with; random per campaign (never derived from
    # SECRET_KEY), shown to marketers so the receiver can verify, and rotatable.
    webhook_secret = models.CharField(max_length=200, blank=True, editable=False)
    from_email = models.CharField(max_length=254, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    launched_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # Triggered campaigns: joins up to this moment have been turned into sends.
    trigger_cursor = models.DateTimeField(null=True, blank=True)
    # {reason: count} for the customers left out at launch (and by triggered runs since).
    exclusions = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "kind"], name="campaign_status_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(holdout_percent__gte=0) & Q(holdout_percent__lte=50),
                name="campaign_holdout_percent_range",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def purpose_code(self) -> str:
        return self.consent_purpose_id or CHANNEL_PURPOSE[self.channel]

    @property
    def is_editable(self) -> bool:
        return self.status in (self.Status.DRAFT, self.Status.SCHEDULED)


class Variant(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=50, default="A")
    subject = models.CharField(max_length=300)
    html = models.TextField(blank=True)
    text = models.TextField()
    share = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="Relative share of the audience"
    )

    class Meta:
        ordering = ["campaign", "id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "name"], name="variant_name_unique"),
            models.CheckConstraint(condition=Q(share__gte=1), name="variant_share_gte_1"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.name}"


class Promotion(models.Model):
    class Discount(models.TextChoices):
        PERCENT = "percent", "Percent off"
        AMOUNT = "amount", "Amount off"

    class CodeMode(models.TextChoices):
        UNIQUE = "unique", "A unique code per recipient"
        SHARED = "shared", "One shared code"

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="promotion")
    discount = models.CharField(max_length=16, choices=Discount.choices, default=Discount.PERCENT)
    value = models.DecimalField(max_digits=10, decimal_places=2, validators=[MinValueValidator(0)])
    code_mode = models.CharField(max_length=16, choices=CodeMode.choices, default=CodeMode.UNIQUE)
    shared_code = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    redemption_cap = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(code_mode="shared") | ~Q(shared_code=""),
                name="promotion_shared_has_code",
            )
        ]

    def __str__(self) -> str:
        return f"{self.value} {self.discount} ({self.campaign_id})"

    @property
    def discount_display(self) -> str:
        if self.discount == self.Discount.PERCENT:
            return f"{self.value.normalize():f}%"
        return f"{self.value:.2f}"


class PromotionCode(models.Model):
    """A unique, unguessable code for one recipient."""

    promotion = models.ForeignKey(Promotion, on_delete=models.CASCADE, related_name="codes")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="promotion_codes")
    code = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["promotion", "customer"], name="promotion_code_customer_unique"
            )
        ]

    def __str__(self) -> str:
        return self.code


class Send(models.Model):
    """One recipient of a campaign (or one member of its holdout group)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        CLAIMED = "claimed", "Being sent"
        # Committed for hand-over; the server's (or provider's) acceptance not yet recorded.
        HANDING_OVER = "handing_over", "Being handed over"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"
        CANCELLED = "cancelled", "Cancelled"
        # A worker stopped while handing the message over: it may or may not have arrived.
        UNKNOWN = "unknown", "Unknown (lost during hand-over)"
        EXCLUDED = "excluded", "Excluded at launch"
        HOLDOUT = "holdout", "Holdout (gets nothing)"

    # The states of a message that may be in the recipient's mailbox.
    MAY_HAVE_ARRIVED = (Status.SENT, Status.HANDING_OVER, Status.UNKNOWN)

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="sends")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="campaign_sends")
    # 0 except in triggered campaigns that allow repeats, where each re-entry is one more.
    occurrence = models.PositiveIntegerField(default=0)
    variant = models.ForeignKey(
        Variant, null=True, blank=True, on_delete=models.SET_NULL, related_name="sends"
    )
    is_holdout = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=200, blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["campaign", "id"]
        constraints = [
            # A crash or a retry can never create a second message for the same recipient.
            models.UniqueConstraint(
                fields=["campaign", "customer", "occurrence"], name="send_campaign_customer_unique"
            )
        ]
        indexes = [
            models.Index(fields=["campaign", "status"], name="send_campaign_status_idx"),
            models.Index(fields=["customer", "sent_at"], name="send_customer_time_idx"),
            models.Index(fields=["status", "claimed_at"], name="send_claimed_idx"),
            models.Index(fields=["provider_message_id"], name="send_provider_id_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} -> {self.customer_id} ({self.status})"


class MessageEvent(models.Model):
    """What a recipient (or the provider) reported about a message."""

    class Kind(models.TextChoices):
        OPEN = "open", "Opened"
        CLICK = "click", "Clicked"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribed"
        BOUNCE = "bounce", "Bounced"
        COMPLAINT = "complaint", "Complained"
        DELIVERED = "delivered", "Delivered (the provider says)"

    send = models.ForeignKey(Send, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    at = models.DateTimeField()
    url = models.URLField(max_length=2000, blank=True)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["send", "kind"], name="message_event_send_idx")]

    def __str__(self) -> str:
        return f"{self.kind} on {self.send_id}"
