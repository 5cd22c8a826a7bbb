"""Accounts, customers, products, purchases, behaviour events, notes and import jobs.

Every field a segment rule filters on has an index; every invariant has a constraint.
"""

from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from crm.jobs import Job
from customers.contact_hashes import contact_hashes
from customers.fields import birth_date_check, country_validate


class Tag(models.Model):
    """A label on customers and accounts (interests, lead status, anything the team uses)."""

    name = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Account(models.Model):
    class Kind(models.TextChoices):
        COMPANY = "company", "Company"
        HOUSEHOLD = "household", "Household"

    class Size(models.TextChoices):
        MICRO = "1-9", "1–9"
        SMALL = "10-49", "10–49"
        MEDIUM = "50-249", "50–249"
        LARGE = "250-999", "250–999"
        ENTERPRISE = "1000+", "1000+"

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.COMPANY)
    industry = models.CharField(max_length=100, blank=True)
    size = models.CharField(max_length=16, choices=Size.choices, blank=True)
    website = models.URLField(blank=True)
    address = models.CharField(max_length=300, blank=True)
    city = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(
        max_length=2, blank=True, validators=[country_validate], help_text="ISO 3166-1 alpha-2 code"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_accounts",
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="accounts")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            models.Index(fields=["name", "id"], name="account_name_idx"),
            models.Index(fields=["industry"], name="account_industry_idx"),
            models.Index(fields=["size"], name="account_size_idx"),
            models.Index(fields=["country"], name="account_country_idx"),
            models.Index(fields=["kind"], name="account_kind_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class Customer(models.Model):
    class Gender(models.TextChoices):
        FEMALE = "female", "Female"
        MALE = "male", "Male"
        NON_BINARY = "non_binary", "Non-binary"
        UNDISCLOSED = "undisclosed", "Prefers not to say"

    class IncomeBand(models.TextChoices):
        LOW = "low", "Low"
        LOWER_MIDDLE = "lower_middle", "Lower middle"
        MIDDLE = "middle", "Middle"
        UPPER_MIDDLE = "upper_middle", "Upper middle"
        HIGH = "high", "High"

    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="customers"
    )
    external_id = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001 (NULL when absent: unique only when present)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    email = models.EmailField(max_length=254, null=True, blank=True)  # noqa: DJ001 (NULL when absent: unique only when present)
    # E.164 (+49301234567), as customers.fields.clean_phone reads what a person typed.
    phone = models.CharField(max_length=40, blank=True)
    birth_date = models.DateField(null=True, blank=True, validators=[birth_date_check])
    gender = models.CharField(max_length=16, choices=Gender.choices, blank=True)
    country = models.CharField(
        max_length=2, blank=True, validators=[country_validate], help_text="ISO 3166-1 alpha-2 code"
    )
    region = models.CharField(max_length=100, blank=True)
    city = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    language = models.CharField(max_length=8, blank=True, help_text="ISO 639-1 code, e.g. en")
    income_band = models.CharField(max_length=16, choices=IncomeBand.choices, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="customers")
    attributes = models.JSONField(default=dict, blank=True, help_text="Custom fields")
    source = models.CharField(max_length=50, blank=True, help_text="Where the customer came from")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_customers",
        db_index=False,  # customer_owner_idx leads with the owner
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Set when the person's data is erased: the row stays, anonymised, so that revenue totals
    # still add up, but it is no longer a customer anyone works with, lists or targets.
    erased_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Salted hashes of the normalised email and phone (customers.contact_hashes), derived from
    # the two fields on every write so that the suppression list is checked with an indexed
    # join instead of hashing every customer's address at query time.
    email_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    phone_hash = models.CharField(max_length=64, blank=True, default="", editable=False)

    # Derived from purchases, recomputed set-based by customers.services.customer_stats_refresh.
    lifetime_value = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    purchase_count = models.PositiveIntegerField(default=0)
    first_purchase_at = models.DateTimeField(null=True, blank=True)
    last_purchase_at = models.DateTimeField(null=True, blank=True)
    average_order_value = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))

    class Meta:
        ordering = ["last_name", "first_name", "id"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"), condition=Q(email__isnull=False), name="customer_email_ci_unique"
            ),
            models.UniqueConstraint(
                fields=["external_id"],
                condition=Q(external_id__isnull=False),
                name="customer_external_id_unique",
            ),
            models.CheckConstraint(
                condition=~Q(external_id=""), name="customer_external_id_not_blank"
            ),
            models.CheckConstraint(condition=~Q(email=""), name="customer_email_not_blank"),
            models.CheckConstraint(
                condition=Q(lifetime_value__gte=0), name="customer_lifetime_value_gte_0"
            ),
        ]
        indexes = [
            models.Index(fields=["last_name", "first_name", "id"], name="customer_name_idx"),
            models.Index(fields=["lifetime_value", "id"], name="customer_ltv_idx"),
            models.Index(fields=["last_purchase_at", "id"], name="customer_last_purchase_idx"),
            models.Index(fields=["first_purchase_at"], name="customer_first_purchase_idx"),
            models.Index(fields=["purchase_count"], name="customer_purchase_count_idx"),
            models.Index(fields=["average_order_value"], name="customer_aov_idx"),
            models.Index(fields=["created_at", "id"], name="customer_created_idx"),
            models.Index(fields=["birth_date"], name="customer_birth_date_idx"),
            models.Index(fields=["gender"], name="customer_gender_idx"),
            models.Index(fields=["country", "region", "city"], name="customer_geo_idx"),
            models.Index(fields=["city"], name="customer_city_idx"),
            models.Index(fields=["region"], name="customer_region_idx"),
            models.Index(fields=["postal_code"], name="customer_postal_code_idx"),
            models.Index(fields=["language"], name="customer_language_idx"),
            models.Index(fields=["income_band"], name="customer_income_band_idx"),
            models.Index(fields=["source"], name="customer_source_idx"),
            # Every rule and list leaves erased customers out; with the id in the index, a rule
            # on country reads the live customers of a country in id order from the index alone
            # (then joins consent and purchases in the same order).
            models.Index(
                fields=["country", "id"],
                condition=Q(erased_at__isnull=True),
                name="customer_live_country_idx",
            ),
            models.Index(
                fields=["owner", "last_name", "first_name", "id"], name="customer_owner_idx"
            ),
            models.Index(fields=["phone"], name="customer_phone_idx"),
            models.Index(
                fields=["email_hash"], condition=~Q(email_hash=""), name="customer_email_hash_idx"
            ),
            models.Index(
                fields=["phone_hash"], condition=~Q(phone_hash=""), name="customer_phone_hash_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email or self.external_id or f"Customer {self.pk}"

    def save(self, *args, **kwargs) -> None:
        # The hashes are part of the row's invariant (derived from email and phone), so every
        # save keeps them in step; bulk paths set them through customers.contact_hashes.
        for name, value in contact_hashes(email=self.email, phone=self.phone).items():
            setattr(self, name, value)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"email", "phone"} & set(update_fields):
            kwargs["update_fields"] = {*update_fields, "email_hash", "phone_hash"}
        super().save(*args, **kwargs)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Product(models.Model):
    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    category = models.CharField(max_length=100, blank=True, db_index=True)
    price = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(0)]
    )

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_gte_0")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"


