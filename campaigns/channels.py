"""Delivery channels: how a rendered message leaves the building.

A channel is opened once per batch (SMTP connections, one HTTP session) and delivers messages
one by one, or a group at a time (`deliver_group`, email over SMTP). `deliver` receives a `commit` callable: the point of no return. The channel calls it
as late as it can, just before the message is irrevocably handed over; `commit` records the send
as sent in the database and returns False when the row is no longer ours (cancelled, or reset by
the sweeper), in which case the channel must not hand the message over.

For SMTP that point is the final "." of the DATA command: the whole message is already on the
wire, the row is committed as sent, then the dot goes out. A worker killed before the commit
leaves a claimed row that the sweeper re-queues and the server never got a complete message; a
worker killed after it leaves a sent row. So a crash can neither lose a message the database
calls sent (short of the microseconds between the commit and the socket writes of the dots) nor
send twice. In a group, the commit covers all its messages and the dots follow it together.

Add a channel (SMS, say) by subclassing `ChannelBackend` and listing it in `CHANNELS`.
"""

import functools
import hashlib
import hmac
import json
import re
import smtplib
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email.generator import BytesGenerator
from email.policy import Compat32
from io import BytesIO

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpEmailBackend
from django.core.mail.message import sanitize_address

from campaigns import mime


class DeliveryFailed(Exception):
    """The channel refused the message; `reason` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class NotOurs(Exception):
    """The send row was taken back before the point of no return: nothing was handed over."""


class DeliveryUnknown(Exception):
    """The message was handed over and no answer came (the connection broke after the final
    dot, a provider's request timed out): it may or may not have arrived; `reason` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Unanswered(str):
    """An outcome of `deliver_group`: the message was handed over and the server's answer never
    came; the text says why. Recorded as unknown, never as sent nor failed."""


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
    # More than 1: the channel has `deliver_group`, which hands over this many messages with one
    # commit for all of them.
    group_size = 1

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
        self.send_body(msg)
        hook, self.before_dot = self.before_dot, None
        if hook is not None and not hook():
            # Not ours any more: drop the connection without the dot, so nothing is delivered.
            self.close()
            raise NotOurs()
        try:
            self.send(b"." + smtplib.bCRLF)
            code, msg = self.getreply()
        except (smtplib.SMTPException, OSError) as exc:
            # The message was handed over: whether the server kept it cannot be known.
            self.close()
            raise DeliveryUnknown(
                f"SMTP: no answer after the message was handed over ({exc})"
            ) from exc
        if code != 250:
            raise smtplib.SMTPDataError(code, msg)
        return code, msg

    def send_body(self, msg: bytes | str) -> None:
        """Write a message after DATA's 354, dot-stuffed, without the final dot."""
        self.send(data_body(msg))


_BARE_EOL = re.compile(r"\r\n|\n|\r")
_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)


def data_body(msg: bytes | str) -> bytes:
    """A message as DATA sends it (RFC 5321 4.5.2): lines ending in CRLF, a line that starts
    with a dot given a second one, ending with CRLF; the final dot is not included."""
    if isinstance(msg, str):
        msg = _BARE_EOL.sub("\r\n", msg).encode("ascii")
    stuffed = _LEADING_DOT.sub(b"..", msg)
    return stuffed if stuffed.endswith(b"\r\n") else stuffed + b"\r\n"


class _CampaignSmtpBackend(SmtpEmailBackend):
    @property
    def connection_class(self):
        return _CommitBeforeDotSMTP


@dataclass
class PreparedEmail:
    """A message written out for SMTP: the envelope and the bytes of DATA."""

    send_id: int
    sender: str = ""
    recipient: str = ""
    body: bytes = b""
    problem: str = ""  # why it cannot go (then it is not sent)


@dataclass
class _GroupSlot:
    """One message of a group on its own SMTP connection."""

    send_id: int
    backend: _CampaignSmtpBackend
    sender: str
    recipient: str
    body: bytes

    @property
    def smtp(self) -> _CommitBeforeDotSMTP:
        return self.backend.connection


def _smtp_drop(backend: _CampaignSmtpBackend) -> None:
    """Close the socket without QUIT: a message whose DATA never ended is discarded."""
    if backend.connection is not None:
        try:
            backend.connection.close()
        except OSError:
            pass
    backend.connection = None


