"""Delivery channels: how a rendered message leaves the building.

A channel is opened once per batch (one SMTP connection, one HTTP session) and delivers messages
one by one. `deliver` receives a `commit` callable: the point of no return. The channel calls it
as late as it can, just before the message is irrevocably handed over; `commit` records the send
as sent in the database and returns False when the row is no longer ours (cancelled, or reset by
the sweeper), in which case the channel must not hand the message over.

For SMTP that point is the final "." of the DATA command: the whole message is already on the
wire, the row is committed as sent, then the dot goes out. A worker killed before the commit
leaves a claimed row that the sweeper re-queues and the server never got a complete message; a
worker killed after it leaves a sent row. So a crash can neither lose a message the database
calls sent (short of the microseconds between the commit and one socket write) nor send twice.

Add a channel (SMS, say) by subclassing `ChannelBackend` and listing it in `CHANNELS`.
"""

import hashlib
import hmac
import json
import smtplib
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpEmailBackend


class DeliveryFailed(Exception):
    """The channel refused the message; `reason` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class NotOurs(Exception):
    """The send row was taken back before the point of no return: nothing was handed over."""


@dataclass
class OutgoingMessage:
    send_id: int
    to: str
    subject: str
    text: str
    html: str
    from_email: str
    message_id: str
    headers: dict = field(default_factory=dict)
    payload: dict = field(default_factory=dict)  # for non-email channels


class RateLimiter:
    """At most `per_second` messages per second from this process (0: unlimited)."""

    def __init__(self, per_second: float):
        self.interval = 1.0 / per_second if per_second and per_second > 0 else 0.0
        self.next_at = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if now < self.next_at:
            time.sleep(self.next_at - now)
            now = self.next_at
        self.next_at = max(now, self.next_at) + self.interval


class ChannelBackend:
    """One batch's connection to a channel."""

    # True: `commit` runs before the message is handed over, and re-checks consent there.
    # False: it runs after (the receiver has answered), so consent is checked before delivery.
    commits_before_handover = True

    def open(self) -> None:
        """Connect once for the whole batch."""

    def close(self) -> None:
        """Release the connection."""

    def deliver(self, message: OutgoingMessage, commit: Callable[[], bool]) -> str:
        """Hand the message over; call `commit()` at the point of no return. Returns the
        provider's message id. Raises DeliveryFailed, or NotOurs when commit() said no."""
        raise NotImplementedError


class _CommitBeforeDotSMTP(smtplib.SMTP):
    """smtplib.SMTP whose DATA command runs a hook after the body and before the final dot."""

    before_dot: Callable[[], bool] | None = None

    def _get_socket(self, host, port, timeout):
        # The body and the dot are two writes; without TCP_NODELAY Nagle's algorithm holds the
        # dot back until the server acknowledges the body (a delayed ACK: tens of milliseconds).
        sock = super()._get_socket(host, port, timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def data(self, msg):
        self.putcmd("data")
        code, repl = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, repl)
        if isinstance(msg, str):
            msg = smtplib._fix_eols(msg).encode("ascii")
        q = smtplib._quote_periods(msg)
        if q[-2:] != smtplib.bCRLF:
            q = q + smtplib.bCRLF
        self.send(q)
        hook, self.before_dot = self.before_dot, None
        if hook is not None and not hook():
            # Not ours any more: drop the connection without the dot, so nothing is delivered.
            self.close()
            raise NotOurs()
        self.send(b"." + smtplib.bCRLF)
        code, msg = self.getreply()
        if code != 250:
            raise smtplib.SMTPDataError(code, msg)
        return code, msg


class _CampaignSmtpBackend(SmtpEmailBackend):
    @property
    def connection_class(self):
        return _CommitBeforeDotSMTP


class EmailChannel(ChannelBackend):
    """Django's email backend (SMTP via EMAIL_URL, the console in development)."""

    def __init__(self, *, rate_per_second: float = 0):
        self.rate = RateLimiter(rate_per_second)
        backend = settings.EMAIL_BACKEND
        self.smtp = backend == "django.core.mail.backends.smtp.EmailBackend"
        self.connection = (
            _CampaignSmtpBackend(fail_silently=False)
            if self.smtp
            else get_connection(fail_silently=False)
        )

    def open(self) -> None:
        self.connection.open()

    def close(self) -> None:
        try:
            self.connection.close()
        except Exception:  # a connection dropped on purpose (NotOurs) has nothing to close
            pass

    def deliver(self, message: OutgoingMessage, commit: Callable[[], bool]) -> str:
        self.rate.wait()
        email = EmailMultiAlternatives(
            subject=message.subject,
            body=message.text,
            from_email=message.from_email,
            to=[message.to],
            headers={"Message-ID": message.message_id, **message.headers},
            connection=self.connection,
        )
        if message.html:
            email.attach_alternative(message.html, "text/html")
        if self.smtp:
            if self.connection.connection is None:
                self.connection.open()
            self.connection.connection.before_dot = commit
            try:
                sent = email.send()
            except NotOurs:
                self.connection.connection = None
                raise
            except (smtplib.SMTPException, OSError) as exc:
                self.connection.close()
                raise DeliveryFailed(f"SMTP: {exc}") from exc
            if not sent:
                raise DeliveryFailed("SMTP: the server refused the recipient")
            return message.message_id
        # Local backends (console, memory, file) cannot fail half-way: record, then hand over.
        if not commit():
            raise NotOurs()
        email.send()
        return message.message_id


def webhook_signature(body: bytes, *, secret: str, timestamp: str) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>", hex; the receiver recomputes and compares."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return mac.hexdigest()


class WebhookChannel(ChannelBackend):
    """POSTs one signed JSON document per recipient to the campaign's URL.

    Delivery is at least once: the row is committed as sent after a 2xx answer, and each POST
    carries an Idempotency-Key (the send id) so a receiver can drop the rare repeat.
    """

    commits_before_handover = False

    def __init__(self, *, url: str, secret: str, rate_per_second: float = 0, timeout: float = 10):
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.rate = RateLimiter(rate_per_second)

    def deliver(self, message: OutgoingMessage, commit: Callable[[], bool]) -> str:
        self.rate.wait()
        body = json.dumps(message.payload, sort_keys=True, default=str).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-CRM-Timestamp": timestamp,
            "X-CRM-Signature": webhook_signature(body, secret=self.secret, timestamp=timestamp),
            # The send id, not the message id: a message id is drawn anew on every attempt.
            "Idempotency-Key": f"send-{message.send_id}",
        }
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            raise DeliveryFailed(f"Webhook answered {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise DeliveryFailed(f"Webhook: {type(exc).__name__}") from exc
        if not 200 <= status < 300:
            raise DeliveryFailed(f"Webhook answered {status}")
        if not commit():
            raise NotOurs()
        return message.message_id


def channel_for(campaign) -> ChannelBackend:
    """The backend for a campaign's channel."""
    rate = settings.CAMPAIGNS_RATE_PER_SECOND
    if campaign.channel == "webhook":
        return WebhookChannel(
            url=campaign.webhook_url, secret=settings.CAMPAIGNS_WEBHOOK_SECRET, rate_per_second=rate
        )
    return EmailChannel(rate_per_second=rate)
