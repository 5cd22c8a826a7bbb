"""What privacy adds to the customer page: the consent panel and consent timeline entries."""

from collections.abc import Iterable

from django.http import HttpRequest
from django.urls import reverse

from crm.roles import Role, user_has_role
from customers.models import Customer
from customers.registry import TimelineEntry
from privacy.models import ConsentRecord, Purpose

HISTORY_LENGTH = 20


def user_records_consent(user) -> bool:
    """Privacy officers, sales staff (on the customers they see) and admins record consent."""
    return user_has_role(user, Role.PRIVACY, Role.SALES)


def consent_panel_context(request: HttpRequest, customer: Customer) -> dict:
    from privacy.forms import ConsentRecordForm

    states = {s.purpose_id: s for s in customer.consent_states.select_related("record")}
    pending = set(
        customer.pending_consents.filter(record__isnull=True).values_list("purpose_id", flat=True)
    )
    rows = [
        {
            "purpose": purpose,
            "state": states[purpose.code].state if purpose.code in states else "unknown",
            "changed_at": states[purpose.code].changed_at if purpose.code in states else None,
            "source": states[purpose.code].record.get_source_display()
            if purpose.code in states
            else "",
            "pending": purpose.code in pending,
        }
        for purpose in Purpose.objects.all()
    ]
    history = list(
        customer.consent_records.select_related("purpose", "wording", "actor").order_by(
            "-recorded_at", "-id"
        )[:HISTORY_LENGTH]
    )
    can_record = user_records_consent(request.user)
    return {
        "consent_panel": {
            "customer": customer,
            "states": rows,
            "history": history,
            "can_record": can_record,
            # A form that failed validation comes back bound, so the staff member's entries stay.
            "form": (getattr(request, "consent_form", None) or ConsentRecordForm())
            if can_record
            else None,
            "post_url": reverse("privacy:consent_record", args=[customer.pk]),
            # The link page is for privacy officers only; sales staff record consent here
            # but are not shown a link they would be refused.
            "preference_url": reverse("privacy:preference_link", args=[customer.pk])
            if user_has_role(request.user, Role.PRIVACY)
            else None,
        }
    }


def consent_timeline(customer: Customer, limit: int) -> Iterable[TimelineEntry]:
    records = ConsentRecord.objects.filter(customer=customer).select_related("purpose")
    for record in records.order_by("-recorded_at", "-id")[:limit]:
        yield TimelineEntry(
            at=record.recorded_at,
            kind="consent",
            title=f"{record.purpose.name}: {record.get_state_display().lower()}",
            detail=record.get_source_display(),
        )


def consent_merge_hook(target_id: int, duplicate_id: int) -> None:
    """After a merge moved the duplicate's ledger rows, re-derive the target's current state and
    move privacy's own rows about the duplicate."""
    from privacy.models import DataExport, DataSubjectRequest, PendingConsent
    from privacy.services import consent_states_rebuild

    PendingConsent.objects.filter(customer_id=duplicate_id).update(customer_id=target_id)
    DataSubjectRequest.objects.filter(customer_id=duplicate_id).update(customer_id=target_id)
    DataExport.objects.filter(customer_id=duplicate_id).update(customer_id=target_id)
    consent_states_rebuild(customer_ids=[target_id, duplicate_id])
