"""What privacy registers at start-up: the personal data of customers and of privacy itself, and
the consent panel, timeline and audit hooks on customer pages."""

from django.db.models import CharField, F, Q, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone


def _exports_delete(rows) -> None:
    for export in rows:
        if export.file:
            export.file.delete(save=False)
    rows.delete()


def _consent_ledger_delete(rows) -> None:
    from django.db import models

    from privacy.models import ConsentState, PendingConsent

    ids = list(rows.values_list("pk", flat=True))
    models.QuerySet.delete(ConsentState.objects.filter(record_id__in=ids))
    PendingConsent.objects.filter(record_id__in=ids).delete()
    # The ledger refuses deletes from the application; erasure is the exception the law makes.
    models.QuerySet.delete(rows)


def personal_data_register_builtin() -> None:
    from customers.models import Account, Customer, Event, MembershipMark, Note, Purchase
    from privacy.models import (
        ConsentRecord,
        ConsentState,
        DataExport,
        DataSubjectRequest,
        PendingConsent,
    )
    from privacy.registry import personal_data_exempt, personal_data_register

    personal_data_exempt(
        MembershipMark,
        reason="A customer id and a time: whose segment membership to re-evaluate; the real-time "
        "worker deletes it within seconds",
    )
    personal_data_register(
        Customer,
        customer_path="",
        erase="anonymise",
        anonymise={
            "external_id": None,
            "first_name": "",
            "last_name": "",
            "email": None,
            "phone": "",
            "email_hash": "",
            "phone_hash": "",
            "birth_date": None,
            "gender": "",
            "region": "",
            "city": "",
            "postal_code": "",
            "language": "",
            "income_band": "",
            "attributes": {},
            "source": "erased",
            "erased_at": timezone.now,
        },
        category="Identity and contact details",
        purpose="Customer relationship, sales, marketing (with consent)",
        retention="Anonymised after an erasure or when inactive for the retention period",
        description="Name, email, phone, birth date, gender, location, language, income band, custom fields.",
    )
    personal_data_register(
        Customer.tags.through,
        customer_path="customer",
        erase="delete",
        category="Interests and tags",
        purpose="Segmentation and personalisation",
        retention="Deleted with the customer's erasure",
    )
    personal_data_register(
        Purchase,
        customer_path="customer",
        export_fields=[
            "id",
            "external_id",
            "purchased_at",
            "amount",
            "currency",
            "quantity",
            "channel",
            "product_id",
            "category",
            "promotion_code",
            "created_at",
        ],
        erase="anonymise",
        anonymise={
            "external_id": None,
            "promotion_code": "",
            "dedup_key": Concat(Value("erased:"), Cast(F("pk"), output_field=CharField())),
        },
        category="Purchases",
        purpose="Order history, lifetime value, revenue statistics",
        retention="Kept anonymised for revenue statistics (amount, date, product, channel)",
    )
    personal_data_register(
        Event,
        erase="delete",
        category="Behaviour (page views, email opens and clicks)",
        purpose="Behavioural segmentation and campaign attribution",
        retention="Deleted with the customer's erasure or by the retention policy",
    )
    personal_data_register(
        Note,
        export_fields=["id", "kind", "body", "due_date", "done", "done_at", "created_at"],
        erase="delete",
        category="Notes and follow-ups",
        purpose="Customer relationship (sales)",
        retention="Deleted with the customer's erasure",
    )
    personal_data_register(
        Account,
        customer_path="customers",
        export_fields=[
            "id",
            "name",
            "kind",
            "address",
            "city",
            "postal_code",
            "country",
            "website",
        ],
        erase="anonymise",
        erase_filter=Q(kind=Account.Kind.HOUSEHOLD),
        anonymise={
            "name": "Erased household",
            "address": "",
            "city": "",
            "postal_code": "",
            "website": "",
        },
        category="Household",
        purpose="Grouping customers who live together",
        retention="A household's name and address are anonymised with a member's erasure; companies are kept",
    )
    personal_data_register(
        ConsentRecord,
        export_fields=[
            "id",
            "purpose_id",
            "state",
            "recorded_at",
            "source",
            "wording_id",
            "ip_address",
            "evidence",
        ],
        erase=_consent_ledger_delete,
        category="Consent records",
        purpose="Proof of consent (GDPR Art. 7(1))",
        retention="Kept while the customer exists; after erasure only the suppression hash remains",
    )
    personal_data_register(
        ConsentState,
        export_fields=["purpose_id", "state", "changed_at"],
        erase="delete",
        category="Current consent",
        purpose="Deciding who may be contacted",
        retention="Derived from the consent records",
    )
    personal_data_register(
        PendingConsent,
        export_fields=["id", "purpose_id", "source", "requested_at", "confirmed_at", "ip_address"],
        erase="delete",
        category="Pending double opt-in",
        purpose="Confirming email subscriptions",
        retention="Deleted with the customer's erasure",
    )
    personal_data_register(
        DataSubjectRequest,
        export_fields=[
            "id",
            "type",
            "law",
            "channel",
            "received_on",
            "deadline",
            "status",
            "details",
        ],
        erase="anonymise",
        anonymise={"email": "", "details": ""},
        category="Data-subject requests",
        purpose="Answering requests under GDPR and CCPA (legal obligation)",
        retention="Kept without personal details as proof the request was answered",
    )
    personal_data_register(
        DataExport,
        export_fields=["id", "status", "row_count", "created_at", "finished_at"],
        erase=_exports_delete,
        category="Data exports",
        purpose="Answering access and portability requests",
        retention="Deleted with the customer's erasure",
    )


