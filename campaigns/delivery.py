"""Delivery of one batch of send rows: claim, re-check, render, hand over, record.

Exactly once, and honest: a row is claimed with one UPDATE ... WHERE status = 'pending' (two
workers can never both win it). Just before the message is irrevocably handed over, one
statement re-checks who may receive it and records it as `handing_over` (committed); only the
server's acceptance (its 250 after the final dot, or a provider's message id) records it as sent,
and a refusal as failed. Every such UPDATE also requires the claim's attempt number, so a row the
sweeper gave back after a worker died cannot be recorded twice. A worker that dies with rows
`claimed` has handed nothing over (the sweeper re-queues them); one that dies with rows
`handing_over` may or may not have delivered them: the sweeper makes them `unknown`, never sent
and never sent again unless a marketer asks for it (campaign_resend_unknown).

Who may receive the message (campaigns.recipients: consent, suppression, data-sale opt-out, an
address) is checked again for each message just before it goes, inside the transaction that
records it as being handed over, holding a lock on the customer's consent state: a withdrawal
committed before that check stops the message; one that arrives later waits for that commit.

Over SMTP on PostgreSQL, messages go in groups (CAMPAIGNS_GROUP_SIZE): every message of a group is
written up to the final dot of DATA on its own connection, then one statement re-checks the whole
group and records it as being handed over and commits, then the dots go out for the messages so
recorded and every answer is read, then one statement records each as sent, failed or unknown.
"""

import datetime as dt
import functools
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import make_msgid

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F
from django.utils import timezone

from campaigns.channels import (
    ChannelBackend,
    DeliveryFailed,
    DeliveryUnknown,
    NotOurs,
    OutgoingMessage,
    PreparedEmail,
    Unanswered,
    channel_for,
)
from campaigns.links import MessageLinks
from campaigns.models import Campaign, Promotion, PromotionCode, Send, Variant
from campaigns.recipients import Facts, refusal_sql
from campaigns.rendering import CompiledVariant, RenderFailed
from customers.models import Customer, Product, Purchase
from privacy.models import ConsentState
from privacy.suppression import email_hash, phone_hash

RECOMMENDATIONS = 3
# What a message and its re-check read of the customer (a batch loads only these).
_MESSAGE_CUSTOMER_FIELDS = (
    "first_name",
    "last_name",
    "city",
    "country",
    "language",
    "email",
    "phone",
    "external_id",
    "account__name",
)


@dataclass
class BatchResult:
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    not_ours: int = 0
    unknown: int = 0


def _claim(send_ids: list[int], now: dt.datetime) -> list[Send]:
    """Claim the batch's pending rows in one UPDATE; returns the rows this worker now owns."""
    with transaction.atomic():
        rows = list(
            Send.objects.select_for_update(skip_locked=True)
            .filter(pk__in=send_ids, status=Send.Status.PENDING)
            .order_by("pk")
            .values_list("pk", "customer_id", "variant_id", "attempts")
        )
        if not rows:
            return []
        ids = [pk for pk, *_rest in rows]
        claimed = Send.objects.filter(pk__in=ids, status=Send.Status.PENDING).update(
            status=Send.Status.CLAIMED, claimed_at=now, attempts=F("attempts") + 1
        )
    if claimed == len(rows):
        # Locked from the SELECT to the UPDATE (PostgreSQL): each attempt is one more.
        return [
            Send(pk=pk, customer_id=customer, variant_id=variant, attempts=attempts + 1)
            for pk, customer, variant, attempts in rows
        ]
    # A database without row locks let another worker take some of them in between.
    return list(
        Send.objects.filter(pk__in=ids, status=Send.Status.CLAIMED, claimed_at=now)
        .only("customer_id", "variant_id", "attempts")
        .order_by("pk")
    )


def _finish(send: Send, *, status: str, reason: str = "", **fields) -> bool:
    updated = Send.objects.filter(
        pk=send.pk, status=Send.Status.CLAIMED, attempts=send.attempts
    ).update(status=status, reason=reason[:200], **fields)
    return bool(updated)


