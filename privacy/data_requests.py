"""Data-subject requests: intake, verification, extension, completion and rejection."""

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from customers.models import Customer
from privacy.audit import audit_record
from privacy.deadlines import deadline_for
from privacy.models import (
    DataExport,
    DataSubjectRequest,
    Law,
    Purpose,
    RequestChannel,
    RequestStatus,
    RequestType,
)

TRANSITIONS = {
    RequestStatus.RECEIVED: {
        RequestStatus.VERIFYING,
        RequestStatus.IN_PROGRESS,
        RequestStatus.COMPLETED,
        RequestStatus.REJECTED,
    },
    RequestStatus.VERIFYING: {
        RequestStatus.IN_PROGRESS,
        RequestStatus.COMPLETED,
        RequestStatus.REJECTED,
    },
    RequestStatus.IN_PROGRESS: {RequestStatus.COMPLETED, RequestStatus.REJECTED},
    RequestStatus.COMPLETED: set(),
    RequestStatus.REJECTED: set(),
}


class RequestError(ValidationError):
    """A request change that is not allowed: a ValidationError of the field `field` names, with
    the one message `problem` (the API answers it as any other 400 by field)."""

    def __init__(self, field: str, message: str):
        super().__init__({field: [message]})
        self.field = field
        self.problem = message


def data_request_create(
    *,
    type: str,
    law: str = Law.GDPR,
    customer: Customer | None = None,
    email: str = "",
    received_on: dt.date | None = None,
    details: str = "",
    channel: str = RequestChannel.STAFF,
    actor: AbstractBaseUser | None = None,
) -> DataSubjectRequest:
    """Record a request; its deadline follows from the law and the day it was received."""
    if type not in RequestType.values:
        raise RequestError("type", f"expected one of {', '.join(RequestType.values)}")
    if law not in Law.values:
        raise RequestError("law", f"expected one of {', '.join(Law.values)}")
    if customer is None and not email.strip():
        raise RequestError("customer", "give the customer or the requester's email")
    received_on = received_on or timezone.localdate()
    if received_on > timezone.localdate():
        raise RequestError("received_on", "cannot be in the future")
    if customer is None:
        customer = Customer.objects.filter(email__iexact=email.strip()).first()
    with transaction.atomic():
        request = DataSubjectRequest.objects.create(
            customer=customer,
            email="" if customer is not None else email.strip(),
            type=type,
            law=law,
            channel=channel,
            received_on=received_on,
            deadline=deadline_for(law=law, received_on=received_on),
            details=details,
        )
        audit_record(
            actor=actor,
            action="request",
            object_kind="data_request",
            object_id=request.pk,
            details={"status": request.status, "type": type, "customer": request.customer_id},
        )
    return request


def data_request_match(
    *, request: DataSubjectRequest, customer: Customer, actor: AbstractBaseUser | None
) -> DataSubjectRequest:
    """Attach the verified customer to a request that arrived with an unmatched email."""
    if not request.is_open:
        raise RequestError("status", "the request is closed")
    with transaction.atomic():
        request.customer = customer
        request.email = ""
        request.save(update_fields=["customer", "email"])
        audit_record(
            actor=actor,
            action="request",
            object_kind="data_request",
            object_id=request.pk,
            details={"matched_customer": customer.pk},
        )
    return request


def data_request_extend(
    *, request: DataSubjectRequest, reason: str, actor: AbstractBaseUser | None
) -> DataSubjectRequest:
    """Extend the deadline once, as the law allows, with the reason recorded."""
    if request.extended:
        raise RequestError("extended", "the deadline was already extended once")
    if not request.is_open:
        raise RequestError("status", "the request is closed")
    if not reason.strip():
        raise RequestError("reason", "an extension needs a reason")
    with transaction.atomic():
        request.extended = True
        request.extension_reason = reason.strip()
        request.deadline = deadline_for(
            law=request.law, received_on=request.received_on, extended=True
        )
        request.save(update_fields=["extended", "extension_reason", "deadline"])
        audit_record(
            actor=actor,
            action="request",
            object_kind="data_request",
            object_id=request.pk,
            details={"extended": True},
        )
    return request


def erasure_confirmation_values(customer: Customer) -> list[str]:
    """What a person may type to confirm erasing this customer: their name or their email."""
    return [value for value in (customer.full_name, customer.email) if value.strip()] or [
        str(customer.pk)
    ]


def _complete(request: DataSubjectRequest, actor: AbstractBaseUser | None) -> None:
    from privacy.erasure import customer_erase
    from privacy.services import consent_withdraw

    needs_customer = {
        RequestType.ERASURE,
        RequestType.DO_NOT_SELL,
        RequestType.ACCESS,
        RequestType.PORTABILITY,
    }
    if request.type in needs_customer and request.customer_id is None:
        raise RequestError("customer", "match the request to a customer before completing it")
    if request.type == RequestType.ERASURE:
        customer_erase(customer=request.customer, actor=actor, request=request)
    elif request.type == RequestType.DO_NOT_SELL:
        consent_withdraw(
            customer=request.customer,
            purpose=Purpose.DATA_SALE,
            source="staff",
            actor=actor,
            evidence=f"Data request {request.pk}",
        )
    elif request.type in (RequestType.ACCESS, RequestType.PORTABILITY):
        if not request.exports.filter(status=DataExport.Status.DONE).exists():
            raise RequestError("exports", "build the data export before completing the request")


def data_request_transition(
    *,
    request: DataSubjectRequest,
    status: str,
    actor: AbstractBaseUser | None,
    reason: str = "",
) -> DataSubjectRequest:
    """Move a request on; completing an erasure erases, completing do-not-sell opts out."""
    if status not in RequestStatus.values:
        raise RequestError("status", f"expected one of {', '.join(RequestStatus.values)}")
    if status == RequestStatus.REJECTED and not reason.strip():
        raise RequestError("reason", "a rejection needs a reason")
    with transaction.atomic():
        request = DataSubjectRequest.objects.select_for_update().get(pk=request.pk)
        if status not in TRANSITIONS[request.status]:
            raise RequestError("status", f"cannot go from {request.status} to {status}")
        if status == RequestStatus.COMPLETED:
            _complete(request, actor)
            request.refresh_from_db()
        request.status = status
        request.rejection_reason = reason.strip() if status == RequestStatus.REJECTED else ""
        request.handled_by = actor if actor is not None and actor.is_authenticated else None
        request.handled_at = timezone.now()
        request.save(update_fields=["status", "rejection_reason", "handled_by", "handled_at"])
        audit_record(
            actor=actor,
            action="request",
            object_kind="data_request",
            object_id=request.pk,
            details={"status": status, "type": request.type, "customer": request.customer_id},
        )
    return request
