"""Delivery over SMTP in groups: each message of a group goes up to the final dot of DATA on its
own connection, one statement re-checks consent and records the whole group as being handed
over, and only the messages so recorded get their dot; the server's answers make them sent."""

import asyncio
import email
import socket
import threading
from collections.abc import Iterator

import pytest
from django.db import connection

from campaigns.models import Campaign, Send
from campaigns.services import campaign_launch
from privacy.models import ConsentState, ConsentStatus, Purpose
from privacy.services import consent_withdraw
from tests.campaigns.factories import (
    CampaignFactory,
    VariantFactory,
    consent_grant_all,
    members_add,
)
from tests.customers.factories import CustomerFactory
from tests.segments.factories import StaticSegmentFactory

pytestmark = pytest.mark.integration


class WithdrawingSmtpServer:
    """A loopback SMTP server that accepts every message but those to `refusing`; when it
    receives RCPT TO for `withdrawing`, it withdraws that customer's email consent (committed) before it answers,
    so the withdrawal lands after the message was started and before the group is recorded."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.withdrawing = None
        self.refusing: set[str] = set()
        self.recipients_started: list[str] = []
        self.events: list[str] = []  # "rcpt" and "data" (a completed message), in order
        self.messages: list[tuple[list[str], email.message.Message]] = []
        self.lock = threading.Lock()
        server = self

        def withdraw() -> None:
            try:
                consent_withdraw(
                    customer=server.withdrawing, purpose=Purpose.EMAIL_MARKETING, source="staff"
                )
            finally:
                connection.close()  # this thread's own database connection

        class Handler:
            async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
                with server.lock:
                    server.recipients_started.append(address)
                    server.events.append("rcpt")
                if address in server.refusing:
                    return "550 No such mailbox"
                if server.withdrawing is not None and address == server.withdrawing.email:
                    await asyncio.get_running_loop().run_in_executor(None, withdraw)
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, smtp, session, envelope):
                message = email.message_from_bytes(envelope.content)
                with server.lock:
                    server.messages.append((list(envelope.rcpt_tos), message))
                    server.events.append("data")
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def delivered_to(self) -> list[str]:
        with self.lock:
            return sorted(to for rcpt_tos, _m in self.messages for to in rcpt_tos)


@pytest.fixture
def withdrawing_smtp_server(transactional_db, settings) -> Iterator[WithdrawingSmtpServer]:
    for code in (Purpose.EMAIL_MARKETING, Purpose.DATA_SALE):  # flushed by transactional tests
        Purpose.objects.get_or_create(code=code, defaults={"name": code})
    server = WithdrawingSmtpServer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.CAMPAIGNS_RATE_PER_SECOND = 0
    settings.CAMPAIGNS_GROUP_SIZE = 16
    server.controller.start()
    try:
        yield server
    finally:
        server.controller.stop()


def _draft_campaign_to(n: int) -> tuple[Campaign, list]:
    """A draft campaign with one variant to n new customers who consent to email."""
    segment = StaticSegmentFactory()
    customers = CustomerFactory.create_batch(n)
    members_add(segment, customers)
    consent_grant_all(customers)
    campaign = CampaignFactory()
    campaign.target_segments.add(segment)
    VariantFactory(campaign=campaign, name="A")
    return campaign, customers


@pytest.fixture
def campaign_to_five(withdrawing_smtp_server):
    """A draft campaign to five consenting customers: one group of messages."""
    return _draft_campaign_to(5)


def test_withdrawal_just_before_the_group_commit_stops_that_message_and_sends_the_others(
    withdrawing_smtp_server, campaign_to_five
):
    campaign, customers = campaign_to_five
    withdrawing_smtp_server.withdrawing = customers[2]

    campaign_launch(campaign=campaign, actor=None)  # delivers in this process (eager tasks)

    # The server started all five messages, in one group, before it completed any, and then
    # completed only four.
    assert sorted(withdrawing_smtp_server.recipients_started) == sorted(c.email for c in customers)
    assert withdrawing_smtp_server.events == ["rcpt"] * 5 + ["data"] * 4
    assert withdrawing_smtp_server.delivered_to() == sorted(
        c.email for c in customers[:2] + customers[3:]
    )
    withdrawn = Send.objects.get(campaign=campaign, customer=customers[2])
    assert (withdrawn.status, withdrawn.reason) == (
        Send.Status.SKIPPED,
        "consent withdrawn before sending",
    )
    assert withdrawn.sent_at is None and withdrawn.provider_message_id == ""
    assert ConsentState.objects.get(
        customer=customers[2], purpose=Purpose.EMAIL_MARKETING
    ).state == (ConsentStatus.WITHDRAWN)
    sent = Send.objects.filter(campaign=campaign, status=Send.Status.SENT)
    assert sorted(sent.values_list("customer__email", flat=True)) == (
        withdrawing_smtp_server.delivered_to()
    )
    assert set(sent.values_list("provider_message_id", flat=True)) == {
        m["Message-ID"] for _to, m in withdrawing_smtp_server.messages
    }
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT


def test_a_refused_recipient_fails_alone_and_the_rest_of_the_group_is_sent(
    withdrawing_smtp_server, campaign_to_five
):
    campaign, customers = campaign_to_five
    withdrawing_smtp_server.refusing = {customers[1].email}

    campaign_launch(campaign=campaign, actor=None)

    refused = Send.objects.get(campaign=campaign, customer=customers[1])
    assert refused.status == Send.Status.FAILED
    assert "550 No such mailbox" in refused.reason
    assert withdrawing_smtp_server.delivered_to() == sorted(
        c.email for c in customers[:1] + customers[2:]
    )


@pytest.fixture
def campaign_to_ten_in_groups_of_four(withdrawing_smtp_server, settings):
    """A draft campaign to ten consenting customers, delivered in groups of four: each group's
    messages are written while the group before it waits for the server."""
    settings.CAMPAIGNS_GROUP_SIZE = 4
    return _draft_campaign_to(10)


def test_messages_written_ahead_in_groups_each_go_once_and_are_recorded_sent(
    withdrawing_smtp_server, campaign_to_ten_in_groups_of_four
):
    campaign, customers = campaign_to_ten_in_groups_of_four

    campaign_launch(campaign=campaign, actor=None)

    assert withdrawing_smtp_server.delivered_to() == sorted(c.email for c in customers)
    sent = Send.objects.filter(campaign=campaign, status=Send.Status.SENT)
    assert sent.count() == 10
    assert sorted(sent.values_list("provider_message_id", flat=True)) == sorted(
        m["Message-ID"] for _to, m in withdrawing_smtp_server.messages
    )
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT


def test_refused_recipients_in_groups_written_ahead_fail_alone(
    withdrawing_smtp_server, campaign_to_ten_in_groups_of_four
):
    campaign, customers = campaign_to_ten_in_groups_of_four
    refused, accepted = customers[::2], customers[1::2]  # five: some in the later groups
    withdrawing_smtp_server.refusing = {c.email for c in refused}

    campaign_launch(campaign=campaign, actor=None)

    sends = Send.objects.filter(campaign=campaign)
    assert sorted(sends.filter(status=Send.Status.FAILED).values_list("customer", flat=True)) == (
        sorted(c.pk for c in refused)
    )
    assert all("550 No such mailbox" in s.reason for s in sends.filter(status=Send.Status.FAILED))
    assert sorted(sends.filter(status=Send.Status.SENT).values_list("customer", flat=True)) == (
        sorted(c.pk for c in accepted)
    )
    assert withdrawing_smtp_server.delivered_to() == sorted(c.email for c in accepted)


def test_the_next_group_is_written_while_the_database_records_a_group_and_each_message_is_complete_only_once_recorded_as_handed_over(
    withdrawing_smtp_server, campaign_to_ten_in_groups_of_four, monkeypatch
):
    from campaigns import delivery

    campaign, customers = campaign_to_ten_in_groups_of_four
    recording = threading.Event()
    written_while_recording: list[bool] = []
    recorded_before_complete: list[bool] = []
    record = delivery._recheck_and_record_group
    advance = delivery._GroupWriter.advance

    def record_watched(*args, **kwargs):
        recording.set()
        try:
            return record(*args, **kwargs)
        finally:
            recording.clear()

    def advance_watched(self):
        written_while_recording.append(recording.is_set())
        advance(self)

    monkeypatch.setattr(delivery, "_recheck_and_record_group", record_watched)
    monkeypatch.setattr(delivery._GroupWriter, "advance", advance_watched)
    original_data = withdrawing_smtp_server.controller.handler.handle_DATA

    async def data_checked(smtp, session, envelope):
        def committed() -> bool:  # asked on another connection: only committed rows show
            try:
                return Send.objects.filter(
                    campaign=campaign,
                    customer__email=envelope.rcpt_tos[0],
                    status=Send.Status.HANDING_OVER,
                ).exists()
            finally:
                connection.close()

        recorded = await asyncio.get_running_loop().run_in_executor(None, committed)
        recorded_before_complete.append(recorded)
        return await original_data(smtp, session, envelope)

    withdrawing_smtp_server.controller.handler.handle_DATA = data_checked

    campaign_launch(campaign=campaign, actor=None)

    assert withdrawing_smtp_server.delivered_to() == sorted(c.email for c in customers)
    assert recorded_before_complete == [True] * 10
    assert True in written_while_recording  # the commit's wait wrote the next group
    assert Send.objects.filter(campaign=campaign, status=Send.Status.SENT).count() == 10
