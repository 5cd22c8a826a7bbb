"""Who may receive a campaign's message: the one rule of the product.

A customer may receive a message sent for a consent purpose over a channel when, in this order
(the first that fails is the reason recorded):

1. their consent for the purpose is granted;
2. neither their email nor their phone is on the suppression list;
3. webhook only (the message carries their data to a third party): they have not opted out of
   data sale (do not sell);
4. email only: they have an email address.

The rule is written once, as SQL conditions over a few facts about the customer (`REFUSALS`),
and `refusal_sql` turns it into one CASE naming the first refusal ('' when there is none). Where
the facts come from is the caller's:

- the audience at launch (campaigns.audience) reads them from the customer row and the consent
  table, through the ORM expression `RefusalReason`;
- the re-check just before a message goes (campaigns.delivery, for a group of messages or one,
  and the webhook channel's check before it posts) reads the address the message is written to
  and the consent rows the statement has just locked.

So the audience, the re-check and the webhook channel cannot disagree on who may receive a
message (tests/campaigns/test_recipients.py walks a table of customers through all three).
"""

from dataclasses import dataclass

from django.db.models import CharField, F, Func, Value

from campaigns.models import Channel
from privacy.models import ConsentState, ConsentStatus, Purpose, Suppression

ALL_CHANNELS = tuple(Channel.values)


@dataclass(frozen=True)
class Refusal:
    """One reason a customer may not receive a message."""

    code: str  # the reason of a send row excluded at launch
    label: str  # how the estimate and the report name it
    at_send: str  # the reason of a send row skipped by the re-check just before sending
    channels: tuple[str, ...]  # the channels it applies to
    # SQL, true when the customer is refused; over the facts named in `Facts`.
    condition: str


@dataclass(frozen=True)
class Facts:
    """SQL for the facts the rule reads, wherever the caller finds them."""

    customer_id: str
    email: str
    email_hash: str
    phone_hash: str
    purpose: str  # a placeholder for the campaign's purpose
    consent: str  # a relation with the customer's (customer_id, purpose_id, state) rows


# Fixed names in the conditions: model tables and choice values, never input.
_NAMES = {
    "consent_state": ConsentState._meta.db_table,
    "suppression": Suppression._meta.db_table,
    "granted": ConsentStatus.GRANTED,
    "withdrawn": ConsentStatus.WITHDRAWN,
    "data_sale": Purpose.DATA_SALE,
    "email_kind": Suppression.Kind.EMAIL,
    "phone_kind": Suppression.Kind.PHONE,
}

REFUSALS: tuple[Refusal, ...] = (
    Refusal(
        code="no_consent",
        label="No consent for the purpose",
        at_send="consent withdrawn before sending",
        channels=ALL_CHANNELS,
        condition=(
            "NOT EXISTS (SELECT 1 FROM {consent} recipient_consent"
            " WHERE recipient_consent.customer_id = {customer_id}"
            " AND recipient_consent.purpose_id = {purpose}"
            " AND recipient_consent.state = '{granted}')"
        ),
    ),
    Refusal(
        code="suppressed",
        label="On the suppression list",
        at_send="on the suppression list",
        channels=ALL_CHANNELS,
        # Two EXISTS of one kind each: PostgreSQL probes the index for a few customers and
        # hashes the list once for many (it plans both and picks by the number of rows).
        condition=(
            "(EXISTS (SELECT 1 FROM {suppression} suppressed_email"
            " WHERE suppressed_email.kind = '{email_kind}'"
            " AND suppressed_email.value_hash = {email_hash})"
            " OR EXISTS (SELECT 1 FROM {suppression} suppressed_phone"
            " WHERE suppressed_phone.kind = '{phone_kind}'"
            " AND suppressed_phone.value_hash = {phone_hash}))"
        ),
    ),
    Refusal(
        code="do_not_sell",
        label="Opted out of data sharing (webhook)",
        at_send="opted out of data sharing",
        channels=(Channel.WEBHOOK,),
        condition=(
            "EXISTS (SELECT 1 FROM {consent_state} sale_opt_out"
            " WHERE sale_opt_out.customer_id = {customer_id}"
            " AND sale_opt_out.purpose_id = '{data_sale}'"
            " AND sale_opt_out.state = '{withdrawn}')"
        ),
    ),
    Refusal(
        code="no_address",
        label="No address for the channel",
        at_send="no email address",
        channels=(Channel.EMAIL,),
        condition="COALESCE({email}, '') = ''",
    ),
)
REFUSAL_CODES = tuple(refusal.code for refusal in REFUSALS)


def _literal(text: str) -> str:
    """A fixed reason as an SQL string (the reasons are written above, never input)."""
    if "'" in text or "%" in text or "\\" in text:
        raise ValueError(f"a reason must not contain quotes or %: {text!r}")
    return f"'{text}'"


def refusal_sql(*, channel: str, facts: Facts, wording: str = "code") -> str:
    """SQL naming the first refusal for a message over `channel` ('' when there is none).

    `wording` is "code" (the audience's reason codes) or "at_send" (the re-check's reasons).
    The SQL takes no parameters of its own: the purpose is the caller's placeholder.
    """
    names = {**_NAMES, **vars(facts)}
    whens = [
        f"WHEN {refusal.condition.format(**names)} THEN {_literal(getattr(refusal, wording))}"
        for refusal in REFUSALS
        if channel in refusal.channels
    ]
    return f"(CASE {' '.join(whens)} ELSE '' END)"


class RefusalReason(Func):
    """The first refusal's code for each customer of a queryset ('' when they may receive the
    message): the rule over the customer row and the consent table."""

    output_field = CharField()

    def __init__(self, *, purpose: str, channel: str):
        super().__init__(F("pk"), F("email"), F("email_hash"), F("phone_hash"), Value(purpose))
        self.channel = channel

    def as_sql(self, compiler, connection, **extra_context):
        compiled = [compiler.compile(e) for e in self.get_source_expressions()]
        (pk, _), (email, _), (email_hash, _), (phone_hash, _), (purpose, params) = compiled
        facts = Facts(
            customer_id=pk,
            email=email,
            email_hash=email_hash,
            phone_hash=phone_hash,
            purpose=purpose,
            consent=ConsentState._meta.db_table,
        )
        uses = sum(
            refusal.condition.count("{purpose}")
            for refusal in REFUSALS
            if self.channel in refusal.channels
        )
        return refusal_sql(channel=self.channel, facts=facts), list(params) * uses
