"""The consent ledger: append-only records per customer and purpose, and the derived state."""

from django.conf import settings
from django.db import models

from crm.jobs import Job
from customers.models import Customer


class Purpose(models.Model):
    """A purpose a customer can consent to. Admins may add purposes beyond the built-in ones."""

    EMAIL_MARKETING = "email_marketing"
    SMS_MARKETING = "sms_marketing"
    PROFILING = "profiling"
    DATA_SALE = "data_sale"

    code = models.SlugField(max_length=50, primary_key=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


BUILTIN_PURPOSES = [
    (Purpose.EMAIL_MARKETING, "Email marketing", "Marketing messages by email."),
    (Purpose.SMS_MARKETING, "SMS marketing", "Marketing messages by text message."),
    (Purpose.PROFILING, "Profiling", "Analysing purchases and behaviour to personalise offers."),
    (
        Purpose.DATA_SALE,
        "Sale or sharing of data",
        "Sharing personal data with third parties (CCPA).",
    ),
]


class ConsentWording(models.Model):
    """A version of the text a customer saw when they gave or withdrew consent."""

    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="wordings")
    version = models.CharField(max_length=20)
    text = models.TextField()
    effective_from = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["purpose", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["purpose", "version"], name="wording_purpose_version_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.purpose_id} v{self.version}"


class ConsentSource(models.TextChoices):
    FORM = "form", "Web form"
    IMPORT = "import", "Import"
    API = "api", "API"
    STAFF = "staff", "Staff"
    PREFERENCE_CENTRE = "preference_centre", "Preference centre"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribe link"
    GPC = "gpc", "Global Privacy Control"
    BULK = "bulk", "Bulk change"
    MERGE = "merge", "Customer merge"


class ConsentStatus(models.TextChoices):
    GRANTED = "granted", "Granted"
    WITHDRAWN = "withdrawn", "Withdrawn"


class ConsentRecordQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("Consent records are append-only: they are never updated.")

    def delete(self):
        raise TypeError("Consent records are append-only: they are never deleted by the app.")


class ConsentRecord(models.Model):
    """One grant or withdrawal, with its evidence. Never updated or deleted by the application."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consent_records")
    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="records")
    state = models.CharField(max_length=16, choices=ConsentStatus.choices)
    recorded_at = models.DateTimeField()
    source = models.CharField(max_length=32, choices=ConsentSource.choices)
    wording = models.ForeignKey(
        ConsentWording, null=True, blank=True, on_delete=models.PROTECT, related_name="records"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="consent_records",
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    evidence = models.CharField(max_length=300, blank=True, help_text="Form name, file, reference")

    objects = ConsentRecordQuerySet.as_manager()

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "purpose", "recorded_at"], name="consent_record_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.purpose_id} {self.state} ({self.source})"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise TypeError("Consent records are append-only: they are never updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Consent records are append-only: they are never deleted by the app.")


class ConsentState(models.Model):
    """The current state per customer and purpose, derived from the newest ledger record.

    A customer with no row for a purpose has consent state "unknown".
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consent_states")
    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="states")
    state = models.CharField(max_length=16, choices=ConsentStatus.choices)
    changed_at = models.DateTimeField()
    record = models.ForeignKey(ConsentRecord, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "purpose"], name="consent_state_unique")
        ]
        indexes = [
            # Segment rules: "customers with email consent granted".
            models.Index(fields=["purpose", "state", "customer"], name="consent_state_lookup_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.purpose_id}: {self.state}"


class PendingConsent(models.Model):
    """A double opt-in grant waiting for the customer to confirm it through the emailed link.

    Pending grants live here, not in the ledger: until confirmed nothing was consented to, so the
    ledger and ConsentState keep showing the previous state and segment rules on "granted" stay
    correct without knowing about double opt-in.
    """

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="pending_consents"
    )
    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=32, choices=ConsentSource.choices)
    wording = models.ForeignKey(
        ConsentWording, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    requested_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    record = models.ForeignKey(
        ConsentRecord, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.purpose_id} pending since {self.requested_at:%Y-%m-%d}"


class RequestType(models.TextChoices):
    ACCESS = "access", "Access"
    PORTABILITY = "portability", "Portability"
    ERASURE = "erasure", "Erasure"
    RECTIFICATION = "rectification", "Rectification"
    DO_NOT_SELL = "do_not_sell", "Do not sell"


class Law(models.TextChoices):
    GDPR = "gdpr", "GDPR"
    CCPA = "ccpa", "CCPA"


class RequestStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    VERIFYING = "verifying", "Verifying"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    REJECTED = "rejected", "Rejected"


class RequestChannel(models.TextChoices):
    STAFF = "staff", "Staff"
    API = "api", "API"
    PREFERENCE_CENTRE = "preference_centre", "Preference centre"


class DataSubjectRequest(models.Model):
    """A request by a person about their data, with the deadline the law gives to answer it."""

    OPEN_STATUSES = (RequestStatus.RECEIVED, RequestStatus.VERIFYING, RequestStatus.IN_PROGRESS)

    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="data_requests"
    )
    email = models.EmailField(blank=True, help_text="The requester's address when not yet matched")
    type = models.CharField(max_length=16, choices=RequestType.choices)
    law = models.CharField(max_length=8, choices=Law.choices, default=Law.GDPR)
    channel = models.CharField(
        max_length=32, choices=RequestChannel.choices, default=RequestChannel.STAFF
    )
    received_on = models.DateField()
    deadline = models.DateField()
    extended = models.BooleanField(default=False)
    extension_reason = models.TextField(blank=True)
    status = models.CharField(
        max_length=16, choices=RequestStatus.choices, default=RequestStatus.RECEIVED
    )
    rejection_reason = models.TextField(blank=True)
    details = models.TextField(blank=True, help_text="What the person asked for, in their words")
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    handled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["deadline", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status="rejected") | ~models.Q(rejection_reason=""),
                name="dsr_rejection_has_reason",
            ),
            models.CheckConstraint(
                condition=models.Q(extended=False) | ~models.Q(extension_reason=""),
                name="dsr_extension_has_reason",
            ),
            models.CheckConstraint(
                condition=models.Q(deadline__gte=models.F("received_on")),
                name="dsr_deadline_after_receipt",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "deadline"], name="dsr_queue_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} request {self.pk} ({self.get_law_display()})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class DataExport(Job):
    """A ZIP of everything held on one customer, built by a Celery task for an access request."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="data_exports")
    request = models.ForeignKey(
        DataSubjectRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="exports"
    )
    file = models.FileField(upload_to="privacy/exports/", blank=True)
    row_count = models.PositiveIntegerField(default=0)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Export {self.pk} of customer {self.customer_id} ({self.status})"


class Suppression(models.Model):
    """An address that must never be targeted again, kept only as a salted hash."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        PHONE = "phone", "Phone"

    class Reason(models.TextChoices):
        ERASURE = "erasure", "Erasure"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribed from everything"
        RETENTION = "retention", "Retention policy"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    value_hash = models.CharField(max_length=64)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "value_hash"], name="suppression_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.value_hash[:12]}…"