def personal_data_files_register_builtin() -> None:
    from customers.importing.stored_files import erasures_source_register, import_files_scrub
    from privacy.erasure import erased_addresses_since
    from privacy.registry import personal_data_files_register

    personal_data_files_register(
        "imports",
        scrub=lambda customer: import_files_scrub(customers=[customer]),
        scrub_many=lambda customers: import_files_scrub(customers=customers),
        where="Media storage: imports/ (uploaded CSV files) and imports/reports/ (failed rows)",
        covers=("customers.importjob.file", "customers.importjob.error_report"),
        category="Imported spreadsheets",
        purpose="Loading customers and purchases; showing staff which rows failed",
        retention=(
            "Deleted by the retention run PRIVACY_IMPORT_FILE_RETENTION_DAYS days after the "
            "import finished; the person's rows are blanked at once by an erasure"
        ),
        description="Every column of the uploaded file; the failed cell values in the report.",
    )
    # An import that finishes scrubs its own files of whoever was erased while it ran.
    erasures_source_register(erased_addresses_since)


def personal_data_mentions_register_builtin() -> None:
    """Free text of customers and privacy (and Django's admin log) that may mention anyone."""
    from django.contrib.admin.models import LogEntry

    from customers.models import Account, Customer, Event, ImportJob, Note
    from privacy.mentions import personal_data_mentions_register
    from privacy.models import (
        AuditEntry,
        BulkConsentJob,
        ConsentRecord,
        DataExport,
        DataSubjectRequest,
    )

    register = personal_data_mentions_register
    register(Customer, fields=["attributes", "source"], description="Other customers' fields")
    register(Account, fields=["name", "address"], description="A company named after the person")
    register(Note, fields=["body"], description="Notes on accounts and other customers")
    register(Event, fields=["properties"], description="Behaviour events of other customers")
    register(
        ImportJob,
        fields=["original_name", "message", "options", "file", "error_report"],
        description="The name a file was uploaded under; the stored file is renamed",
    )
    register(ConsentRecord, fields=["evidence"], description="Evidence of others' consent")
    register(
        DataSubjectRequest,
        fields=["email", "details", "extension_reason", "rejection_reason"],
        blank=["email"],
        description="Requests not matched to the person, and the reasons staff wrote",
    )
    register(DataExport, fields=["message"])
    register(AuditEntry, fields=["details"])
    register(BulkConsentJob, fields=["identifiers", "evidence", "message"])
    register(LogEntry, fields=["object_repr", "change_message"], description="The admin's log")
    from crm.models import BulkJob, SavedView

    register(
        SavedView, fields=["name", "query"], description="A saved list filter may search a name"
    )
    register(BulkJob, fields=["filter", "message"], description="A list filter may search a name")

    # The text fields that cannot mention a customer beyond what the registry erases.
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django.contrib.auth.models import Group, Permission, User
    from django.contrib.contenttypes.models import ContentType
    from django.contrib.sessions.models import Session
    from django_celery_beat.models import (
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
        SolarSchedule,
    )
    from rest_framework.authtoken.models import Token, TokenProxy

    from crm.models import ProcessHeartbeat
    from customers.models import Product, Purchase, Tag
    from privacy.mentions import personal_data_mentions_exempt
    from privacy.models import (
        ConsentWording,
        ErasureLog,
        PendingConsent,
        Purpose,
        Suppression,
    )

    exempt = personal_data_mentions_exempt
    staff = "Staff accounts, their tokens, sessions and sign-in attempts: staff, not customers"
    for model in (User, Group, Permission, Token, TokenProxy, Session):
        exempt(model, reason=staff)
    for model in (AccessAttempt, AccessFailureLog, AccessLog):
        exempt(model, reason=staff)
    for model in (ContentType, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule):
        exempt(model, reason="Configuration of the application and its schedules")
    exempt(ProcessHeartbeat, reason="Host names and queue names of Celery processes")
    from crm.models import BulkJob, SavedView

    exempt(SavedView, fields=["columns"], reason="Names of a list's columns")
    exempt(
        BulkJob,
        fields=["list_name", "action", "params", "ids"],
        reason="A list's and an action's names, ids of rows, tags and owners",
    )
    exempt(LogEntry, fields=["object_id"], reason="An id")
    exempt(Tag, reason="A label shared by many customers (unique: not rewritten by an erasure)")
    exempt(
        Account,
        fields=["industry", "website", "city", "postal_code", "country"],
        reason="A company's details; a household's are blanked with a member's erasure",
    )
    exempt(
        Customer,
        fields=[
            "external_id",
            "first_name",
            "last_name",
            "email",
            "phone",
            "country",
            "region",
            "city",
            "postal_code",
            "language",
            "email_hash",
            "phone_hash",
        ],
        reason="Each customer's own identity: blanked with that customer, never for a namesake",
    )
    exempt(Product, reason="The catalogue")
    exempt(Purchase, reason="Order numbers and codes; the person's are blanked with them")
    exempt(Event, fields=["type"], reason="The kind of event")
    exempt(Purpose, reason="Texts the business writes")
    exempt(ConsentWording, reason="Texts the business writes")
    exempt(DataExport, fields=["file"], reason="The person's exports are deleted with them")
    exempt(Suppression, reason="Salted hashes")
    exempt(ErasureLog, reason="Salted hashes")
    exempt(PendingConsent, reason="Codes")
    exempt(AuditEntry, fields=["action", "object_kind"], reason="Codes")
    exempt(BulkConsentJob, fields=["audience"], reason="A code")