class Purchase(models.Model):
    class Channel(models.TextChoices):
        ONLINE = "online", "Online"
        STORE = "store", "Store"
        PHONE = "phone", "Phone"
        MARKETPLACE = "marketplace", "Marketplace"
        OTHER = "other", "Other"

    # Indexes on this table are kept to what rules, attribution and upserts use: every extra one
    # slows imports of millions of rows. The composite indexes below cover the foreign keys.
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="purchases", db_index=False
    )
    external_id = models.CharField(max_length=100, null=True, blank=True, help_text="Order number")  # noqa: DJ001 (NULL when absent: unique only when present)
    # The upsert key: "ext:<external_id>" when there is an order number, otherwise a hash of the
    # row, so importing or posting the same purchase twice adds it once.
    dedup_key = models.CharField(max_length=120, editable=False)
    purchased_at = models.DateTimeField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    quantity = models.PositiveIntegerField(default=1)
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.ONLINE)
    product = models.ForeignKey(
        Product,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="purchases",
        db_index=False,
    )
    category = models.CharField(max_length=100, blank=True)
    promotion_code = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-purchased_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="purchase_quantity_gte_1"),
            models.CheckConstraint(
                condition=~Q(external_id=""), name="purchase_external_id_not_blank"
            ),
            # Constraints rather than unique=True: no second, pattern-matching index on PostgreSQL.
            models.UniqueConstraint(fields=["dedup_key"], name="purchase_dedup_key_unique"),
            models.UniqueConstraint(
                fields=["external_id"],
                condition=Q(external_id__isnull=False),
                name="purchase_external_id_unique",
            ),
        ]
        indexes = [
            # Behaviour rules: per-customer aggregates over a time window, index-only on PostgreSQL.
            models.Index(
                fields=["customer", "purchased_at"],
                include=["amount"],
                name="purchase_customer_time_idx",
            ),
            models.Index(fields=["category", "customer"], name="purchase_category_idx"),
            models.Index(fields=["product", "customer"], name="purchase_product_idx"),
            # Attribution looks purchases up by code; most purchases have none.
            models.Index(
                fields=["promotion_code"],
                condition=~Q(promotion_code=""),
                name="purchase_promotion_code_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} on {self.purchased_at:%Y-%m-%d}"


class Event(models.Model):
    """Something a customer did: a page view, an email open or click, an app action."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    properties = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(
                fields=["customer", "type", "occurred_at"], name="event_customer_type_idx"
            ),
            models.Index(fields=["type", "occurred_at"], name="event_type_time_idx"),
            models.Index(fields=["customer", "occurred_at"], name="event_customer_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} at {self.occurred_at:%Y-%m-%d %H:%M}"


class Note(models.Model):
    """A note or follow-up on a customer or an account."""

    class Kind(models.TextChoices):
        NOTE = "note", "Note"
        CALL = "call", "Call"
        MEETING = "meeting", "Meeting"
        TASK = "task", "Task"

    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="notes"
    )
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.CASCADE, related_name="notes"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="notes"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.NOTE)
    body = models.TextField()
    due_date = models.DateField(null=True, blank=True, help_text="Set for a follow-up")
    done = models.BooleanField(default=False)
    done_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(customer__isnull=False) | Q(account__isnull=False),
                name="note_has_customer_or_account",
            ),
            models.CheckConstraint(
                condition=Q(done=False) | Q(done_at__isnull=False), name="note_done_has_done_at"
            ),
        ]
        indexes = [
            models.Index(fields=["author", "done", "due_date"], name="note_followups_idx"),
            models.Index(fields=["customer", "created_at"], name="note_customer_idx"),
            models.Index(fields=["account", "created_at"], name="note_account_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.body[:40]}"

    @property
    def is_follow_up(self) -> bool:
        return self.due_date is not None


class ImportJob(Job):
    """One CSV import, run by a Celery task; its progress is shown live on the import page."""

    class Kind(models.TextChoices):
        CUSTOMERS = "customers", "Customers"
        PURCHASES = "purchases", "Purchases"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    file = models.FileField(upload_to="imports/%Y/%m/")
    original_name = models.CharField(max_length=255, blank=True)
    options = models.JSONField(default=dict, blank=True, help_text="Column map, date format, ...")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="import_jobs"
    )
    total_bytes = models.BigIntegerField(default=0)
    processed_bytes = models.BigIntegerField(default=0)
    rows_read = models.PositiveIntegerField(default=0)
    rows_created = models.PositiveIntegerField(default=0)
    rows_updated = models.PositiveIntegerField(default=0)
    rows_unchanged = models.PositiveIntegerField(default=0)
    rows_failed = models.PositiveIntegerField(default=0)
    error_report = models.FileField(upload_to="imports/reports/%Y/%m/", blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} import {self.pk} ({self.status})"

    @property
    def progress_percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.total_bytes:
            return 0
        return min(99, int(100 * self.processed_bytes / self.total_bytes))


class FiguresCheck(models.Model):
    """One run of the nightly check that every customer's derived figures (lifetime value,
    purchase count, first and last purchase, average order value) agree with their purchases
    (customers.services.customer_figures_check). Listed in the admin under Customers."""

    checked_at = models.DateTimeField(auto_now_add=True)
    customers_checked = models.PositiveIntegerField(default=0)
    customers_drifted = models.PositiveIntegerField(default=0)
    customers_repaired = models.PositiveIntegerField(default=0)
    drifted_ids = ArrayField(
        models.BigIntegerField(), default=list, blank=True, help_text="The first 100 drifted"
    )

    class Meta:
        ordering = ["-checked_at", "-id"]

    def __str__(self) -> str:
        return (
            f"{self.checked_at:%Y-%m-%d %H:%M}: {self.customers_drifted} of "
            f"{self.customers_checked} customers drifted"
        )


class MembershipMark(models.Model):
    """A customer whose segment membership may have changed since it was last evaluated: a
    write that can change it (a purchase, an event, a consent, a field, an import, a merge, an
    erasure) marks the customer in its own transaction (customers.marks), and segments'
    real-time worker claims the marks in small batches and re-evaluates those customers.

    One row per customer however often they are marked; `marked_at` is the earliest unprocessed
    mark, so the oldest are claimed first and the delay from write to join can be measured."""

    customer = models.OneToOneField(
        Customer, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    marked_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["marked_at"], name="membership_mark_at_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id} marked at {self.marked_at:%Y-%m-%d %H:%M:%S}"
