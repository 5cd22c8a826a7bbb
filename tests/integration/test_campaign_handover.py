"""A message is recorded as sent only once the mail server accepted it (its 250 after the final
dot). Between the commit that hands it over and that answer, its row says "being handed over";
a refusal at the dot fails it, and no answer at all leaves it unknown, never sent."""

import asyncio
import email
import socket
import threading
from collections.abc import Iterator

import pytest
from django.db import connection

from campaigns.models import Campaign, Send
from campaigns.services import campaign_launch
from privacy.models import Purpose
from tests.campaigns.factories import (
    CampaignFactory,
    VariantFactory,
    consent_grant_all,
    members_add,
)
from tests.customers.factories import CustomerFactory
from tests.segments.factories import StaticSegmentFactory

pytestmark = pytest.mark.integration


class WatchingSmtpServer:
    """Loopback SMTP: when the final dot of a message arrives, it reads (in its own database
    connection) the state of that message's send row, then answers 250, refuses the message
    (`refusing_at_dot`) or drops the connection without an answer (`vanishing`)."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.refusing_at_dot: set[str] = set()
        self.vanishing: set[str] = set()
        self.state_at_dot: dict[str, str] = {}
        self.accepted: list[str] = []
        self.lock = threading.Lock()
        server = self

        def row_state(message_id: str) -> str:
            try:
                return (
                    Send.objects.filter(provider_message_id=message_id)
                    .values_list("status", flat=True)
                    .first()
                    or "no row with that message id"
                )
            finally:
                connection.close()  # this thread's own database connection

        class Handler:
            async def handle_DATA(self, smtp, session, envelope):
                message = email.message_from_bytes(envelope.content)
                rcpt = envelope.rcpt_tos[0]
                state = await asyncio.get_running_loop().run_in_executor(
                    None, row_state, message["Message-ID"]
                )
                with server.lock:
                    server.state_at_dot[rcpt] = state
                if rcpt in server.vanishing:
                    smtp.transport.abort()  # no answer: the client cannot know
                    return "250 OK"
                if rcpt in server.refusing_at_dot:
                    return "554 5.7.1 Message refused"
                with server.lock:
                    server.accepted.append(rcpt)
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)


@pytest.fixture
def watching_smtp_server(transactional_db, settings) -> Iterator[WatchingSmtpServer]:
    for code in (Purpose.EMAIL_MARKETING, Purpose.DATA_SALE):  # flushed by transactional tests
        Purpose.objects.get_or_create(code=code, defaults={"name": code})
    server = WatchingSmtpServer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.CAMPAIGNS_RATE_PER_SECOND = 0
    server.controller.start()
    try:
        yield server
    finally:
        server.controller.stop()


def _campaign_to(n: int):
    segment = StaticSegmentFactory()
    customers = CustomerFactory.create_batch(n)
    members_add(segment, customers)
    consent_grant_all(customers)
    campaign = CampaignFactory()
    campaign.target_segments.add(segment)
    VariantFactory(campaign=campaign, name="A")
    return campaign, customers


@pytest.mark.parametrize("group_size", [16, 1], ids=["in groups", "one at a time"])
def test_a_message_is_sent_only_once_the_server_accepted_it_and_not_before(
    watching_smtp_server, settings, group_size
):
    settings.CAMPAIGNS_GROUP_SIZE = group_size
    campaign, customers = _campaign_to(6)
    refused, vanished = customers[1], customers[4]
    watching_smtp_server.refusing_at_dot = {refused.email}
    watching_smtp_server.vanishing = {vanished.email}

    campaign_launch(campaign=campaign, actor=None)  # delivers in this process (eager tasks)

    # When the server had the whole message, before it answered, no row said "sent".
    assert watching_smtp_server.state_at_dot == {
        c.email: Send.Status.HANDING_OVER for c in customers
    }
    sends = {s.customer_id: s for s in Send.objects.filter(campaign=campaign)}
    accepted = sorted(watching_smtp_server.accepted)
    assert accepted == sorted(c.email for c in customers if c not in (refused, vanished))
    assert (
        sorted(s.customer.email for s in sends.values() if s.status == Send.Status.SENT) == accepted
    )
    assert all(s.sent_at for s in sends.values() if s.status == Send.Status.SENT)
    assert sends[refused.pk].status == Send.Status.FAILED
    assert "554" in sends[refused.pk].reason
    lost = sends[vanished.pk]
    assert lost.status == Send.Status.UNKNOWN
    assert "after the message was handed over" in lost.reason
    assert lost.sent_at is None
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT
