"""What recipients and the provider report: opens, clicks, unsubscribes, bounces, complaints.

Each is a MessageEvent on the send and also a customer Event ("email_open", "email_click", ...),
so segment rules on behaviour can use them.

Nothing is recorded about a person who was erased: their old messages' links and the provider's
late reports about them must not bring them back (no event, no consent record, no address).
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import MessageEvent, Send
from customers.models import Event
from customers.services import event_create, events_create
from privacy.models import ConsentSource, ConsentState, ConsentStatus
from privacy.services import ConsentChange, consent_record_many, consent_withdraw

EVENT_TYPES = {
    MessageEvent.Kind.OPEN: "email_open",
    MessageEvent.Kind.CLICK: "email_click",
    MessageEvent.Kind.UNSUBSCRIBE: "email_unsubscribe",
    MessageEvent.Kind.BOUNCE: "email_bounce",
    MessageEvent.Kind.COMPLAINT: "email_complaint",
    MessageEvent.Kind.DELIVERED: "email_delivered",
}
# A complaint or an unsubscribe the provider reports withdraws the campaign's purpose.
WITHDRAWING = (MessageEvent.Kind.COMPLAINT, MessageEvent.Kind.UNSUBSCRIBE)


def send_customer_erased(send: Send) -> bool:
    """Whether the send's recipient has been erased since (their links then record nothing)."""
    return send.customer.erased_at is not None


def message_event_record(
    *, send: Send, kind: str, url: str = "", detail: str = "", at: dt.datetime | None = None
) -> MessageEvent | None:
    """Record an event on a message and on its customer's behaviour history (nothing, and
    None, when the customer was erased)."""
    if send_customer_erased(send):
        return None
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
    """Withdraw the campaign's consent purpose at once; returns False when already withdrawn
    (or when the customer was erased: their addresses are suppressed, and nothing is recorded)."""
    if send_customer_erased(send):
        return False
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


@dataclass(frozen=True)
class ProviderEvent:
    """What the provider reported about a message (a bounce, a complaint; through a provider's
    tracking webhook also a delivery, an open, a click, an unsubscribe), by its message id or
    else the send id."""

    kind: str
    message_id: str = ""
    send_id: int | None = None
    detail: str = ""
    url: str = ""


def provider_event_record(
    *, kind: str, message_id: str = "", send_id: int | None = None, detail: str = ""
) -> MessageEvent | None:
    """A bounce or complaint from the provider's webhook; None when no send matches."""
    if kind not in (MessageEvent.Kind.BOUNCE, MessageEvent.Kind.COMPLAINT):
        raise ValueError(f"kind: expected bounce or complaint, got {kind!r}")
    event = ProviderEvent(kind=kind, message_id=message_id, send_id=send_id, detail=detail)
    return provider_events_apply(events=[event])[0]


def _sends_find(events: Sequence[ProviderEvent]) -> list[Send | None]:
    """The send of each event: by the provider's message id, else by send id; two queries."""
    # An erased person's sends are unknown to late reports: nothing more is recorded on them.
    sends = Send.objects.select_related("campaign").filter(customer__erased_at__isnull=True)
    # No stored message id is blank or holds a NUL (which PostgreSQL refuses even in a lookup).
    message_ids = {
        event.message_id.strip() for event in events if "\x00" not in event.message_id
    } - {""}
    by_message: dict[str, Send] = {}
    if message_ids:
        # In the sends' order (campaign, id): the first send wins where a message id repeats.
        for send in sends.filter(provider_message_id__in=message_ids):
            by_message.setdefault(send.provider_message_id, send)
    # An id beyond the column's range matches nothing (an IN list would fail on it).
    low, high = connection.ops.integer_field_range(Send._meta.pk.get_internal_type())
    send_ids = {
        event.send_id
        for event in events
        if event.send_id is not None
        and event.message_id.strip() not in by_message
        and (low is None or event.send_id >= low)
        and (high is None or event.send_id <= high)
    }
    by_id = {send.pk: send for send in sends.filter(pk__in=send_ids)} if send_ids else {}
    return [
        by_message.get(event.message_id.strip()) or by_id.get(event.send_id) for event in events
    ]


