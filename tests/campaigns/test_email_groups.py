"""Email in groups over SMTP, seen from the channel: a real SMTP server on loopback."""

import smtplib
import threading

import pytest
from django.core.mail.message import sanitize_address

from campaigns.channels import EmailChannel, OutgoingMessage, _smtp_path, envelope_address


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


@pytest.mark.parametrize("group_size", [4, 1], ids=["in groups", "one at a time"])
def test_lines_that_start_with_a_dot_arrive_whole(smtp_server, group_size):
    # A line of "." alone would end DATA early; one starting with "." would lose its dot.
    channel = EmailChannel(group_size=group_size)
    message = _message(1, "customer1@example.com")
    message.text = "Prices:\n.\n.99 off\n..and more\nend."
    message.html = "<p>\n.\n.99 off</p>"

    if group_size > 1:
        outcome = channel.deliver_group([message], lambda ready: set(ready))
        assert outcome == {1: ""}
    else:
        channel.deliver(message, lambda: True)
    channel.close()

    ((_to, received),) = smtp_server.messages
    text = received.get_payload()[0].get_payload(decode=True).decode()
    assert text.splitlines() == ["Prices:", ".", ".99 off", "..and more", "end."]
