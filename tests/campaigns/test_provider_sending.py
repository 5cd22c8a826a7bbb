"""Sending through an email provider's API (django-anymail): the send is "being handed over"
while the provider is called, sent once the provider returned its message id (recorded, so its
tracking events find the send), failed when the provider refused it, unknown when no clear
answer came."""

import pytest
from anymail.backends.test import EmailBackend as AnymailTestBackend
from anymail.exceptions import AnymailAPIError
from django.core import mail

from campaigns.models import Send

pytestmark = pytest.mark.django_db

# What the provider does for a recipient: refuse it (HTTP 400) or never answer (a timeout).
REFUSED: set[str] = set()
TIMED_OUT: set[str] = set()
STATE_AT_CALL: dict[str, str] = {}


class WatchedProvider(AnymailTestBackend):
    """anymail's test backend, which also notes the send's state while the provider is called."""

    def post_to_esp(self, payload, message):
        send_id = int(message.metadata["crm_send"])
        STATE_AT_CALL[message.to[0]] = Send.objects.get(pk=send_id).status
        if message.to[0] in REFUSED:
            message.anymail_test_response = AnymailAPIError("Invalid 'To' address", status_code=422)
        elif message.to[0] in TIMED_OUT:
            message.anymail_test_response = AnymailAPIError("Read timed out.")
        return super().post_to_esp(payload, message)


@pytest.fixture
def provider(settings):
    settings.EMAIL_BACKEND = "tests.campaigns.test_provider_sending.WatchedProvider"
    REFUSED.clear()
    TIMED_OUT.clear()
    STATE_AT_CALL.clear()
    mail.outbox = []


def test_a_message_sent_through_a_provider_is_sent_with_the_providers_message_id(
    provider, launch, campaign, consenting_members
):
    launch(campaign)

    sends = Send.objects.filter(campaign=campaign).select_related("customer")
    assert {s.status for s in sends} == {Send.Status.SENT}
    # While the provider was called, the row said so; "sent" came with its answer.
    assert STATE_AT_CALL == {c.email: Send.Status.HANDING_OVER for c in consenting_members}
    by_address = {m.to[0]: m for m in mail.outbox}
    for send in sends:
        message = by_address[send.customer.email]
        assert send.provider_message_id == str(message.anymail_status.message_id)
        assert message.anymail_test_params["metadata"] == {"crm_send": str(send.pk)}


def test_a_refusal_fails_the_message_and_no_answer_leaves_it_unknown(
    provider, launch, campaign, consenting_members
):
    refused, lost = consenting_members[0], consenting_members[1]
    REFUSED.add(refused.email)
    TIMED_OUT.add(lost.email)

    launch(campaign)

    rows = {s.customer_id: s for s in Send.objects.filter(campaign=campaign)}
    assert rows[refused.pk].status == Send.Status.FAILED
    assert "422" in rows[refused.pk].reason
    assert rows[lost.pk].status == Send.Status.UNKNOWN
    assert "no clear answer" in rows[lost.pk].reason
    assert rows[lost.pk].sent_at is None
    others = [rows[c.pk].status for c in consenting_members[2:]]
    assert others == [Send.Status.SENT] * 3
