"""What recipients and the provider report: opens, clicks, unsubscribes, bounces, complaints.

Each is a MessageEvent on the send and also a customer Event ("email_open", "email_click", ...),
so segment rules on behaviour can use them.
"""

import datetime as dt

from django.db import transaction
from django.utils import timezone

from campaigns.models import MessageEvent, Send
from customers.services import event_create
from privacy.models import ConsentSource
from privacy.services import consent_withdraw

EVENT_TYPES = {
    MessageEvent.Kind.OPEN: "email_open",
    MessageEvent.Kind.CLICK: "email_click",
    MessageEvent.Kind.UNSUBSCRIBE: "email_unsubscribe",
    MessageEvent.Kind.BOUNCE: "email_bounce",
    MessageEvent.Kind.COMPLAINT: "email_complaint",
}


def message_event_record(
    *, send: Send, kind: str, url: str = "", detail: str = "", at: dt.datetime | None = None
) -> MessageEvent:
    """Record an event on a message and on its customer's behaviour history."""
    at = at or timezone.now()
    with transaction.atomic():
        event = MessageEvent.objects.create(
            send=send, kind=kind, at=at, url=url[:2000], detail=detail[:300]
        )
        properties = {"campaign": send.campaign_id, "send": send.pk}
        if url:
            properties["url"] = url[:500]
        event_create(customer=send.customer, type=EVENT_TYPES[kind], occurred_at=at,
                     properties=properties)  # fmt: skip
    return event


def send_unsubscribe(*, send: Send, ip_address: str | None = None) -> bool:
    """Withdraw the campaign's consent purpose at once; returns False when already withdrawn."""
    from privacy.models import ConsentState, ConsentStatus

    purpose = send.campaign.purpose_code
    already = ConsentState.objects.filter(
        customer_id=send.customer_id, purpose_id=purpose, state=ConsentStatus.WITHDRAWN
    ).exists()
    with transaction.atomic():
        if not already:
            consent_withdraw(
                customer=send.customer,
                purpose=purpose,
                source=ConsentSource.UNSUBSCRIBE,
                ip_address=ip_address,
                evidence=f"campaign {send.campaign_id}, send {send.pk}",
            )
        if not send.events.filter(kind=MessageEvent.Kind.UNSUBSCRIBE).exists():
            message_event_record(send=send, kind=MessageEvent.Kind.UNSUBSCRIBE)
    return not already


def provider_event_record(
    *, kind: str, message_id: str = "", send_id: int | None = None, detail: str = ""
) -> MessageEvent | None:
    """A bounce or complaint from the provider's webhook; None when no send matches."""
    if kind not in (MessageEvent.Kind.BOUNCE, MessageEvent.Kind.COMPLAINT):
        raise ValueError(f"kind: expected bounce or complaint, got {kind!r}")
    sends = Send.objects.select_related("customer", "campaign")
    send = None
    if message_id:
        send = sends.filter(provider_message_id=message_id.strip()).first()
    if send is None and send_id is not None:
        send = sends.filter(pk=send_id).first()
    if send is None:
        return None
    event = message_event_record(send=send, kind=kind, detail=detail)
    if kind == MessageEvent.Kind.COMPLAINT:
        # A spam complaint is a withdrawal: never mail this person for the purpose again.
        send_unsubscribe(send=send)
    return event


def provider_events_record(items: object) -> dict:
    """A provider's batch of bounces and complaints:
    [{"type": "bounce"|"complaint", "message_id": "<...>", "send_id": 1, "detail": "..."}].

    Returns {"recorded", "unknown" (no such message), "errors" (by position and field)}.
    """
    if not isinstance(items, list):
        return {"recorded": 0, "unknown": 0, "errors": ["events: expected a list of events"]}
    recorded, unknown, errors = 0, 0, []
    for index, item in enumerate(items[:1000]):
        if not isinstance(item, dict) or item.get("type") not in ("bounce", "complaint"):
            errors.append(f"events[{index}].type: expected bounce or complaint")
            continue
        send_id = item.get("send_id")
        if not item.get("message_id") and not isinstance(send_id, int):
            errors.append(f"events[{index}].message_id: give the message id or the send id")
            continue
        event = provider_event_record(
            kind=item["type"],
            message_id=str(item.get("message_id") or ""),
            send_id=send_id if isinstance(send_id, int) else None,
            detail=str(item.get("detail", ""))[:300],
        )
        if event is None:
            unknown += 1
        else:
            recorded += 1
    return {"recorded": recorded, "unknown": unknown, "errors": errors}