def customer_hooks_register() -> None:
    from customers.registry import (
        CustomerPanel,
        access_hook_register,
        address_check_register,
        customer_panel_register,
        merge_hook_register,
        timeline_source_register,
    )
    from privacy.audit import audit_access_hook
    from privacy.panels import consent_merge_hook, consent_panel_context, consent_timeline
    from privacy.suppression import erased_addresses_refused

    customer_panel_register(
        CustomerPanel(
            key="consent",
            title="Consent",
            template="privacy/_consent_panel.html",
            context=consent_panel_context,
            order=50,
        )
    )
    timeline_source_register("consent", consent_timeline)
    access_hook_register(audit_access_hook)
    merge_hook_register(consent_merge_hook)
    address_check_register(erased_addresses_refused)


def customer_names(ids: set[int]) -> dict[int, str]:
    """Customers by name for the audit log (an erased customer has no row and stays a number)."""
    from customers.models import Customer

    return {customer.pk: str(customer) for customer in Customer.objects.filter(pk__in=ids)}


def dashboard_cards_register() -> None:
    """The privacy dashboard: the request queue by status, deadlines, erasures and consent."""
    from crm.dashboard import DashboardCard, dashboard_card_register
    from crm.roles import Role
    from privacy.dashboard import (
        dashboard_deadlines,
        dashboard_privacy_activity,
        dashboard_request_queue,
    )

    for card in (
        DashboardCard(
            key="privacy-requests",
            template="privacy/_dashboard_requests.html",
            context=dashboard_request_queue,
            roles=(Role.PRIVACY,),
            order=10,
        ),
        DashboardCard(
            key="privacy-deadlines",
            template="privacy/_dashboard_deadlines.html",
            context=dashboard_deadlines,
            roles=(Role.PRIVACY,),
            order=11,
        ),
        DashboardCard(
            key="privacy-activity",
            template="privacy/_dashboard_activity.html",
            context=dashboard_privacy_activity,
            roles=(Role.PRIVACY,),
            order=12,
        ),
    ):
        dashboard_card_register(card)
