"""Delivery re-checks consent and suppression just before each message goes."""

import pytest
from django.core import mail

from campaigns.delivery import send_batch
from campaigns.models import Send
from campaigns.services import campaign_launch
from privacy.services import consent_withdraw
from privacy.suppression import suppression_add

pytestmark = pytest.mark.django_db


@pytest.fixture
def launched(campaign, consenting_members, marketing_user, django_capture_on_commit_callbacks):
    """A campaign launched to five consenting members whose messages have not gone yet."""
    with django_capture_on_commit_callbacks(execute=False):
        campaign_launch(campaign=campaign, actor=marketing_user)
    return campaign


def _deliver(campaign):
    ids = list(
        Send.objects.filter(campaign=campaign, status=Send.Status.PENDING).values_list(
            "pk", flat=True
        )
    )
    return send_batch(campaign_id=campaign.pk, send_ids=ids)


def _send(campaign, customer) -> Send:
    return Send.objects.get(campaign=campaign, customer=customer)


def test_recipient_who_withdraws_consent_after_launch_gets_nothing(launched, consenting_members):
    consent_withdraw(customer=consenting_members[0], purpose="email_marketing", source="staff")

    result = _deliver(launched)

    send = _send(launched, consenting_members[0])
    assert (send.status, send.reason) == (Send.Status.SKIPPED, "consent withdrawn before sending")
    assert send.sent_at is None and send.provider_message_id == ""
    assert (result.sent, result.skipped) == (4, 1)
    assert consenting_members[0].email not in [m.to[0] for m in mail.outbox]


def test_recipient_suppressed_after_launch_gets_nothing(launched, consenting_members):
    suppression_add(reason="unsubscribe", email=consenting_members[1].email.upper())

    result = _deliver(launched)

    send = _send(launched, consenting_members[1])
    assert (send.status, send.reason) == (Send.Status.SKIPPED, "on the suppression list")
    assert (result.sent, result.skipped) == (4, 1)
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        c.email for c in consenting_members[:1] + consenting_members[2:]
    )


def test_delivered_rows_record_the_message_id_the_recipient_got(launched, consenting_members):
    _deliver(launched)

    recorded = set(
        Send.objects.filter(campaign=launched, status=Send.Status.SENT).values_list(
            "provider_message_id", flat=True
        )
    )
    assert recorded == {m.extra_headers["Message-ID"] for m in mail.outbox}
    assert len(recorded) == 5


def test_a_row_cancelled_after_it_was_queued_is_not_sent(launched, consenting_members):
    queued = list(Send.objects.filter(campaign=launched).values_list("pk", flat=True))
    send = _send(launched, consenting_members[2])
    Send.objects.filter(pk=send.pk).update(status=Send.Status.CANCELLED)

    result = send_batch(campaign_id=launched.pk, send_ids=queued)

    assert Send.objects.get(pk=send.pk).status == Send.Status.CANCELLED
    assert result.sent == 4
    assert consenting_members[2].email not in [m.to[0] for m in mail.outbox]
