"""The audience snapshot: one INSERT ... SELECT that writes a send row for every targeted customer.

Each targeted customer gets a row: `pending` with a variant, `holdout`, or `excluded` with the
first reason that rules them out (in the order of EXCLUSION_REASONS). The SELECT is built with the
ORM (who may receive a message at all is campaigns.recipients' rule) and run as one statement, so the
database does the work whatever the audience size; nothing is evaluated per customer in Python.

The A/B split and the holdout come from a hash of (campaign id, customer id): random-looking,
reproducible, independent of order and batching, so a triggered campaign that adds recipients one
join at a time splits them exactly as a broadcast would.
"""

import datetime as dt
import hashlib

from django.db import connection, models
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Cast, Concat, StrIndex, Substr

from campaigns.models import Campaign, Send
from campaigns.recipients import REFUSAL_CODES, REFUSALS, RefusalReason
from customers.models import Customer

# The order reasons are given in: an exclusion segment, then who may not receive the message
# (campaigns.recipients), with the frequency cap before a missing address.
EXCLUSION_REASONS = (
    "exclusion_segment",
    *REFUSAL_CODES[: REFUSAL_CODES.index("no_address")],
    "frequency_cap",
    *REFUSAL_CODES[REFUSAL_CODES.index("no_address") :],
)
REASON_LABELS = {
    "not_in_target": "Not in a target segment",
    "exclusion_segment": "In an exclusion segment",
    **{refusal.code: refusal.label for refusal in REFUSALS},
    "frequency_cap": "Over the frequency cap",
}
BUCKETS = 10000


def bucket(campaign_id: int, customer_id: int, salt: str) -> int:
    """The same hash as `HashBucket`, in Python: 0 <= bucket < BUCKETS."""
    digest = hashlib.md5(f"{salt}:{campaign_id}:{customer_id}".encode()).hexdigest()
    return int(digest[:7], 16) % BUCKETS


class HashBucket(models.Func):
    """int(first 7 hex digits of md5(text), 16) % BUCKETS, in SQL."""

    output_field = IntegerField()

    def __init__(self, text, **extra):
        super().__init__(text, **extra)

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"(('x' || substr(md5({sql}), 1, 7))::bit(28)::int %% {BUCKETS})", params

    def as_sql(self, compiler, connection, **extra_context):
        # Portable: add up the seven hex digits through their position in "0123456789abcdef".
        digest = models.functions.MD5(self.source_expressions[0])
        total = None
        for i in range(7):
            digit = StrIndex(Value("0123456789abcdef"), Substr(digest, i + 1, 1)) - 1
            term = digit * Value(16 ** (6 - i))
            total = term if total is None else total + term
        return compiler.compile(models.ExpressionWrapper(total % BUCKETS, IntegerField()))


def _hash_text(campaign_id: int, salt: str):
    return Concat(
        Value(f"{salt}:{campaign_id}:"),
        Cast("pk", models.CharField()),
        output_field=models.CharField(),
    )


def targeted(campaign: Campaign) -> QuerySet[Customer]:
    """Customers in any target segment."""
    from segments.models import Membership

    targets = list(campaign.target_segments.values_list("pk", flat=True))
    return Customer.objects.filter(
        Exists(Membership.objects.filter(customer_id=OuterRef("pk"), segment_id__in=targets))
    )


def reason_expression(campaign: Campaign) -> Case:
    """The first reason a targeted customer is left out, or '' when they are eligible."""
    from segments.models import Membership

    exclusions = list(campaign.exclusion_segments.values_list("pk", flat=True))
    whens = []
    if exclusions:
        whens.append(
            When(
                Exists(
                    Membership.objects.filter(customer_id=OuterRef("pk"), segment_id__in=exclusions)
                ),
                then=Value("exclusion_segment"),
            )
        )
    # Who may receive the message at all (consent, suppression, data sale, an address): the one
    # rule of campaigns.recipients. The frequency cap is applied by classified_sql (a join, not a
    # query per customer), between the refusals before it and the one after it.
    refusal = RefusalReason(purpose=campaign.purpose_code, channel=campaign.channel)
    return Case(*whens, default=refusal, output_field=models.CharField())


def audience_queryset(
    campaign: Campaign, *, now: dt.datetime, customers: QuerySet[Customer] | None = None
) -> QuerySet:
    """(customer, first reason left out but the frequency cap, holdout bucket, variant bucket)."""
    base = customers if customers is not None else targeted(campaign)
    return (
        base.annotate(
            _reason=reason_expression(campaign),
            _hbucket=HashBucket(_hash_text(campaign.pk, "holdout")),
            _vbucket=HashBucket(_hash_text(campaign.pk, "variant")),
            _cid=F("pk"),
        )
        .order_by()
        .values_list("_cid", "_reason", "_hbucket", "_vbucket")
    )


SEND_COLUMNS = (
    "campaign_id",
    "customer_id",
    "occurrence",
    "variant_id",
    "is_holdout",
    "status",
    "reason",
    "created_at",
    "attempts",
    "provider_message_id",
)