def provider_events_apply(*, events: Sequence[ProviderEvent]) -> list[MessageEvent | None]:
    """Record a batch of provider events set-based, in one transaction; per event, its
    MessageEvent or None when no send matches (or, for an unsubscribe, when the send has one).

    Each is a MessageEvent and a customer Event, as message_event_record writes them; a
    complaint or an unsubscribe also does what send_unsubscribe does: the purpose withdrawn
    unless it already is, and the send's UNSUBSCRIBE event unless it has one. The events of a
    batch see each other as if recorded one after the other: a second complaint on the same
    send or for the same customer and purpose withdraws nothing more.
    """
    if not events:
        return []
    now = timezone.now()
    with transaction.atomic():
        found = _sends_find(events)
        complained = [
            send
            for event, send in zip(events, found, strict=True)
            if send is not None and event.kind in WITHDRAWING
        ]
        withdrawn: set[tuple[int, str]] = set()
        unsubscribed: set[int] = set()
        if complained:
            pairs = {(send.customer_id, send.campaign.purpose_code) for send in complained}
            withdrawn = pairs & set(
                ConsentState.objects.filter(
                    customer_id__in={customer for customer, _purpose in pairs},
                    purpose_id__in={purpose for _customer, purpose in pairs},
                    state=ConsentStatus.WITHDRAWN,
                ).values_list("customer_id", "purpose_id")
            )
            unsubscribed = set(
                MessageEvent.objects.filter(
                    send_id__in={send.pk for send in complained},
                    kind=MessageEvent.Kind.UNSUBSCRIBE,
                ).values_list("send_id", flat=True)
            )
        recorded: list[MessageEvent | None] = []
        rows: list[MessageEvent] = []
        withdrawals: list[ConsentChange] = []
        for event, send in zip(events, found, strict=True):
            if send is None:
                recorded.append(None)
                continue
            # PostgreSQL cannot store a NUL; the provider's detail is text for people to read.
            detail = event.detail.replace("\x00", "")[:300]
            url = event.url.replace("\x00", "")[:2000]
            if event.kind == MessageEvent.Kind.UNSUBSCRIBE and send.pk in unsubscribed:
                recorded.append(None)  # unsubscribed already: nothing more to record
                continue
            row = MessageEvent(send=send, kind=event.kind, at=now, detail=detail, url=url)
            recorded.append(row)
            rows.append(row)
            if event.kind == MessageEvent.Kind.UNSUBSCRIBE:
                unsubscribed.add(send.pk)
            if event.kind not in WITHDRAWING:
                continue
            # A spam complaint is a withdrawal: never mail this person for the purpose again.
            pair = (send.customer_id, send.campaign.purpose_code)
            if pair not in withdrawn:
                withdrawn.add(pair)
                withdrawals.append(
                    ConsentChange(
                        customer_id=send.customer_id,
                        purpose=pair[1],
                        state=ConsentStatus.WITHDRAWN,
                        evidence=f"campaign {send.campaign_id}, send {send.pk}",
                    )
                )
            if send.pk not in unsubscribed:
                unsubscribed.add(send.pk)
                rows.append(MessageEvent(send=send, kind=MessageEvent.Kind.UNSUBSCRIBE, at=now))
        MessageEvent.objects.bulk_create(rows)
        events_create(
            events=[
                Event(
                    customer_id=row.send.customer_id,
                    type=EVENT_TYPES[row.kind],
                    occurred_at=row.at,
                    properties={"campaign": row.send.campaign_id, "send": row.send_id}
                    | ({"url": row.url[:500]} if row.url else {}),
                )
                for row in rows
            ]
        )
        consent_record_many(changes=withdrawals, source=ConsentSource.UNSUBSCRIBE)
    return recorded


def provider_events_parse(items: object) -> tuple[list[ProviderEvent], list[str]]:
    """The valid events of a provider's batch, at most 1,000, and the errors of the others by
    position and field (`events[3].type: expected bounce or complaint`)."""
    if not isinstance(items, list):
        return [], ["events: expected a list of events"]
    events, errors = [], []
    for index, item in enumerate(items[:1000]):
        if not isinstance(item, dict) or item.get("type") not in ("bounce", "complaint"):
            errors.append(f"events[{index}].type: expected bounce or complaint")
            continue
        send_id = item.get("send_id")
        if not item.get("message_id") and not isinstance(send_id, int):
            errors.append(f"events[{index}].message_id: give the message id or the send id")
            continue
        events.append(
            ProviderEvent(
                kind=item["type"],
                message_id=str(item.get("message_id") or ""),
                send_id=send_id if isinstance(send_id, int) else None,
                detail=str(item.get("detail", ""))[:300],
            )
        )
    return events, errors


def provider_events_record(items: object) -> dict:
    """A provider's batch of bounces and complaints:
    [{"type": "bounce"|"complaint", "message_id": "<...>", "send_id": 1, "detail": "..."}].

    Returns {"recorded", "unknown" (no such message), "errors" (by position and field)}.
    Invalid events are left out and the others recorded, set-based, in one transaction.
    """
    events, errors = provider_events_parse(items)
    recorded = sum(1 for event in provider_events_apply(events=events) if event is not None)
    return {"recorded": recorded, "unknown": len(events) - recorded, "errors": errors}