def _favourite_categories(customer_ids: list[int]) -> dict[int, str]:
    rows = (
        Purchase.objects.filter(customer_id__in=customer_ids)
        .exclude(category="")
        .values_list("customer_id", "category")
        .annotate(n=Count("pk"))
        .order_by()
    )
    best: dict[int, tuple[int, str]] = {}
    for customer_id, category, n in rows:
        if customer_id not in best or (n, category) > best[customer_id]:
            best[customer_id] = (n, category)
    return {cid: cat for cid, (_n, cat) in best.items()}


def recommendations_for(customer_ids: list[int]) -> dict[int, list[dict]]:
    """Best sellers in each customer's favourite category that they have not bought yet."""
    favourites = _favourite_categories(customer_ids)
    bought: dict[int, set[int]] = defaultdict(set)
    for customer_id, product_id in (
        Purchase.objects.filter(customer_id__in=customer_ids, product__isnull=False)
        .values_list("customer_id", "product_id")
        .distinct()
    ):
        bought[customer_id].add(product_id)
    best_sellers: dict[str, list[Product]] = {}
    for category in set(favourites.values()):
        best_sellers[category] = list(
            Product.objects.filter(category=category)
            .annotate(sold=Count("purchases"))
            .order_by("-sold", "name", "pk")[:20]
        )
    site = settings.CAMPAIGNS_SITE_URL.rstrip("/")
    result: dict[int, list[dict]] = {}
    for customer_id in customer_ids:
        products = best_sellers.get(favourites.get(customer_id, ""), [])
        picks = [p for p in products if p.pk not in bought[customer_id]][:RECOMMENDATIONS]
        result[customer_id] = [
            {
                "name": p.name,
                "category": p.category,
                "price": f"{p.price:.2f}",
                "url": f"{site}/shop/{p.sku}",
            }
            for p in picks
        ]
    return result


def message_context(
    *,
    campaign: Campaign,
    customer: Customer,
    send_id: int | None,
    code: str = "",
    promotion: Promotion | None = None,
    recommendations: list[dict] | None = None,
    links: MessageLinks | None = None,
) -> dict:
    """The sandbox context: plain values only, never model instances."""
    links = links or MessageLinks()
    return {
        "customer": {
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "full_name": customer.full_name,
            "city": customer.city,
            "country": customer.country,
            "language": customer.language,
        },
        "account": {"name": customer.account.name if customer.account_id else ""},
        "campaign": {"name": campaign.name},
        "promotion": {
            "code": code,
            "discount": promotion.discount_display if promotion else "",
            "expires_at": promotion.expires_at.date().isoformat()
            if promotion and promotion.expires_at
            else "",
        },
        "recommendations": recommendations or [],
        "links": {
            "unsubscribe": links.unsubscribe(send_id) if send_id else "",
            "preferences": links.preferences(customer.pk),
            **links.registered(send_id),
        },
    }


def _outgoing(
    *,
    campaign: Campaign,
    send: Send,
    customer: Customer,
    variant: CompiledVariant,
    variant_name: str,
    code: str,
    promotion: Promotion | None,
    recommendations: list[dict] | None,
    from_email: str,
    links: MessageLinks,
) -> OutgoingMessage:
    """Render one recipient's message."""
    context = message_context(
        campaign=campaign,
        customer=customer,
        send_id=send.pk,
        code=code,
        promotion=promotion,
        recommendations=recommendations,
        links=links,
    )
    subject, html, text = variant.render(context)
    unsubscribe = context["links"]["unsubscribe"]
    return OutgoingMessage(
        send_id=send.pk,
        to=customer.email or "",
        subject=subject,
        text=text,
        html=links.track(html, send_id=send.pk),
        from_email=from_email,
        message_id=make_msgid(idstring=f"c{campaign.pk}.s{send.pk}", domain="crm.local"),
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-CRM-Campaign": str(campaign.pk),
            "X-CRM-Variant": variant_name,
        },
        payload={
            "campaign": {"id": campaign.pk, "name": campaign.name},
            "variant": variant_name,
            "customer": {
                "id": customer.pk,
                "external_id": customer.external_id,
                "email": customer.email,
            },  # fmt: skip
            "subject": subject,
            "text": text,
            "promotion_code": code,
            "send_id": send.pk,
        },
    )


