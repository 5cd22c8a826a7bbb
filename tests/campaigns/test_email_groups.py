"""Email in groups over SMTP, seen from the channel: a real SMTP server on loopback."""

import email
import smtplib
import socket
import threading
from collections.abc import Iterator

import pytest
from django.core.mail.message import sanitize_address

from campaigns.channels import EmailChannel, OutgoingMessage, _smtp_path, envelope_address


class SmtpServer:
    """aiosmtpd on loopback: keeps every message, refuses the recipients in `refusing`."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.refusing: set[str] = set()
        self.messages: list[tuple[list[str], email.message.Message]] = []
        self.lock = threading.Lock()
        server = self

        class Handler:
            async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
                if address in server.refusing:
                    return "550 No such mailbox"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, smtp, session, envelope):
                with server.lock:
                    server.messages.append(
                        (list(envelope.rcpt_tos), email.message_from_bytes(envelope.content))
                    )
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def delivered_to(self) -> list[str]:
        with self.lock:
            return sorted(to for rcpt_tos, _m in self.messages for to in rcpt_tos)


@pytest.fixture
def smtp_server(settings) -> Iterator[SmtpServer]:
    server = SmtpServer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    server.controller.start()
    try:
        yield server
    finally:
        server.controller.stop()


def _message(send_id: int, to: str) -> OutgoingMessage:
    return OutgoingMessage(
        send_id=send_id,
        to=to,
        subject=f"Hello {send_id}",
        text="Your code takes 15% off.",
        html="<p>Your code takes 15% off.</p>",
        from_email="Shop <news@shop.example>",
        message_id=f"<m{send_id}@crm.local>",
    )


@pytest.mark.parametrize(
    "address",
    [
        "anna.berg@example.com",
        "o'brien+news@mail.example.co.uk",
        "Anna Berg <anna@example.com>",
        "jörg@example.com",
        "anna@bücher.example",
        '"anna berg"@example.com',
        "ANNA@EXAMPLE.COM",
    ],
)
def test_envelope_addresses_are_what_django_writes(address):
    assert envelope_address(address, "utf-8") == sanitize_address(address, "utf-8")
    sanitized = sanitize_address(address, "utf-8")
    assert _smtp_path(sanitized) == smtplib.quoteaddr(sanitized)


def test_an_address_with_a_label_too_long_is_refused_as_django_refuses_it():
    address = f"anna@{'a' * 64}.example"

    with pytest.raises(ValueError):
        sanitize_address(address, "utf-8")
    with pytest.raises(ValueError):
        envelope_address(address, "utf-8")


def test_work_given_to_a_group_runs_while_the_server_answers_each_step(smtp_server):
    channel = EmailChannel(group_size=4)
    events: list[str] = []

    def commit(ready: list[int]) -> set[int]:
        events.append("commit")
        return set(ready)

    outcome = channel.deliver_group(
        [_message(n, f"customer{n}@example.com") for n in range(1, 5)],
        commit,
        meanwhile=lambda: events.append("meanwhile"),
    )
    channel.close()

    assert outcome == dict.fromkeys(range(1, 5), "")
    assert events == ["meanwhile"] * 4 + ["commit"]
    assert smtp_server.delivered_to() == [f"customer{n}@example.com" for n in range(1, 5)]


def test_nothing_runs_after_the_commit_until_the_dots_are_answered(smtp_server):
    # A worker killed with the server's replies unread resets its connections, and a message
    # whose dot the server had not read yet would be lost although recorded as sent.
    channel = EmailChannel(group_size=4)
    committed = threading.Event()
    after_commit: list[int] = []

    def commit(ready: list[int]) -> set[int]:
        committed.set()
        return set(ready)

    def meanwhile() -> None:
        if committed.is_set():
            after_commit.append(len(smtp_server.messages))

    outcome = channel.deliver_group(
        [_message(n, f"customer{n}@example.com") for n in range(1, 5)],
        commit,
        meanwhile=meanwhile,
    )
    channel.close()

    assert outcome == dict.fromkeys(range(1, 5), "")
    assert after_commit == []


def test_a_prepared_message_is_delivered_as_written(smtp_server):
    channel = EmailChannel(group_size=4)
    prepared = [channel.prepare(_message(n, f"customer{n}@example.com")) for n in (1, 2)]

    outcome = channel.deliver_group(prepared, lambda ready: set(ready))
    channel.close()

    assert outcome == {1: "", 2: ""}
    received = {to[0]: message for to, message in smtp_server.messages}
    assert received["customer2@example.com"]["Message-ID"] == "<m2@crm.local>"
    assert received["customer2@example.com"]["From"] == "Shop <news@shop.example>"
    assert received["customer2@example.com"].get_content_type() == "multipart/alternative"


def test_a_refused_recipient_fails_alone_in_its_group(smtp_server):
    smtp_server.refusing = {"customer2@example.com"}
    channel = EmailChannel(group_size=4)
    committed: list[int] = []

    def commit(ready: list[int]) -> set[int]:
        committed.extend(ready)
        return set(ready)

    outcome = channel.deliver_group(
        [_message(n, f"customer{n}@example.com") for n in range(1, 4)], commit
    )
    channel.close()

    assert outcome[1] == outcome[3] == ""
    assert "550 No such mailbox" in outcome[2]
    assert committed == [1, 3]
    assert smtp_server.delivered_to() == ["customer1@example.com", "customer3@example.com"]