class _ShortHeadersPolicy(Compat32):
    """The policy Django's messages are written with (compat32), with a shortcut for headers
    that fit on one line in plain ASCII: those come out the same without going through
    email.header.Header, which costs more than the rest of writing the message."""

    def fold_binary(self, name, value):
        if (
            isinstance(value, str)
            and value.isascii()
            and len(name) + 2 + len(value) <= (self.max_line_length or 78)
            and value.strip() == value
            and not any(c in value for c in "\r\n\t")
            and "  " not in value
        ):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


_SHORT_HEADERS = _ShortHeadersPolicy()


def _message_bytes(email: EmailMultiAlternatives) -> bytes:
    """The message as Django's SMTP backend writes it (as_bytes with CRLF), faster."""
    message = email.message()
    if message.is_multipart() and message.get_boundary() is None:
        # The generator would draw a boundary and compile a regular expression for it to check
        # the parts do not contain it: a new pattern for every message. A substring test does.
        boundary = mime.boundary()
        parts = [part.get_payload() for part in message.walk() if not part.is_multipart()]
        if all(isinstance(p, str) and boundary not in p for p in parts):
            message.set_boundary(boundary)
    fp = BytesIO()
    generator = BytesGenerator(fp, mangle_from_=False, policy=_SHORT_HEADERS)
    generator.flatten(message, linesep="\r\n")
    return fp.getvalue()


# An ASCII address without a display name whose local part and domain are dot-atoms (labels of
# at most 63 characters): sanitize_address returns it as it is, after parsing it with the email
# package's header parser, which costs more than writing the rest of the envelope.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*"
)


def envelope_address(address: str, encoding: str) -> str:
    """sanitize_address(address, encoding), without parsing plain addresses; the others are
    mostly the campaign's sender, the same for every message."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return address
    return _sanitized(address, encoding)


@functools.lru_cache(maxsize=256)
def _sanitized(address: str, encoding: str) -> str:
    return sanitize_address(address, encoding)


def _smtp_path(address: str) -> str:
    """smtplib.quoteaddr(address), without parsing plain addresses."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return _quoted(address)


@functools.lru_cache(maxsize=256)
def _quoted(address: str) -> str:
    return smtplib.quoteaddr(address)


def _reply_text(reply: bytes) -> str:
    return reply.decode(errors="replace")


