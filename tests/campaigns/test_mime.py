"""The direct writer gives the bytes Django's SMTP backend writes, or declines."""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns import mime
from campaigns.channels import EmailChannel, OutgoingMessage, _message_bytes

BOUNDARY = re.compile(rb"={15}\d{19}==")
DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")


def django_bytes(message: OutgoingMessage) -> bytes:
    return _message_bytes(EmailChannel()._email(message))


def normalised(raw: bytes) -> bytes:
    return DATE.sub(b"\r\nDate: (date)\r\n", BOUNDARY.sub(b"(boundary)", raw))


def outgoing(
    *, subject, text, html, headers, to="anna@example.com", sender="Shop <shop@example.com>"
):
    return OutgoingMessage(
        send_id=1,
        to=to,
        subject=subject,
        text=text,
        html=html,
        from_email=sender,
        message_id="<c1.s1@crm.local>",
        headers=headers,
    )


def direct(message: OutgoingMessage) -> bytes | None:
    return mime.message_bytes(
        subject=message.subject,
        from_email=message.from_email,
        to=message.to,
        text=message.text,
        html=message.html,
        headers={"Message-ID": message.message_id, **message.headers},
    )


CAMPAIGN_HEADERS = {
    "List-Unsubscribe": "<https://crm.example.com/c/u/" + "eyJzIjo0Mn0:1tX" * 8 + "/>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    "X-CRM-Campaign": "12",
    "X-CRM-Variant": "A",
}


def test_a_usual_campaign_message_is_written_directly_and_identically():
    message = outgoing(
        subject="Jürgen's code inside",  # non-ASCII subject: Django encodes it, so: declined
        text="Hallo Jürgen,\n\ndein Code X15 gilt bis Freitag.\n",
        html="<html><body><p>Hallo Jürgen</p></body></html>",
        headers=CAMPAIGN_HEADERS,
    )
    assert direct(message) is None
    message.subject = "Anna, 15% off for you"
    written = direct(message)

    assert written is not None
    assert normalised(written) == normalised(django_bytes(message))
    assert b"Content-Transfer-Encoding: 8bit" in written  # the text part is UTF-8


def test_a_message_without_html_or_text_goes_through_django():
    assert direct(outgoing(subject="Hi", text="Hello", html="", headers=CAMPAIGN_HEADERS)) is None
    assert (
        direct(outgoing(subject="Hi", text="", html="<p>x</p>", headers=CAMPAIGN_HEADERS)) is None
    )


def test_a_line_over_998_bytes_goes_through_django_which_uses_quoted_printable():
    message = outgoing(subject="Hi", text="x" * 999, html="<p>x</p>", headers=CAMPAIGN_HEADERS)
    assert direct(message) is None
    assert b"quoted-printable" in django_bytes(message)


header_text = st.one_of(
    st.text(alphabet=st.characters(codec="ascii", min_codepoint=32), max_size=120),
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",))
        | st.sampled_from(" ;,<>:=-_./"),
        max_size=120,
    ),
)
body_text = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(codec="ascii", min_codepoint=32), max_size=40),
        st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40),
        st.sampled_from(["\n", "\r\n", "\r", ".", "From me", " ", "\u2028", "\x0c", "x" * 1000]),
    ),
    max_size=12,
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    subject=header_text,
    text=body_text,
    html=body_text,
    variant=header_text,
    unsubscribe=st.text(
        alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.:/~", min_size=1, max_size=200
    ),
)
def test_whatever_the_content_the_direct_bytes_equal_djangos_or_it_declines(
    subject, text, html, variant, unsubscribe
):
    headers = {**CAMPAIGN_HEADERS, "X-CRM-Variant": variant, "List-Unsubscribe": f"<{unsubscribe}>"}
    message = outgoing(subject=subject, text=text, html=html, headers=headers)
    written = direct(message)
    if written is None:
        return
    try:
        expected = django_bytes(message)
    except Exception as exc:  # Django refuses it (a newline in a header): so must we
        pytest.fail(f"written directly although Django refuses it: {exc!r}")
    assert normalised(written) == normalised(expected)
