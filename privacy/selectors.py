"""Shared reads of privacy: who may be targeted, the request queue, the audit log, Art. 30."""

import datetime as dt

from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, OuterRef, Q, QuerySet
from django.utils import timezone

from customers.models import Customer
from privacy.models import AuditEntry, ConsentState, ConsentStatus, DataSubjectRequest, Purpose
from privacy.registry import personal_data_files, personal_data_models
from privacy.suppression import suppression_exclude


def customers_eligible_for(
    purpose: str, queryset: QuerySet[Customer] | None = None
) -> QuerySet[Customer]:
    """Customers who may be contacted for a purpose: consent granted AND not suppressed.

    Campaigns and exports call this (set-based, one query). An erased or fully unsubscribed
    address that comes back through an import or the API stays excluded whatever consent is
    recorded for it, until the person confirms a new grant themselves through a signed link.
    """
    customers = queryset if queryset is not None else Customer.objects.all()
    granted = ConsentState.objects.filter(
        customer_id=OuterRef("pk"), purpose_id=purpose, state=ConsentStatus.GRANTED
    )
    return suppression_exclude(customers.filter(Exists(granted)))


def customers_for_third_parties(queryset: QuerySet[Customer] | None = None) -> QuerySet[Customer]:
    """Customers whose data may go to a third party (webhooks, exports marked as for third
    parties): not opted out of data sale (do-not-sell) and not suppressed."""
    customers = queryset if queryset is not None else Customer.objects.all()
    opted_out = ConsentState.objects.filter(
        customer_id=OuterRef("pk"), purpose_id=Purpose.DATA_SALE, state=ConsentStatus.WITHDRAWN
    )
    return suppression_exclude(customers.exclude(Exists(opted_out)))


def dsr_queue(*, include_closed: bool = False) -> QuerySet[DataSubjectRequest]:
    """Requests by deadline, soonest first, with an `is_overdue` flag."""
    today = timezone.localdate()
    requests = DataSubjectRequest.objects.select_related("customer", "handled_by")
    if not include_closed:
        requests = requests.filter(status__in=DataSubjectRequest.OPEN_STATUSES)
    overdue = Q(deadline__lt=today, status__in=DataSubjectRequest.OPEN_STATUSES)
    return requests.annotate(
        is_overdue=ExpressionWrapper(overdue, output_field=BooleanField())
    ).order_by("deadline", "id")


def dsr_counts() -> dict[str, int]:
    """Open and overdue data-subject requests, for the dashboard (one query)."""
    today = timezone.localdate()
    return DataSubjectRequest.objects.filter(status__in=DataSubjectRequest.OPEN_STATUSES).aggregate(
        open=Count("id"),
        overdue=Count("id", filter=Q(deadline__lt=today)),
        due_this_week=Count(
            "id", filter=Q(deadline__gte=today, deadline__lte=today + dt.timedelta(days=7))
        ),
    )


def audit_entries_search(
    *,
    actor_id: int | None = None,
    action: str = "",
    object_kind: str = "",
    object_id: int | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> QuerySet[AuditEntry]:
    entries = AuditEntry.objects.select_related("actor")
    if actor_id is not None:
        entries = entries.filter(actor_id=actor_id)
    if action:
        entries = entries.filter(action=action)
    if object_kind:
        entries = entries.filter(object_kind=object_kind)
    if object_id is not None:
        entries = entries.filter(object_id=object_id)
    if since is not None:
        entries = entries.filter(at__date__gte=since)
    if until is not None:
        entries = entries.filter(at__date__lte=until)
    return entries.order_by("-at", "-id")


def records_of_processing() -> list[dict]:
    """GDPR Art. 30 records, one per registered model: category, where stored, purposes, retention."""
    records = []
    for entry in personal_data_models():
        meta = entry.model._meta
        records.append(
            {
                "category": entry.category,
                "model": entry.label,
                "table": entry.table,
                "app": meta.app_config.verbose_name if meta.app_config else meta.app_label,
                "fields": [f for f in entry.export_fields if f not in ("id",)],
                "purpose": entry.purpose,
                "retention": entry.retention,
                "erasure": entry.erase_mode_display(),
                "description": entry.description,
            }
        )
    for files in personal_data_files():
        records.append(
            {
                "category": files.category,
                "model": files.key,
                "table": files.where,
                "app": "Files",
                "fields": list(files.covers),
                "purpose": files.purpose,
                "retention": files.retention,
                "erasure": "scrub",
                "description": files.description,
            }
        )
    return sorted(records, key=lambda r: (r["app"], r["category"]))