class ErasureLog(models.Model):
    """That a customer was erased, without personal data, so erasures can be re-applied after a
    database restore. Also appended to PRIVACY_ERASURE_LOG_PATH outside the database."""

    customer_id = models.BigIntegerField(db_index=True)
    email_hash = models.CharField(max_length=64, blank=True)
    phone_hash = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=16, choices=Suppression.Reason.choices)
    request_id = models.BigIntegerField(null=True, blank=True)
    actor_id = models.BigIntegerField(null=True, blank=True)
    erased_at = models.DateTimeField()

    class Meta:
        ordering = ["-erased_at", "-id"]

    def __str__(self) -> str:
        return f"Erasure of customer {self.customer_id} at {self.erased_at:%Y-%m-%d %H:%M}"


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("Audit entries are append-only: they are never updated.")

    def delete(self):
        raise TypeError("Audit entries are append-only: they are never deleted by the app.")


class AuditEntry(models.Model):
    """Staff access to personal data: who did what to which object. Ids only, never the data."""

    class Action(models.TextChoices):
        VIEW = "view", "Viewed"
        EXPORT = "export", "Exported"
        DOWNLOAD = "download", "Downloaded"
        CHANGE = "change", "Changed"
        CONSENT = "consent", "Changed consent"
        MERGE = "merge", "Merged"
        ERASE = "erase", "Erased"
        DELETE = "delete", "Deleted"
        REQUEST = "request", "Handled a data request"

    at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=16)
    object_kind = models.CharField(max_length=50)
    object_id = models.BigIntegerField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["object_kind", "object_id", "at"], name="audit_object_idx"),
            models.Index(fields=["actor", "at"], name="audit_actor_idx"),
            models.Index(fields=["action", "at"], name="audit_action_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_id} {self.action} {self.object_kind} {self.object_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise TypeError("Audit entries are append-only: they are never updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Audit entries are append-only: they are never deleted by the app.")


class BulkConsentJob(Job):
    """A grant or withdrawal for many customers (a CSV or an audience), run by a Celery task."""

    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=16, choices=ConsentStatus.choices)
    evidence = models.CharField(max_length=300)
    # Either identifiers (emails or external ids, one a line, from the CSV) or an audience.
    identifiers = models.TextField(blank=True)
    audience = models.CharField(max_length=50, blank=True)
    audience_id = models.BigIntegerField(null=True, blank=True)
    matched = models.PositiveIntegerField(default=0)
    unmatched = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Bulk {self.state} of {self.purpose_id} ({self.status})"
