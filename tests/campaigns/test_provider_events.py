"""The provider's batches of bounces and complaints: recorded set-based, as if one by one."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.models import MessageEvent, Send
from campaigns.tracking import (
    message_event_record,
    provider_event_record,
    provider_events_parse,
    provider_events_record,
    send_unsubscribe,
)
from customers.models import Event
from privacy.models import ConsentRecord, ConsentState
from privacy.services import consent_withdraw
from tests.campaigns.factories import CampaignFactory, consent_grant_all
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _deliver(campaign, customers) -> list[Send]:
    now = timezone.now()
    Send.objects.bulk_create(
        Send(campaign=campaign, customer=customer, status=Send.Status.SENT, created_at=now,
             sent_at=now, provider_message_id=f"<{campaign.pk}.{customer.pk}@crm.local>")
        for customer in customers
    )  # fmt: skip
    return list(Send.objects.filter(campaign=campaign).order_by("pk"))


@pytest.fixture
def delivered():
    """Sixty delivered emails of one campaign, to customers who consented to its purpose."""
    customers = CustomerFactory.create_batch(60)
    consent_grant_all(customers)
    return _deliver(CampaignFactory(), customers)


def _mixed(sends: list[Send]) -> list:
    """Bounces by message id and by send id, complaints, unknown messages and invalid events."""
    items = []
    for index, send in enumerate(sends):
        items.append(
            [
                {"type": "bounce", "message_id": send.provider_message_id, "detail": "5.1.1"},
                {"type": "complaint", "message_id": f" {send.provider_message_id} "},
                {"type": "bounce", "send_id": send.pk},
                {"type": "bounce", "message_id": f"<nobody.{index}@crm.local>"},
                {"type": "open", "message_id": send.provider_message_id},
            ][index % 5]
        )
    return items


def test_a_batch_takes_the_same_statements_whatever_its_size(delivered):
    consent_withdraw(customer=delivered[6].customer, purpose="email_marketing", source="staff")

    with CaptureQueriesContext(connection) as small:
        provider_events_record(_mixed(delivered[:5]))
    with CaptureQueriesContext(connection) as large:
        result = provider_events_record(_mixed(delivered[5:55]))

    assert result == {"recorded": 30, "unknown": 10, "errors": [
        f"events[{index}].type: expected bounce or complaint" for index in range(4, 50, 5)
    ]}  # fmt: skip
    # The complaints also mark their customers for real-time segment membership (four statements).
    assert len(small) == len(large) <= 20


def _one_by_one(items: list) -> dict:
    """The batch as it was recorded before, event after event, for comparison (a message id of
    blanks now matches nothing: it used to match any email without one, such as a pending one)."""
    events, errors = provider_events_parse(items)
    recorded = 0
    for event in events:
        message_id = event.message_id.strip()
        send = Send.objects.filter(provider_message_id=message_id).first() if message_id else None
        if send is None and event.send_id is not None:
            send = Send.objects.filter(pk=event.send_id).first()
        if send is None:
            continue
        message_event_record(send=send, kind=event.kind, detail=event.detail)
        if event.kind == "complaint":
            send_unsubscribe(send=send)
        recorded += 1
    return {"recorded": recorded, "unknown": len(events) - recorded, "errors": errors}


def _outcome(record) -> tuple:
    """What recording a batch answers and writes, then undone so the next run starts the same."""
    with transaction.atomic():
        marks = (MessageEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0,
                 Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0,
                 ConsentRecord.objects.order_by("-pk").values_list("pk", flat=True).first() or 0)  # fmt: skip
        answer = record()
        written = (
            answer,
            list(MessageEvent.objects.filter(pk__gt=marks[0]).order_by("pk")
                 .values_list("send_id", "kind", "url", "detail")),
            list(Event.objects.filter(pk__gt=marks[1]).order_by("pk")
                 .values_list("customer_id", "type", "properties")),
            list(ConsentRecord.objects.filter(pk__gt=marks[2]).order_by("pk")
                 .values_list("customer_id", "purpose_id", "state", "source", "evidence")),
            sorted(ConsentState.objects.values_list("customer_id", "purpose_id", "state")),
        )  # fmt: skip
        transaction.set_rollback(True)
    return written


def test_a_batch_writes_what_recording_its_events_one_by_one_wrote(delivered):
    first, second, withdrawn, unsubscribed, *_ = delivered
    consent_withdraw(customer=withdrawn.customer, purpose="email_marketing", source="staff")
    message_event_record(send=unsubscribed, kind=MessageEvent.Kind.UNSUBSCRIBE)
    # The same customer again, in a campaign of the same purpose and in one of another purpose.
    again = _deliver(CampaignFactory(), [first.customer])[0]
    consent_grant_all([first.customer], purpose="sms_marketing")
    other_purpose = _deliver(CampaignFactory(consent_purpose_id="sms_marketing"), [first.customer])
    items = [
        {"type": "complaint", "message_id": first.provider_message_id},
        {"type": "complaint", "message_id": first.provider_message_id},  # the same, twice
        {"type": "bounce", "message_id": f"  {second.provider_message_id}\n", "detail": "5.1.1"},
        {"type": "bounce", "send_id": second.pk, "detail": "x" * 400},  # the same send again
        {"type": "complaint", "message_id": "<gone@crm.local>", "send_id": withdrawn.pk},
        {"type": "complaint", "send_id": unsubscribed.pk},
        {"type": "complaint", "send_id": again.pk},
        {"type": "complaint", "message_id": other_purpose[0].provider_message_id},
        {"type": "bounce", "send_id": 10**30},
        {"type": "complaint"},
        "bounce",
        {"type": "bounce", "message_id": "<nobody@crm.local>"},
    ]

    batch = _outcome(lambda: provider_events_record(items))
    one_by_one = _outcome(lambda: _one_by_one(items))

    assert batch == one_by_one
    assert batch[0] == {"recorded": 8, "unknown": 2, "errors": [
        "events[9].message_id: give the message id or the send id",
        "events[10].type: expected bounce or complaint",
    ]}  # fmt: skip


def test_two_complaints_about_one_email_withdraw_once(delivered):
    send = delivered[0]
    complaint = {"type": "complaint", "message_id": send.provider_message_id}

    result = provider_events_record([complaint, complaint])

    assert result == {"recorded": 2, "unknown": 0, "errors": []}
    assert sorted(send.events.values_list("kind", flat=True)) == [
        "complaint", "complaint", "unsubscribe"
    ]  # fmt: skip
    withdrawals = ConsentRecord.objects.filter(customer=send.customer, state="withdrawn")
    assert list(withdrawals.values_list("source", "evidence")) == [
        ("unsubscribe", f"campaign {send.campaign_id}, send {send.pk}")
    ]
    assert send.customer.consent_states.get(purpose="email_marketing").state == "withdrawn"


def test_complaint_from_a_customer_who_already_withdrew_writes_no_new_withdrawal(delivered):
    send = delivered[0]
    consent_withdraw(customer=send.customer, purpose="email_marketing", source="staff")

    result = provider_events_record([{"type": "complaint", "send_id": send.pk}])

    assert result == {"recorded": 1, "unknown": 0, "errors": []}
    assert ConsentRecord.objects.filter(customer=send.customer, source="unsubscribe").count() == 0
    assert sorted(send.events.values_list("kind", flat=True)) == ["complaint", "unsubscribe"]
    assert sorted(Event.objects.filter(customer=send.customer).values_list("type", flat=True)) == [
        "email_complaint", "email_unsubscribe"
    ]  # fmt: skip


def test_a_message_id_of_blanks_matches_no_email(delivered):
    pending = _deliver(CampaignFactory(), CustomerFactory.create_batch(1))[0]
    Send.objects.filter(pk=pending.pk).update(status=Send.Status.PENDING, provider_message_id="")

    result = provider_events_record([{"type": "complaint", "message_id": "   "}])

    assert result == {"recorded": 0, "unknown": 1, "errors": []}
    assert not MessageEvent.objects.exists()


def test_one_provider_event_is_a_batch_of_one(delivered):
    send = delivered[0]

    event = provider_event_record(
        kind="bounce", message_id=send.provider_message_id, detail="5.1.1"
    )
    nothing = provider_event_record(kind="complaint", message_id="<nobody@crm.local>")

    assert (event.send, event.kind, event.detail) == (send, "bounce", "5.1.1")
    assert nothing is None
    with pytest.raises(ValueError):
        provider_event_record(kind="open", send_id=send.pk)


def test_a_nul_in_a_message_id_matches_no_email_and_is_dropped_from_a_detail(delivered):
    send = delivered[0]

    result = provider_events_record([
        {"type": "bounce", "message_id": "<a\x00b@crm.local>"},
        {"type": "bounce", "message_id": send.provider_message_id, "detail": "5.1\x00.1"},
    ])  # fmt: skip

    assert result == {"recorded": 1, "unknown": 1, "errors": []}
    assert send.events.get().detail == "5.1.1"
