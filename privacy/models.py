"""The consent ledger: append-only records per customer and purpose, and the derived state."""

from django.conf import settings
from django.db import models

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
            models.UniqueConstraint(fields=["purpose", "version"], name="wording_purpose_version_unique")
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