class EmailChannel(ChannelBackend):
    """Django's email backend (SMTP via EMAIL_URL, the console in development).

    Over SMTP with `group_size` above 1, messages go in groups, one connection per message of
    the group (kept open from group to group): each message is written up to the final dot of
    DATA, then one commit records the whole group, then the dots go out on the connections of
    the messages recorded as sent and the others are dropped without it. The SMTP commands of a
    step go out on all connections before any reply is read, so the server works on the group's
    messages at once instead of one round trip after another. `prepare` writes a message out
    without touching a connection or the database, so the next group can be written in another
    thread while this one waits for the server and the commit.
    """

    def __init__(self, *, rate_per_second: float = 0, group_size: int = 1):
        self.rate = RateLimiter(rate_per_second)
        backend = settings.EMAIL_BACKEND
        self.smtp = backend == "django.core.mail.backends.smtp.EmailBackend"
        self.connection = (
            _CampaignSmtpBackend(fail_silently=False)
            if self.smtp
            else get_connection(fail_silently=False)
        )
        # Under a rate limit the messages of a group wait on their open connections for the
        # group's last one: keep that to about a tenth of a second (a slow rate: one at a time).
        if rate_per_second and rate_per_second > 0:
            group_size = min(group_size, int(rate_per_second / 10))
        self.group_size = max(1, group_size) if self.smtp else 1
        self.pool: list[_CampaignSmtpBackend] = []

    def open(self) -> None:
        if self.group_size > 1:
            self._pool_backend(0).open()
        else:
            self.connection.open()

    def close(self) -> None:
        for backend in [self.connection, *self.pool]:
            try:
                backend.close()
            except Exception:  # a connection dropped on purpose (NotOurs) has nothing to close
                pass

    def _email(self, message: OutgoingMessage) -> EmailMultiAlternatives:
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
        if not self.smtp:
            # A provider (django-anymail) echoes it in its tracking events.
            email.metadata = {"crm_send": str(message.send_id)}
        return email

    def _pool_backend(self, index: int) -> _CampaignSmtpBackend:
        while len(self.pool) <= index:
            self.pool.append(_CampaignSmtpBackend(fail_silently=False))
        return self.pool[index]

    def prepare(self, message: OutgoingMessage) -> PreparedEmail:
        """Write a message out for `deliver_group` (no connection, no database: any thread)."""
        email = self._email(message)
        encoding = email.encoding or settings.DEFAULT_CHARSET
        recipients = email.recipients()
        if len(recipients) != 1:
            return PreparedEmail(message.send_id, problem="SMTP: the message has no recipient")
        body = mime.message_bytes(
            subject=message.subject,
            from_email=email.from_email,
            to=message.to,
            text=message.text,
            html=message.html,
            headers=email.extra_headers,
        )
        return PreparedEmail(
            send_id=message.send_id,
            sender=envelope_address(email.from_email, encoding),
            recipient=envelope_address(recipients[0], encoding),
            body=body if body is not None else _message_bytes(email),
        )

    def deliver_group(
        self,
        messages: list[OutgoingMessage | PreparedEmail],
        commit: Callable[[list[int]], set[int]],
        *,
        meanwhile: Callable[[], None] | None = None,
    ) -> dict[int, str | None]:
        """Deliver up to `group_size` messages with one commit for all of them.

        `commit(send_ids)` receives the messages whose body is on the wire (it is called once,
        also when that list is empty) and returns the ids recorded as being handed over. Returns,
        per send id: '' when the server accepted the message (its 250 after the final dot), the
        reason when it could not be delivered, an `Unanswered` reason when it was handed over
        and no answer came, or None when it was not handed over because `commit` did not record
        it as being handed over.
        `meanwhile()`, when given, runs while the server works on the commands of a step: after
        the commands went out on every connection, before their replies are read, up to the
        bodies (never after the commit); it must not raise.
        """
        outcome: dict[int, str | None] = {}
        live: list[_GroupSlot] = []
        for index, message in enumerate(messages):
            self.rate.wait()
            prepared = message if isinstance(message, PreparedEmail) else self.prepare(message)
            if prepared.problem:
                outcome[prepared.send_id] = prepared.problem
                continue
            live.append(
                _GroupSlot(
                    send_id=prepared.send_id,
                    backend=self._pool_backend(index),
                    sender=prepared.sender,
                    recipient=prepared.recipient,
                    body=prepared.body,
                )
            )
        try:
            for slot in live:  # as in `deliver`, a server that cannot be reached fails the task
                if slot.backend.connection is None:
                    slot.backend.open()
            step = functools.partial(self._group_step, outcome=outcome, meanwhile=meanwhile)
            live = step(live, self._group_mail, (250,), "sender")
            live = step(live, self._group_rcpt, (250, 251), "recipient")
            live = step(live, lambda s: s.smtp.putcmd("data"), (354,), "")
            live = step(live, lambda s: s.smtp.send_body(s.body), None, "")
            sent = commit([slot.send_id for slot in live])
            ending = []
            for slot in live:
                if slot.send_id in sent:
                    ending.append(slot)
                else:
                    outcome[slot.send_id] = None
                    _smtp_drop(slot.backend)
            live = ending
            dot = b"." + smtplib.bCRLF
            # The dots' replies are read at once, with nothing run before: the rows are
            # committed as sent, and a worker killed with replies unread resets its connections,
            # so a server still reading a dot would drop that message.
            live = self._group_step(
                live, lambda s: s.smtp.send(dot), (250,), "", outcome=outcome, handed_over=True
            )
            for slot in live:
                outcome[slot.send_id] = ""
            live = []
        finally:
            for slot in live:  # an error in commit(): nothing of the group is handed over
                _smtp_drop(slot.backend)
        return outcome

    @staticmethod
    def _group_mail(slot: _GroupSlot) -> None:
        smtp = slot.smtp
        smtp.ehlo_or_helo_if_needed()
        options = f" size={len(slot.body)}" if smtp.does_esmtp and smtp.has_extn("size") else ""
        smtp.putcmd("mail", f"FROM:{_smtp_path(slot.sender)}{options}")

    @staticmethod
    def _group_rcpt(slot: _GroupSlot) -> None:
        slot.smtp.putcmd("rcpt", f"TO:{_smtp_path(slot.recipient)}")

    @staticmethod
    def _group_step(
        live: list[_GroupSlot],
        write: Callable[[_GroupSlot], None],
        expected: tuple[int, ...] | None,
        refused: str,
        *,
        outcome: dict[int, str | None],
        meanwhile: Callable[[], None] | None = None,
        handed_over: bool = False,
    ) -> list[_GroupSlot]:
        """Write one step on every connection, run `meanwhile` while the server works on it,
        then read each reply (unless `expected` is None); a connection that fails or answers
        otherwise fails its message and is dropped. Returns the slots still going.

        With `handed_over` (the final dots), a connection that breaks before its answer leaves
        the message `Unanswered`: the server may have it; only a refusal fails it."""
        broken = Unanswered if handed_over else str
        after = " after the message was handed over" if handed_over else ""
        written: list[_GroupSlot] = []
        for slot in live:
            try:
                write(slot)
                written.append(slot)
            except (smtplib.SMTPException, OSError) as exc:
                outcome[slot.send_id] = broken(f"SMTP: {exc}{after}")
                _smtp_drop(slot.backend)
        if meanwhile is not None and written:
            meanwhile()
        if expected is None:
            return written
        answered: list[_GroupSlot] = []
        for slot in written:
            try:
                code, reply = slot.smtp.getreply()
            except (smtplib.SMTPException, OSError) as exc:
                outcome[slot.send_id] = broken(f"SMTP: {exc}{after}")
                _smtp_drop(slot.backend)
                continue
            if code in expected:
                answered.append(slot)
                continue
            if refused:
                outcome[slot.send_id] = (
                    f"SMTP: the server refused the {refused} ({code} {_reply_text(reply)})"
                )
            else:
                outcome[slot.send_id] = f"SMTP: ({code}, {_reply_text(reply)})"
            _smtp_drop(slot.backend)
        return answered

    def deliver(self, message: OutgoingMessage, commit: Callable[[], bool]) -> str:
        self.rate.wait()
        email = self._email(message)
        if self.smtp:
            if self.connection.connection is None:
                self.connection.open()
            self.connection.connection.before_dot = commit
            try:
                sent = email.send()
            except NotOurs:
                self.connection.connection = None
                raise
            except DeliveryUnknown:
                self.connection.connection = None
                raise
            except (smtplib.SMTPException, OSError) as exc:
                self.connection.close()
                raise DeliveryFailed(f"SMTP: {exc}") from exc
            if not sent:
                raise DeliveryFailed("SMTP: the server refused the recipient")
            return message.message_id
        # A provider's API (django-anymail) or a local backend (console, memory, file): record
        # the hand-over, then hand over; the provider's answer says sent, failed or unknown.
        if not commit():
            raise NotOurs()
        return provider_send(email, fallback_id=message.message_id)


def provider_send(email: EmailMultiAlternatives, *, fallback_id: str) -> str:
    """Send one message through a non-SMTP backend; returns the id the provider gave it (the id
    its tracking events name), or `fallback_id` (the Message-ID header) for a local backend.

    Raises DeliveryFailed when the provider refused the message (a 4xx answer, every recipient
    rejected, a message it cannot send) and DeliveryUnknown when the request went out and no
    clear answer came back (a timeout, a broken connection, a 5xx answer)."""
    try:
        from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused
    except ImportError:  # pragma: no cover - anymail is a dependency
        email.send()
        return fallback_id
    try:
        email.send()
    except AnymailRecipientsRefused as exc:
        raise DeliveryFailed(f"Provider refused the recipient: {_said(exc)}"[:200]) from exc
    except AnymailAPIError as exc:
        status = getattr(exc, "status_code", None)
        if status is not None and 400 <= status < 500:
            raise DeliveryFailed(f"Provider answered {status}: {_said(exc)}"[:200]) from exc
        raise DeliveryUnknown(f"Provider: no clear answer ({_said(exc)})"[:200]) from exc
    except AnymailError as exc:  # refused before any request (an unsupported feature, say)
        raise DeliveryFailed(f"Provider: {_said(exc)}"[:200]) from exc
    status = getattr(email, "anymail_status", None)
    if status is None or status.status is None:
        return fallback_id
    if status.status & {"rejected", "failed", "invalid"}:
        raise DeliveryFailed(f"Provider: the message was {', '.join(sorted(status.status))}")
    return str(status.message_id) if status.message_id not in (None, "") else fallback_id


def _said(exc: Exception) -> str:
    """An exception's message (anymail's str() reads the HTTP response, which may be absent)."""
    try:
        return str(exc)
    except Exception:
        return str(exc.args[0]) if exc.args else type(exc).__name__


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
        if not campaign.webhook_secret:
            raise ImproperlyConfigured(
                f"Campaign {campaign.pk}: the webhook campaign has no signing secret; "
                "rotate its secret to create one."
            )
        return WebhookChannel(
            url=campaign.webhook_url, secret=campaign.webhook_secret, rate_per_second=rate
        )
    return EmailChannel(rate_per_second=rate, group_size=settings.CAMPAIGNS_GROUP_SIZE)
