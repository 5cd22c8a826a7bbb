"""A campaign email's bytes, written directly for the shape nearly every one has.

Django's EmailMultiAlternatives builds a tree of email.mime objects and the email package's
generator walks it: about half of the work of delivering a message. A campaign message is almost
always the same shape: plain-ASCII one-line headers, a non-empty text part and an HTML part in
UTF-8 with no line over 998 bytes. For that shape `message_bytes` writes the very bytes Django's
SMTP backend would send (`tests/campaigns/test_mime.py` compares them over generated messages);
for anything else it returns None and the caller goes through Django.
"""

import random
import re
import sys
from email.utils import formatdate

from django.conf import settings
from django.core.mail.message import RFC5322_EMAIL_LINE_LENGTH_LIMIT

CRLF = "\r\n"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# str.splitlines() also breaks at these: Django's long-line test sees them, the generator does not.
_OTHER_BREAKS = frozenset("\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_HEADER_LINE = 78  # the generator's max_line_length (compat32)
_SUBJECT_LINE = 76  # Django passes ASCII subjects through email.header.Header (76 columns)


def boundary() -> str:
    """A MIME boundary drawn the way the email package draws one."""
    return f"{'=' * 15}{random.randrange(sys.maxsize):019d}=="


def _header(name: str, value: str, limit: int = _HEADER_LINE) -> str | None:
    """`Name: value` as the generator writes it, when that is the value unchanged on one line."""
    if (
        not value.isascii()
        or value.strip() != value
        or "  " in value
        or any(c in value for c in "\r\n\t\x0b\x0c")
    ):
        return None
    line = f"{name}: {value}"
    if len(line) <= limit:
        return line + CRLF
    if " " in value or ";" in value or "," in value:
        return None  # a long value with places to fold it at is folded there
    # A long value that cannot be folded goes whole onto a continuation line.
    return f"{name}: {CRLF} {value}{CRLF}"


def _part(subtype: str, text: str) -> str | None:
    """One text part (headers, blank line, body) as Django writes it, or None."""
    if _OTHER_BREAKS.intersection(text):
        return None
    lines = _LINE_BREAK.split(text)
    try:
        if any(len(line.encode("utf-8")) > RFC5322_EMAIL_LINE_LENGTH_LIMIT for line in lines):
            return None  # Django switches to quoted-printable
    except UnicodeEncodeError:  # a lone surrogate
        return None
    encoding = "7bit" if text.isascii() else "8bit"
    body = CRLF.join(lines)  # the generator ends each line with CRLF; the last only if it had one
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}MIME-Version: 1.0{CRLF}'
        f"Content-Transfer-Encoding: {encoding}{CRLF}{CRLF}{body}"
    )


def message_bytes(
    *,
    subject: str,
    from_email: str,
    to: str,
    text: str,
    html: str,
    headers: dict[str, str],
) -> bytes | None:
    """The message Django's SMTP backend would write for EmailMultiAlternatives(subject, text,
    from_email, [to], headers=headers) with `html` attached as text/html; None when the message
    is not of the plain shape this writes (then build it through Django)."""
    if not text or not html or (settings.DEFAULT_CHARSET or "").lower() != "utf-8":
        return None
    if any(name.lower() in ("from", "to", "date", "subject", "cc", "reply-to") for name in headers):
        return None
    if "message-id" not in (name.lower() for name in headers):
        return None
    lines = [
        _header("Subject", subject, _SUBJECT_LINE),
        _header("From", from_email),
        _header("To", to),
        _header("Date", formatdate(localtime=settings.EMAIL_USE_LOCALTIME)),
        *(_header(name, str(value)) for name, value in headers.items()),
    ]
    if None in lines:
        return None
    plain, rich = _part("plain", text), _part("html", html)
    if plain is None or rich is None:
        return None
    mark = boundary()
    if mark in text or mark in html:
        return None
    out = (
        f'Content-Type: multipart/alternative;{CRLF} boundary="{mark}"{CRLF}'
        f"MIME-Version: 1.0{CRLF}{''.join(lines)}{CRLF}"
        f"--{mark}{CRLF}{plain}{CRLF}--{mark}{CRLF}{rich}{CRLF}--{mark}--{CRLF}"
    )
    return out.encode("utf-8")