@dataclass
class _WrittenGroup:
    """A group's messages, rendered and, for a channel that delivers in groups, written out."""

    gone: list[Send]  # the customer or the variant was deleted since the launch
    messages: list[tuple[Send, Customer, OutgoingMessage]]
    prepared: dict[int, PreparedEmail]
    # Messages that could not be written for their customer (a filter failed on their data),
    # with the reason: failed on their own, the rest of the group goes.
    unwritten: list[tuple[Send, str]] = field(default_factory=list)


@dataclass
class _BatchMessages:
    """Everything a batch's messages are made of, loaded before the first one is written, so
    writing them reads no database."""

    campaign: Campaign
    customers: dict[int, Customer]
    variants: dict[int, Variant]
    compiled: dict[int, CompiledVariant]
    promotion: Promotion | None
    codes: dict[int, str]
    recommendations: dict[int, list[dict]]
    from_email: str
    links: MessageLinks
    channel: ChannelBackend


class _GroupWriter:
    """Renders and writes out one group's messages a few at a time (`advance`), so that the
    work fills the waits of the group before it: while the server answers a command on every
    connection of that group, this group's next messages are written."""

    # The waits of a group: MAIL, RCPT, DATA, the bodies, the hand-over statement, the outcomes.
    PIECES = 6

    def __init__(self, batch: _BatchMessages, sends: list[Send]):
        self.batch = batch
        self.sends = sends
        self.next = 0
        self.advanced = 0
        self.written = _WrittenGroup(gone=[], messages=[], prepared={})
        self.error: Exception | None = None

    def advance(self) -> None:
        """Write the next few messages. It never raises: it runs in the middle of another
        group's delivery; a failure is raised by `finish`, when this group's turn comes."""
        self.advanced += 1
        upto = -(-len(self.sends) * self.advanced // self.PIECES)
        if self.error is not None or upto <= self.next:
            return
        try:
            self._write(self.sends[self.next : upto])
        except Exception as exc:
            self.error = exc
        self.next = upto

    def _write(self, sends: list[Send]) -> None:
        batch = self.batch
        grouped = batch.channel.group_size > 1
        for send in sends:
            customer = batch.customers.get(send.customer_id)
            variant = batch.compiled.get(send.variant_id)
            if customer is None or variant is None:
                self.written.gone.append(send)
                continue
            try:
                message = _outgoing(
                    campaign=batch.campaign,
                    send=send,
                    customer=customer,
                    variant=variant,
                    variant_name=batch.variants[send.variant_id].name,
                    code=batch.codes.get(customer.pk, ""),
                    promotion=batch.promotion,
                    recommendations=batch.recommendations.get(customer.pk),
                    from_email=batch.from_email,
                    links=batch.links,
                )
            except RenderFailed as exc:
                self.written.unwritten.append((send, str(exc)[:300]))
                continue
            self.written.messages.append((send, customer, message))
            if grouped and customer.email:
                self.written.prepared[send.pk] = batch.channel.prepare(message)

    def finish(self) -> _WrittenGroup:
        """Write the messages still to write; returns the whole group."""
        if self.error is None:
            self._write(self.sends[self.next :])
            self.next = len(self.sends)
        if self.error is not None:
            raise self.error
        return self.written


def _batch_messages(
    campaign: Campaign, sends: list[Send], channel: ChannelBackend
) -> _BatchMessages:
    """Load what the batch's messages need (one query per kind, not per message)."""
    customers = (
        Customer.objects.select_related("account")
        .only(*_MESSAGE_CUSTOMER_FIELDS)
        .in_bulk([s.customer_id for s in sends])
    )
    variants = {v.pk: v for v in Variant.objects.filter(campaign=campaign)}
    compiled = {
        pk: CompiledVariant(subject=v.subject, html=v.html, text=v.text)
        for pk, v in variants.items()
    }
    promotion = Promotion.objects.filter(campaign=campaign).first()
    codes: dict[int, str] = {}
    if promotion is not None:
        if promotion.code_mode == Promotion.CodeMode.SHARED:
            codes = dict.fromkeys(customers, promotion.shared_code)
        else:
            codes = dict(
                PromotionCode.objects.filter(
                    promotion=promotion, customer_id__in=list(customers)
                ).values_list("customer_id", "code")
            )
    recommendations = {}
    if any(c.needs_recommendations for c in compiled.values()):
        recommendations = recommendations_for(list(customers))
    return _BatchMessages(
        campaign=campaign,
        customers=customers,
        variants=variants,
        compiled=compiled,
        promotion=promotion,
        codes=codes,
        recommendations=recommendations,
        from_email=campaign.from_email or settings.DEFAULT_FROM_EMAIL,
        links=MessageLinks(),
        channel=channel,
    )


def send_batch(*, campaign_id: int, send_ids: list[int]) -> BatchResult:
    """Deliver the given rows of a campaign that is sending; rows someone else has are left.

    Over SMTP in groups, the next group's messages are rendered and written out while the
    current group waits for the server's answers (see _GroupWriter): the time the server takes
    is spent writing messages instead of waiting.
    """
    result = BatchResult()
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None or campaign.status != Campaign.Status.SENDING:
        return result
    sends = _claim(send_ids, timezone.now())
    if not sends:
        return result
    channel = channel_for(campaign)
    batch = _batch_messages(campaign, sends, channel)
    purpose = campaign.purpose_code
    step = channel.group_size
    groups = [sends[start : start + step] for start in range(0, len(sends), step)]
    channel.open()
    try:
        upcoming = _GroupWriter(batch, groups[0])
        next_check = 50
        for index in range(len(groups)):
            start = index * step
            if start >= next_check:
                next_check = start + 50
                if _campaign_halted(campaign.pk):
                    _release(sends[start:])
                    break
            written = upcoming.finish()
            for send in written.gone:
                _finish(send, status=Send.Status.SKIPPED, reason="customer or variant is gone")
                result.skipped += 1
            for send, reason in written.unwritten:
                _finish(send, status=Send.Status.FAILED, reason=reason)
                result.failed += 1
            if index + 1 < len(groups):
                upcoming = _GroupWriter(batch, groups[index + 1])
            if step > 1:
                outcomes = _deliver_group(
                    channel,
                    written,
                    purpose,
                    campaign.channel,
                    meanwhile=upcoming.advance if index + 1 < len(groups) else None,
                )
            else:
                outcomes = Counter(
                    _deliver_one(channel, send, customer, message, purpose, campaign.channel)
                    for send, customer, message in written.messages
                )
            for outcome, n in outcomes.items():
                setattr(result, outcome, getattr(result, outcome) + n)
    finally:
        channel.close()
    campaign_refresh = Campaign.objects.filter(pk=campaign.pk).first()
    if campaign_refresh is not None and campaign_refresh.status == Campaign.Status.SENDING:
        from campaigns.services import campaign_finish_if_done

        campaign_finish_if_done(campaign=campaign_refresh)
    return result


def _recheck_and_record(
    send: Send, customer: Customer, purpose: str, channel_name: str, message: OutgoingMessage
) -> str | None:
    """Re-check consent and suppression and record the send as being handed over or skipped:
    None when the row is no longer ours, '' when it is recorded as being handed over, else the
    reason it was skipped.
    The statement of a group (below), for a group of one."""
    verdicts = _recheck_and_record_group([(send, customer, message)], purpose, channel_name)
    return verdicts.get(send.pk)


# The re-check of a group of messages in one statement: the consent rows of all of them are
# locked (in customer order, so two workers cannot deadlock) until the statement's transaction
# commits, and campaigns.recipients' rule is evaluated over the address each message is written
# to and the locked consent rows, so a withdrawal committed before the check stops the message
# and one that arrives later waits for the message to be recorded.
_RECHECK_SQL = """
WITH message AS (
    SELECT * FROM unnest(%(sends)s::bigint[], %(attempts)s::integer[], %(customers)s::bigint[],
                         %(emails)s::text[], %(email_hashes)s::text[], %(phone_hashes)s::text[],
                         %(message_ids)s::text[])
        AS m(send_id, attempts, customer_id, email, email_hash, phone_hash, message_id)
), consent AS MATERIALIZED (
    SELECT customer_id, purpose_id, state FROM {consent_state}
    WHERE customer_id = ANY(%(customers)s::bigint[]) AND purpose_id = %(purpose)s
    ORDER BY customer_id, id FOR UPDATE
), verdict AS MATERIALIZED (
    SELECT m.send_id, m.attempts, m.message_id, {refusal} AS reason
    FROM message m
)
"""
# ... then the record: being handed over or skipped, for each send still this worker's (its
# claim's attempt). Returns a row (send id, verdict) for each: '' (recorded as being handed over)
# or the reason it was skipped. Only the server's acceptance makes it sent (_OUTCOMES_SQL).
_RECORD_SQL = """
UPDATE {send} AS s SET
    status = CASE WHEN v.reason = '' THEN '{handing_over}' ELSE '{skipped}' END,
    reason = v.reason,
    claimed_at = CASE WHEN v.reason = '' THEN %(now)s ELSE s.claimed_at END,
    provider_message_id = CASE WHEN v.reason = '' THEN v.message_id ELSE '' END
FROM verdict v
WHERE s.id = v.send_id AND s.status = '{claimed}' AND s.attempts = v.attempts
RETURNING s.id, v.reason
"""


@functools.cache
def _recheck_sql(channel_name: str, *, record: bool) -> str:
    """The re-check for a channel; with `record`, it also records the verdicts (else it only
    returns them, the consent rows staying locked until the caller's transaction ends)."""
    facts = Facts(
        customer_id="m.customer_id",
        email="m.email",
        email_hash="m.email_hash",
        phone_hash="m.phone_hash",
        purpose="%(purpose)s",
        consent="consent",
    )
    refusal = refusal_sql(channel=channel_name, facts=facts, wording="at_send")
    sql = _RECHECK_SQL.format(consent_state=ConsentState._meta.db_table, refusal=refusal)
    if not record:
        return sql + "SELECT send_id, reason FROM verdict"
    return sql + _RECORD_SQL.format(
        send=Send._meta.db_table,
        handing_over=Send.Status.HANDING_OVER,
        skipped=Send.Status.SKIPPED,
        claimed=Send.Status.CLAIMED,
    )


# What came of messages after their hand-over (or of a failure before it), one statement for a
# group: sent (the server's 250 after the final dot, or the provider's message id), failed, or
# unknown (handed over, no answer). Only for a row still this worker's claim (its attempt number):
# being handed over, or unknown if the sweeper got there first (the answer then settles it), or,
# for a failure before the hand-over, claimed.
_OUTCOMES_SQL = """
UPDATE {send} AS s SET
    status = o.status,
    reason = o.reason,
    sent_at = CASE WHEN o.status = '{sent}' THEN %(now)s END,
    provider_message_id = CASE WHEN o.provider_id <> '' THEN o.provider_id
                               ELSE s.provider_message_id END
FROM unnest(%(sends)s::bigint[], %(attempts)s::integer[], %(statuses)s::text[],
            %(reasons)s::text[], %(provider_ids)s::text[])
    AS o(send_id, attempts, status, reason, provider_id)
WHERE s.id = o.send_id AND s.attempts = o.attempts
  AND (s.status IN ('{handing_over}', '{unknown}')
       OR (s.status = '{claimed}' AND o.status = '{failed}'))
"""


@functools.cache
def _outcomes_sql() -> str:
    return _OUTCOMES_SQL.format(
        send=Send._meta.db_table,
        sent=Send.Status.SENT,
        failed=Send.Status.FAILED,
        handing_over=Send.Status.HANDING_OVER,
        unknown=Send.Status.UNKNOWN,
        claimed=Send.Status.CLAIMED,
    )


def _record_outcomes(
    outcomes: list[tuple[Send, str, str, str]],
    *,
    meanwhile: Callable[[], None] | None = None,
) -> None:
    """Record (send, status, reason, provider id) for each message in one UPDATE. With
    `meanwhile` (which must not raise), the statement goes out in pipeline mode and
    `meanwhile()` runs while the database works on it."""
    if not outcomes:
        if meanwhile is not None:
            meanwhile()
        return
    params = {
        "sends": [send.pk for send, *_rest in outcomes],
        "attempts": [send.attempts for send, *_rest in outcomes],
        "statuses": [status for _s, status, _r, _p in outcomes],
        "reasons": [reason[:200] for _s, _st, reason, _p in outcomes],
        "provider_ids": [provider_id[:200] for *_rest, provider_id in outcomes],
        "now": timezone.now(),
    }
    with connection.cursor() as cursor:
        if meanwhile is None:
            cursor.execute(_outcomes_sql(), params)
            return
        with connection.connection.pipeline():
            cursor.execute(_outcomes_sql(), params)
            meanwhile()


def _refusal_before_handover(send: Send, customer: Customer, purpose: str, channel: str) -> str:
    """'' when the customer may still get the message, else the reason (for a channel that
    records only after the receiver answered). Locks the consent rows: call it in a transaction."""
    cursor_sql = _recheck_sql(channel, record=False)
    params = _record_group_params([(send, customer, None)], purpose, channel)
    with connection.cursor() as cursor:
        cursor.execute(cursor_sql, params)
        return dict(cursor.fetchall()).get(send.pk, "")


def _recheck_and_record_group(
    entries: list[tuple[Send, Customer, OutgoingMessage]],
    purpose: str,
    channel_name: str,
    *,
    meanwhile: Callable[[], None] | None = None,
) -> dict[int, str]:
    """_recheck_and_record for several sends in one statement: per send still ours, '' when it
    is recorded as being handed over, else the reason it was skipped.

    With `meanwhile` (which must not raise, like the channel's), the statement goes out in
    pipeline mode and `meanwhile()` runs while the database works on it; this returns only once
    the statement's transaction has committed (the pipeline's sync ends it), so nothing can be
    handed over before that.
    """
    if not entries:
        return {}
    statement = _recheck_sql(channel_name, record=True)
    with connection.cursor() as cursor:
        if meanwhile is None:
            cursor.execute(statement, _record_group_params(entries, purpose, channel_name))
            return dict(cursor.fetchall())
        with connection.connection.pipeline():  # sent now; committed at the block's end
            cursor.execute(statement, _record_group_params(entries, purpose, channel_name))
            meanwhile()
        return dict(cursor.fetchall())


def _record_group_params(
    entries: list[tuple[Send, Customer, OutgoingMessage | None]], purpose: str, channel_name: str
) -> dict:
    """The statement's parameters: each message's send, customer and the address it goes to."""
    return {
        "sends": [send.pk for send, _c, _m in entries],
        "attempts": [send.attempts for send, _c, _m in entries],
        "customers": [customer.pk for _s, customer, _m in entries],
        "emails": [customer.email or "" for _s, customer, _m in entries],
        "email_hashes": [email_hash(customer.email) for _s, customer, _m in entries],
        "phone_hashes": [phone_hash(customer.phone) for _s, customer, _m in entries],
        "message_ids": [message.message_id if message else "" for _s, _c, message in entries],
        "purpose": purpose,
        "now": timezone.now(),
    }


def _deliver_group(
    channel,
    written: _WrittenGroup,
    purpose: str,
    channel_name: str,
    *,
    meanwhile: Callable[[], None] | None = None,
) -> Counter:
    """Hand a group over (see EmailChannel.deliver_group) and record what came of it; counts
    the outcomes as _deliver_one names them.

    One statement re-checks the group and records its messages as being handed over, and
    commits; then the dots go out and every answer is read; then one statement records each
    message as sent (its 250), failed or unknown. A worker killed in between leaves the rows
    being handed over, and the sweeper makes them unknown: never sent, never sent again.
    `meanwhile` runs while the server or the database works on the group (it writes the next
    group), never between the commit and the last answer to a dot."""
    group = written.messages
    by_id = {send.pk: (send, customer, message) for send, customer, message in group}
    addressless = [send.pk for send, customer, _m in group if not customer.email]
    verdicts: dict[int, str] = {}

    def commit(ready: list[int]) -> set[int]:
        entries = [by_id[pk] for pk in [*ready, *addressless]]
        verdicts.update(
            _recheck_and_record_group(entries, purpose, channel_name, meanwhile=meanwhile)
        )
        return {pk for pk, reason in verdicts.items() if reason == ""}

    delivered = channel.deliver_group(
        [
            written.prepared.get(send.pk, message)
            for send, customer, message in group
            if customer.email
        ],
        commit,
        meanwhile=meanwhile,
    )
    outcomes: Counter = Counter()
    records: list[tuple[Send, str, str, str]] = []
    for pk in [*delivered, *addressless]:
        send = by_id[pk][0]
        answer = delivered.get(pk)
        if isinstance(answer, Unanswered):
            records.append((send, Send.Status.UNKNOWN, str(answer), ""))
            outcomes["unknown"] += 1
        elif answer:
            records.append((send, Send.Status.FAILED, answer, ""))
            outcomes["failed"] += 1
        elif answer == "":
            records.append((send, Send.Status.SENT, "", ""))
            outcomes["sent"] += 1
        else:
            outcomes["skipped" if verdicts.get(pk) else "not_ours"] += 1
    _record_outcomes(records, meanwhile=meanwhile)
    return outcomes


def _deliver_one(channel, send, customer, message, purpose: str, channel_name: str) -> str:
    skipped: dict[str, str] = {}
    if not channel.commits_before_handover:
        # This channel records the send only once the receiver has it: check before it goes.
        with transaction.atomic():
            reason = _refusal_before_handover(send, customer, purpose, channel_name)
            if reason:
                _finish(send, status=Send.Status.SKIPPED, reason=reason)
                return "skipped"

    def commit() -> bool:
        # The point of no return, called by the channel. One short transaction, committed
        # before the channel lets the message go: re-check consent and suppression holding the
        # consent row's lock, then record the send as being handed over (or skipped).
        if channel.commits_before_handover:
            reason = _recheck_and_record(send, customer, purpose, channel_name, message)
            if reason:
                skipped["reason"] = reason
            return reason == ""
        # Checked before the handover above, and the receiver has it: record it as sent.
        return _finish(
            send,
            status=Send.Status.SENT,
            sent_at=timezone.now(),
            provider_message_id=message.message_id,
        )

    try:
        provider_id = channel.deliver(message, commit)
    except NotOurs:
        return "skipped" if skipped else "not_ours"
    except DeliveryUnknown as exc:
        _record_outcomes([(send, Send.Status.UNKNOWN, exc.reason, "")])
        return "unknown"
    except DeliveryFailed as exc:
        _record_outcomes([(send, Send.Status.FAILED, exc.reason, "")])
        return "failed"
    if channel.commits_before_handover:
        # Accepted by the server (its 250) or the provider (its message id): now it is sent.
        _record_outcomes([(send, Send.Status.SENT, "", provider_id or "")])
    return "sent"


def _campaign_halted(campaign_id: int) -> bool:
    status = Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).first()
    return status != Campaign.Status.SENDING