def _recent_sql(
    campaign: Campaign, *, now: dt.datetime, customers: QuerySet[Customer] | None
) -> tuple[str, list]:
    """(customer_id, n): each customer's messages that count against the campaign's cap: sent in
    the window or still queued, in other campaigns. One GROUP BY that the snapshot joins once,
    rather than a count per customer."""
    since = now - dt.timedelta(days=campaign.frequency_cap_days)
    recent = Send.objects.filter(
        Q(status=Send.Status.SENT, sent_at__gte=since)
        # A message lost in a hand-over may have arrived: it counts as if sent then.
        | Q(status=Send.Status.UNKNOWN, claimed_at__gte=since)
        | Q(status__in=[Send.Status.PENDING, Send.Status.CLAIMED, Send.Status.HANDING_OVER])
    ).exclude(campaign_id=campaign.pk)
    if customers is not None:
        recent = recent.filter(customer_id__in=customers.values("pk"))
    return (
        recent.order_by()
        .values("customer_id")
        .annotate(n=Count("pk"))
        .values_list("customer_id", "n")
        .query.sql_with_params()
    )


def classified_sql(
    campaign: Campaign,
    *,
    now: dt.datetime,
    customers: QuerySet[Customer] | None = None,
    occurrence: int = 0,
) -> tuple[str, list]:
    """SELECT of the send rows (SEND_COLUMNS) for the campaign's audience, one per customer."""
    inner, params = audience_queryset(
        campaign, now=now, customers=customers
    ).query.sql_with_params()
    params = list(params)
    # OFFSET 0 keeps PostgreSQL from merging the subquery into this SELECT, which would
    # evaluate the reason's EXISTS and IN subplans again for each of its four uses below.
    inner = f"{inner} OFFSET 0"
    source = f"({inner}) q"
    reason = "q._reason"
    if campaign.frequency_cap_count:
        recent, recent_params = _recent_sql(campaign, now=now, customers=customers)
        source += f" LEFT JOIN ({recent}) r ON r.customer_id = q._cid"
        params += recent_params
        earlier = ", ".join(
            f"'{r}'" for r in EXCLUSION_REASONS[: EXCLUSION_REASONS.index("frequency_cap")]
        )
        cap = int(campaign.frequency_cap_count)
        reason = (
            f"(CASE WHEN q._reason IN ({earlier}) THEN q._reason "
            f"WHEN COALESCE(r.n, 0) >= {cap} THEN 'frequency_cap' ELSE q._reason END)"
        )
    cut = int(campaign.holdout_percent * BUCKETS / 100)
    variants = list(campaign.variants.order_by("pk").values_list("pk", "share"))
    total = sum(share for _pk, share in variants) or 1
    whens, cumulative = [], 0
    for pk, share in variants:
        cumulative += share
        whens.append(f"WHEN q._vbucket < {cumulative * BUCKETS // total} THEN {int(pk)}")
    variant_case = (
        f"CASE WHEN {reason} <> '' OR q._hbucket < {cut} THEN NULL {' '.join(whens)} "
        f"ELSE {int(variants[-1][0]) if variants else 'NULL'} END"
    )
    status_case = (
        f"CASE WHEN {reason} <> '' THEN '{Send.Status.EXCLUDED}' "
        f"WHEN q._hbucket < {cut} THEN '{Send.Status.HOLDOUT}' ELSE '{Send.Status.PENDING}' END"
    )
    holdout = f"({reason} = '' AND q._hbucket < {cut})"
    sql = (
        f"SELECT {int(campaign.pk)} AS campaign_id, q._cid AS customer_id, "
        f"{int(occurrence)} AS occurrence, {variant_case} AS variant_id, {holdout} AS is_holdout, "
        f"{status_case} AS status, {reason} AS reason, %s AS created_at, 0 AS attempts, "
        f"'' AS provider_message_id FROM {source}"
    )
    return sql, [connection.ops.adapt_datetimefield_value(now), *params]


def insert_sends(sql: str, params: list) -> int:
    """INSERT INTO send (...) SELECT ...; an existing (campaign, customer) row is kept as is."""
    table = connection.ops.quote_name(Send._meta.db_table)
    cols = ", ".join(connection.ops.quote_name(c) for c in SEND_COLUMNS)
    statement = f"INSERT INTO {table} ({cols}) {sql} ON CONFLICT DO NOTHING"
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def exclusion_counts(campaign: Campaign, *, since: dt.datetime | None = None) -> dict[str, int]:
    """{reason: customers} for the campaign's excluded rows (optionally those created since)."""
    rows = Send.objects.filter(campaign=campaign, status=Send.Status.EXCLUDED)
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    return dict(rows.order_by().values_list("reason").annotate(n=Count("pk")))


def audience_estimate(campaign: Campaign, *, now: dt.datetime) -> dict:
    """The live size of the audience after exclusions, without writing anything (editor)."""
    sql, params = classified_sql(campaign, now=now)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.status, c.reason, COUNT(*) FROM ({sql}) c GROUP BY c.status, c.reason",
            params,
        )
        grouped = cursor.fetchall()
    counts: dict[str, int] = {}
    excluded: dict[str, int] = {}
    for status, reason, n in grouped:
        counts[status] = counts.get(status, 0) + n
        if status == Send.Status.EXCLUDED:
            excluded[reason] = n
    return {
        "targeted": sum(counts.values()),
        "recipients": counts.get(Send.Status.PENDING, 0),
        "holdout": counts.get(Send.Status.HOLDOUT, 0),
        "excluded": excluded,
    }