def _release(sends: list[Send]) -> None:
    """Give claimed rows back (pause): they wait as pending for resume; cancel marks them."""
    for send in sends:
        Send.objects.filter(pk=send.pk, status=Send.Status.CLAIMED, attempts=send.attempts).update(
            status=Send.Status.PENDING, claimed_at=None
        )
    Send.objects.filter(
        pk__in=[s.pk for s in sends],
        status=Send.Status.PENDING,
        campaign__status__in=[Campaign.Status.CANCELLED, Campaign.Status.STOPPED],
    ).update(status=Send.Status.CANCELLED, reason="campaign cancelled")


def send_progress(*, campaign: Campaign) -> dict[str, int]:
    """Counts by status (holdout and excluded included), for the live sending view."""
    counts = Counter(
        dict(
            Send.objects.filter(campaign=campaign)
            .order_by()
            .values_list("status")
            .annotate(n=Count("pk"))
        )
    )
    total = sum(
        counts[s]
        for s in (
            "pending",
            "claimed",
            "handing_over",
            "sent",
            "failed",
            "unknown",
            "skipped",
            "cancelled",
        )
    )
    done = (
        counts["sent"]
        + counts["failed"]
        + counts["unknown"]
        + counts["skipped"]
        + counts["cancelled"]
    )
    return {
        "recipients": total,
        "sent": counts["sent"],
        "failed": counts["failed"],
        # Lost while being handed over (a worker stopped): may or may not have arrived.
        "unknown": counts["unknown"],
        "skipped": counts["skipped"],
        "cancelled": counts["cancelled"],
        "remaining": counts["pending"] + counts["claimed"] + counts["handing_over"],
        "holdout": counts["holdout"],
        "excluded": counts["excluded"],
        "percent": int(100 * done / total) if total else 100,
    }
