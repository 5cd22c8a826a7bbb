"""Insights benchmark: the KPI view of a segment and of all customers, and the retention cohorts.

    DATABASE_URL=postgres://.../crm_bench python -m bench.bench_kpi [--tier M|S|XS] [--reps 5]
        [--days 30]

What the pages compute when the figures are not cached yet, timed through the services they
call: for the KPI view `insights.services.kpi_snapshot_compute` (every figure family, the
period and the previous one, the segment, the rest and the total, the twelve months; the
snapshot written) then `insights.selectors.kpi_report` (the rates people read); for the cohort
page `insights.cohorts.cohort_table`. Each against hand-written SQL that gives the same figures,
alternately (A B B A A B ...); the ratio is the median of the paired ratios, with their spread.
The figures must equal the anchor's (every count of every population and period, every month;
every cohort size and cell) or the row is void.

Anchors (the faster form on the warm-up round is used and named in the row; they run with the
settings ours runs with, `insights.kpi.ANALYTIC_SETTINGS`: JIT off):
- KPIs: (1) four statements: customers FULL JOIN the purchases grouped by customer with FILTER
  aggregates for the three periods (purchases and customer families in one scan), the months
  grouped by customer and month first (the month as the bucket among the months' first
  midnights, `width_bucket`, the fastest form found: `to_char` per purchase costs 1.5x), the messages joined to their events grouped by send, and
  the survey answers once with GROUPING SETS for the periods and the months; (2) the same with
  the purchases and customer families as two statements.
- Cohorts: (1) purchases grouped by customer and month, joined to the cohort's customers;
  (2) customers JOIN purchases grouped by cohort and month with count(DISTINCT customer).

Data: the generated tier, plus (not timed, removed at the end) a rule segment "country is ES"
(about 9% of customers: ~90k at M) refreshed with segment_refresh, two sent campaigns (one in
the period, one in the previous period) to every third customer with opens, clicks and
unsubscribes, and NPS/CSAT survey answers from every 40th customer over the past year, so that
every figure family has rows to count.

Targets (the issue's, at tier M = 1M customers / 10M purchases): the KPI view under 2 s, the
cohort table under 3 s; `met` says whether the median is under it (at smaller tiers the same
absolute target is printed, which says little). Also reported: SQL statements per computation
(they must not grow with the data), peak memory, and the 1-minute load average at start and end.
Writes bench/results/kpi.json.
"""

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
os.environ.setdefault("AXES_ENABLED", "false")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.generator import ensure_dataset  # noqa: E402
from campaigns.models import Campaign  # noqa: E402
from insights.cohorts import cohort_table  # noqa: E402
from insights.kpi import ANALYTIC_SETTINGS, Period, _month_keys  # noqa: E402
from insights.models import SURVEY_EVENT, KpiSnapshot  # noqa: E402
from insights.selectors import kpi_report  # noqa: E402
from insights.services import kpi_snapshot_compute  # noqa: E402
from segments.models import Membership, Segment  # noqa: E402
from segments.services import segment_refresh  # noqa: E402

TIERS = {"XS": (2_000, 40_000), "S": (100_000, 2_000_000), "M": (1_000_000, 10_000_000)}
RESULTS = Path(__file__).resolve().parent / "results"
KPI_TARGET_S = 2.0
COHORT_TARGET_S = 3.0
PREFIX = "bench-kpi"
SEGMENT_RULE = {"field": "country", "op": "eq", "value": "ES"}

# ---- the hand-written anchors ------------------------------------------------------------------

_MEMBER_JOIN = (
    "LEFT JOIN segments_membership m ON m.segment_id = %(segment)s AND m.customer_id = {key}"
)
_PER_CUSTOMER = """
    SELECT p.customer_id,
           count(*) FILTER (WHERE p.purchased_at >= %(s2)s) AS n2,
           count(*) FILTER (WHERE p.purchased_at >= %(s1)s AND p.purchased_at < %(s2)s) AS n1,
           count(*) FILTER (WHERE p.purchased_at < %(s1)s) AS n0,
           sum(p.amount) FILTER (WHERE p.purchased_at >= %(s2)s) AS r2,
           sum(p.amount) FILTER (WHERE p.purchased_at >= %(s1)s AND p.purchased_at < %(s2)s) AS r1
    FROM customers_purchase p
    WHERE p.purchased_at >= %(s0)s AND p.purchased_at < %(e2)s
    GROUP BY p.customer_id
"""
_PURCHASE_AGGREGATES = """
       count(*) FILTER (WHERE pc.n2 > 0), count(*) FILTER (WHERE pc.n1 > 0),
       count(*) FILTER (WHERE pc.n2 > 1), count(*) FILTER (WHERE pc.n1 > 1),
       count(*) FILTER (WHERE pc.n2 > 0 AND pc.n1 > 0),
       count(*) FILTER (WHERE pc.n1 > 0 AND pc.n0 > 0), count(*) FILTER (WHERE pc.n0 > 0),
       coalesce(sum(pc.n2), 0), coalesce(sum(pc.n1), 0),
       coalesce(sum(pc.r2), 0), coalesce(sum(pc.r1), 0)
"""
PURCHASE_KEYS = (
    ("current", "active"), ("previous", "active"), ("current", "repeat"),
    ("previous", "repeat"), ("current", "retained"), ("previous", "retained"),
    ("previous", "active_before"), ("current", "orders"), ("previous", "orders"), ("current", "revenue"),
    ("previous", "revenue"),
)  # fmt: skip
_CUSTOMER_AGGREGATES = """
       count(c.id) FILTER (WHERE c.erased_at IS NULL),
       count(*) FILTER (WHERE c.erased_at IS NULL
                          AND c.first_purchase_at >= %(s2)s AND c.first_purchase_at < %(e2)s),
       count(*) FILTER (WHERE c.erased_at IS NULL
                          AND c.first_purchase_at >= %(s1)s AND c.first_purchase_at < %(s2)s),
       count(s.lifetime_value) FILTER (WHERE c.erased_at IS NULL),
       coalesce(sum(s.lifetime_value) FILTER (WHERE c.erased_at IS NULL), 0),
       coalesce(sum(c.lifetime_value) FILTER (WHERE c.erased_at IS NULL), 0)
"""
CUSTOMER_KEYS = (
    ("current", "customers"), ("current", "new"), ("previous", "new"),
    ("current", "predicted_n"), ("current", "predicted_sum"), ("current", "historical_sum"),
)  # fmt: skip

KPI_PURCHASES_AND_CUSTOMERS = (
    "WITH pc AS (" + _PER_CUSTOMER + ")\n"
    "SELECT {in_segment},"
    + _CUSTOMER_AGGREGATES
    + ","
    + _PURCHASE_AGGREGATES
    + """
FROM customers_customer c
FULL JOIN pc ON pc.customer_id = c.id
LEFT JOIN segments_customerscore s ON s.customer_id = c.id
{member_join}
GROUP BY 1
"""
)
KPI_PURCHASES = (
    "WITH pc AS (" + _PER_CUSTOMER + ")\n"
    "SELECT {in_segment}, " + _PURCHASE_AGGREGATES + "FROM pc\n{member_join}\nGROUP BY 1"
)
KPI_CUSTOMERS = (
    "SELECT {in_segment},"
    + _CUSTOMER_AGGREGATES
    + """
FROM customers_customer c
LEFT JOIN segments_customerscore s ON s.customer_id = c.id
{member_join}
WHERE c.erased_at IS NULL
GROUP BY 1
"""
)
KPI_MONTHS = """
SELECT pm.month, {in_segment}, count(*), sum(pm.n), sum(pm.r)
FROM (SELECT p.customer_id, width_bucket(p.purchased_at, %(month_starts)s::timestamptz[]) AS month,
             count(*) AS n, sum(p.amount) AS r
      FROM customers_purchase p
      WHERE p.purchased_at >= %(month_from)s AND p.purchased_at < %(e2)s
      GROUP BY 1, 2) pm
{member_join}
GROUP BY 1, 2
"""
KPI_MESSAGES = """
SELECT {in_segment}, s.sent_at >= %(s2)s, count(*),
       count(*) FILTER (WHERE ev.opened), count(*) FILTER (WHERE ev.clicked),
       count(*) FILTER (WHERE ev.unsubscribed),
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM customers_purchase p WHERE p.customer_id = s.customer_id
           AND p.purchased_at >= s.sent_at
           AND p.purchased_at < s.sent_at + make_interval(days => c.attribution_days)))
FROM campaigns_send s
JOIN campaigns_campaign c ON c.id = s.campaign_id
LEFT JOIN (
    SELECT e.send_id, bool_or(e.kind IN ('open', 'click')) AS opened,
           bool_or(e.kind = 'click') AS clicked, bool_or(e.kind = 'unsubscribe') AS unsubscribed
    FROM campaigns_messageevent e JOIN campaigns_send s2 ON s2.id = e.send_id
    WHERE s2.status = 'sent' AND s2.sent_at >= %(s1)s AND s2.sent_at < %(e2)s
    GROUP BY e.send_id
) ev ON ev.send_id = s.id
{member_join}
WHERE s.status = 'sent' AND s.sent_at >= %(s1)s AND s.sent_at < %(e2)s
GROUP BY 1, 2
"""
MESSAGE_KEYS = ("sent", "opened", "clicked", "unsubscribed", "converted")
KPI_SATISFACTION = """
WITH a AS (
    SELECT e.customer_id, e.occurred_at, e.properties ->> 'kind' AS kind,
           CASE WHEN e.properties ->> 'score' ~ '^[0-9]{{1,2}}$'
                THEN (e.properties ->> 'score')::int END AS score
    FROM customers_event e
    WHERE e.type = %(survey_event)s AND e.occurred_at >= least(%(s1)s, %(month_from)s)
      AND e.occurred_at < %(e2)s
)
SELECT {in_segment} AS in_segment,
       CASE WHEN a.occurred_at >= %(s2)s THEN 'current'
            WHEN a.occurred_at >= %(s1)s THEN 'previous' END AS period,
       CASE WHEN a.occurred_at >= %(month_from)s
            THEN to_char(date_trunc('month', a.occurred_at AT TIME ZONE %(tz)s), 'YYYY-MM')
       END AS month,
       count(*) FILTER (WHERE kind = 'nps' AND score BETWEEN 0 AND 10),
       count(*) FILTER (WHERE kind = 'nps' AND score BETWEEN 9 AND 10),
       count(*) FILTER (WHERE kind = 'nps' AND score BETWEEN 0 AND 6),
       count(*) FILTER (WHERE kind = 'csat' AND score BETWEEN 1 AND 5),
       count(*) FILTER (WHERE kind = 'csat' AND score BETWEEN 4 AND 5)
FROM a
{member_join}
GROUP BY GROUPING SETS ((in_segment, period), (in_segment, month))
"""
SATISFACTION_KEYS = ("nps_n", "promoters", "detractors", "csat_n", "satisfied")
MONTH_KEYS = ("active", "orders", "revenue")


def _kpi_sql(template: str, *, key: str, with_segment: bool) -> str:
    if with_segment:
        return template.format(
            in_segment="m.customer_id IS NOT NULL", member_join=_MEMBER_JOIN.format(key=key)
        )
    return template.format(in_segment="false", member_join="")


def _kpi_forms(with_segment: bool) -> dict[str, list[tuple[str, str]]]:
    """Each form: (family, SQL) pairs."""

    def sql(template: str, key: str) -> str:
        return _kpi_sql(template, key=key, with_segment=with_segment)

    rest = [
        ("months", sql(KPI_MONTHS, "pm.customer_id")),
        ("messages", sql(KPI_MESSAGES, "s.customer_id")),
        ("satisfaction", sql(KPI_SATISFACTION, "a.customer_id")),
    ]
    return {
        "4 statements: customers FULL JOIN purchases grouped by customer (FILTER), months "
        "by customer, messages, answers (GROUPING SETS)": [
            ("purchases+customers", sql(KPI_PURCHASES_AND_CUSTOMERS, "coalesce(c.id, pc.customer_id)")),
            *rest,
        ],
        "5 statements: purchases grouped by customer (FILTER), customers, months by customer, "
        "messages, answers (GROUPING SETS)": [
            ("purchases", sql(KPI_PURCHASES, "pc.customer_id")),
            ("customers", sql(KPI_CUSTOMERS, "c.id")),
            *rest,
        ],
    }  # fmt: skip


def _value(value):
    if isinstance(value, Decimal):
        return float(round(value, 2))
    return value or 0


def _kpi_anchor(statements: list[tuple[str, str]], params: dict) -> dict:
    """The counts the anchor gives, flat: (population, period, key) and ("month", m, pop, key)."""
    out: dict[tuple, float] = {}

    def put(population: str, which: str, key: str, value) -> None:
        out[(population, which, key)] = _value(value)

    with transaction.atomic(), connection.cursor() as cursor:
        for statement in ANALYTIC_SETTINGS:  # the settings ours runs with (JIT off)
            cursor.execute(statement)
        for family, sql in statements:
            cursor.execute(sql, params)
            for row in cursor.fetchall():
                if family in ("purchases+customers", "customers", "purchases"):
                    population = "segment" if row[0] else "outside"
                    values = list(row[1:])
                    keys = []
                    if family != "purchases":
                        keys += CUSTOMER_KEYS
                    if family != "customers":
                        keys += PURCHASE_KEYS
                    for (which, key), value in zip(keys, values, strict=True):
                        put(population, which, key, value)
                elif family == "months":
                    bucket, in_segment, *values = row
                    month = params["month_keys"][bucket]
                    population = "segment" if in_segment else "outside"
                    for key, value in zip(MONTH_KEYS, values, strict=True):
                        out[("month", month, population, key)] = _value(value)
                elif family == "messages":
                    in_segment, is_current, *values = row
                    population = "segment" if in_segment else "outside"
                    which = "current" if is_current else "previous"
                    for key, value in zip(MESSAGE_KEYS, values, strict=True):
                        put(population, which, key, value)
                elif family == "satisfaction":
                    in_segment, which, month, *values = row
                    population = "segment" if in_segment else "outside"
                    for key, value in zip(SATISFACTION_KEYS, values, strict=True):
                        if month is not None:
                            out[("month", month, population, key)] = _value(value)
                        elif which is not None:
                            put(population, which, key, value)
    return {key: value for key, value in out.items() if value}


def _kpi_ours_flat(counts: dict) -> dict:
    """The same flat counts from a snapshot's figures (zeros left out, as in the anchor's)."""
    out: dict[tuple, float] = {}
    keys = {
        "current": [k for _, k in CUSTOMER_KEYS + PURCHASE_KEYS if _ == "current"]
        + [*MESSAGE_KEYS, *SATISFACTION_KEYS],
        "previous": [k for _, k in CUSTOMER_KEYS + PURCHASE_KEYS if _ == "previous"]
        + [*MESSAGE_KEYS, *SATISFACTION_KEYS],
    }
    for population in ("segment", "outside"):
        for which, names in keys.items():
            for key in names:
                out[(population, which, key)] = counts[population][which][key]
    for month in counts["months"]:
        for population in ("segment", "outside"):
            for key, value in month[population].items():
                out[("month", month["month"], population, key)] = value
    return {key: value for key, value in out.items() if value}


COHORT_JOINED = """
WITH co AS (
    SELECT c.id, date_trunc('month', c.first_purchase_at AT TIME ZONE %(tz)s) AS month
    FROM customers_customer c
    WHERE c.first_purchase_at >= %(from)s AND c.erased_at IS NULL {filter}
)
SELECT to_char(co.month, 'YYYY-MM'), -1, count(*), 0 FROM co GROUP BY 1
UNION ALL
SELECT to_char(co.month, 'YYYY-MM'),
       ((extract(year FROM pm.month) - extract(year FROM co.month)) * 12
        + extract(month FROM pm.month) - extract(month FROM co.month))::int,
       count(*), sum(pm.r)
FROM (SELECT p.customer_id, date_trunc('month', p.purchased_at AT TIME ZONE %(tz)s) AS month,
             sum(p.amount) AS r
      FROM customers_purchase p WHERE p.purchased_at >= %(from)s GROUP BY 1, 2) pm
JOIN co ON co.id = pm.customer_id
GROUP BY 1, 2
"""
COHORT_DISTINCT = """
SELECT to_char(date_trunc('month', c.first_purchase_at AT TIME ZONE %(tz)s), 'YYYY-MM'), -1,
       count(*), 0
FROM customers_customer c
WHERE c.first_purchase_at >= %(from)s AND c.erased_at IS NULL {filter}
GROUP BY 1
UNION ALL
SELECT to_char(co, 'YYYY-MM'),
       ((extract(year FROM pmonth) - extract(year FROM co)) * 12
        + extract(month FROM pmonth) - extract(month FROM co))::int,
       count(DISTINCT id), sum(amount)
FROM (SELECT c.id, date_trunc('month', c.first_purchase_at AT TIME ZONE %(tz)s) AS co,
             date_trunc('month', p.purchased_at AT TIME ZONE %(tz)s) AS pmonth, p.amount
      FROM customers_customer c JOIN customers_purchase p ON p.customer_id = c.id
      WHERE c.first_purchase_at >= %(from)s AND c.erased_at IS NULL {filter}
        AND p.purchased_at >= %(from)s) x
GROUP BY 1, 2
"""
_SEGMENT_FILTER = (
    "AND EXISTS (SELECT 1 FROM segments_membership m"
    " WHERE m.segment_id = %(segment)s AND m.customer_id = c.id)"
)


def _cohort_forms(with_segment: bool) -> dict[str, list[str]]:
    condition = _SEGMENT_FILTER if with_segment else ""
    return {
        "purchases grouped by customer and month, JOIN the cohort's customers": [
            COHORT_JOINED.format(filter=condition)
        ],
        "customers JOIN purchases grouped by cohort and month, count(DISTINCT)": [
            COHORT_DISTINCT.format(filter=condition)
        ],
    }


def _cohort_anchor(statements: list[str], params: dict) -> dict:
    out = {}
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in ANALYTIC_SETTINGS:
            cursor.execute(statement)
        for sql in statements:
            cursor.execute(sql, params)
            for cohort, offset, customers, revenue in cursor.fetchall():
                out[(cohort, offset)] = (customers, _value(revenue))
    return out


def _cohort_ours_flat(table: dict) -> dict:
    out = {}
    for row in table["rows"]:
        if row["size"]:
            out[(row["cohort"], -1)] = (row["size"], 0)
        for cell in row["cells"]:
            if cell["active"]:
                out[(row["cohort"], cell["offset"])] = (cell["active"], cell["revenue"])
    return out


# ---- the scenario (not timed) ------------------------------------------------------------------


def _sql(statement: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def scenario_remove() -> None:
    ids = list(Campaign.objects.filter(name__startswith=PREFIX).values_list("pk", flat=True))
    if ids:
        _sql(
            "DELETE FROM campaigns_messageevent WHERE send_id IN"
            " (SELECT id FROM campaigns_send WHERE campaign_id = ANY(%s))",
            [ids],
        )
        _sql("DELETE FROM campaigns_send WHERE campaign_id = ANY(%s)", [ids])
        Campaign.objects.filter(pk__in=ids).delete()
    _sql(
        "DELETE FROM customers_event WHERE type = %s AND properties ->> 'bench' = %s",
        [SURVEY_EVENT, PREFIX],
    )
    Segment.objects.filter(slug__startswith=PREFIX).delete()  # its snapshots go with it


def scenario_create(period: Period, now: dt.datetime) -> Segment:
    scenario_remove()
    segment, _ = Segment.objects.update_or_create(
        slug=f"{PREFIX}-es",
        defaults={"name": f"{PREFIX} ES", "kind": Segment.Kind.RULE, "rule": SEGMENT_RULE},
    )
    segment_refresh(segment=segment, now=now)
    end_noon = timezone.make_aware(dt.datetime.combine(period.end, dt.time(12)))
    for name, sent_at in (
        (f"{PREFIX} current", end_noon - dt.timedelta(days=max(1, period.days // 3))),
        (f"{PREFIX} previous", end_noon - dt.timedelta(days=period.days + period.days // 3)),
    ):
        campaign = Campaign.objects.create(
            name=name, status=Campaign.Status.SENT, consent_purpose_id="email_marketing"
        )
        _sql(
            "INSERT INTO campaigns_send (campaign_id, customer_id, occurrence, is_holdout, status,"
            " reason, created_at, sent_at, attempts, provider_message_id)"
            " SELECT %s, c.id, 0, false, 'sent', '', %s, %s, 1, ''"
            " FROM customers_customer c WHERE c.id %% 3 = 0",
            [campaign.pk, sent_at, sent_at],
        )
        for kind, modulo in (("open", 5), ("click", 20), ("unsubscribe", 150)):
            _sql(
                "INSERT INTO campaigns_messageevent (send_id, kind, at, url, detail)"
                " SELECT s.id, %s, s.sent_at + interval '1 hour', '', ''"
                " FROM campaigns_send s WHERE s.campaign_id = %s AND s.customer_id %% %s = 0",
                [kind, campaign.pk, modulo],
            )
    _sql(
        "INSERT INTO customers_event (customer_id, type, occurred_at, properties)"
        " SELECT c.id, %s, %s - make_interval(days => (c.id / 40 %% 360)::int),"
        " jsonb_build_object('bench', %s,"
        "   'kind', CASE WHEN c.id %% 80 = 0 THEN 'nps' ELSE 'csat' END,"
        "   'score', CASE WHEN c.id %% 80 = 0 THEN c.id / 80 %% 11 ELSE c.id / 40 %% 5 + 1 END)"
        " FROM customers_customer c WHERE c.id %% 40 = 0",
        [SURVEY_EVENT, end_noon, PREFIX],
    )
    for table in ("campaigns_send", "campaigns_messageevent", "customers_event",
                  "segments_membership"):  # fmt: skip
        _sql(f"ANALYZE {table}")
    return segment


# ---- measuring ---------------------------------------------------------------------------------


def _timed(fn: Callable) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _statements(fn: Callable) -> int:
    issued = [0]

    def counted(execute, sql, params, many, context):
        issued[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counted):
        fn()
    return issued[0]


def measure(
    *,
    name: str,
    tier: str,
    reps: int,
    ours: Callable[[], object],
    ours_flat: Callable[[object], dict],
    forms: dict[str, list],
    anchor: Callable[[list, dict], dict],
    params: dict,
    target: float,
) -> dict:
    # Warm-up: ours once and every anchor form once; the faster form is the anchor.
    statements = _statements(ours)
    warm = {}
    for form_name, form in forms.items():
        warm[form_name] = _timed(lambda f=form: anchor(f, params))
    anchor_name = min(warm, key=lambda n: warm[n][0])
    form = forms[anchor_name]
    for form_name, (_, got) in warm.items():
        if got != warm[anchor_name][1]:
            raise SystemExit(f"VOID: {name}: the anchor forms disagree ({form_name})")
    ours_t, anchor_t = [], []
    expected = answer = None
    for rep in range(reps):
        order = (True, False) if rep % 2 == 0 else (False, True)  # A B, B A, A B, ...
        for anchor_first in order:
            if anchor_first:
                seconds, expected = _timed(lambda: anchor(form, params))
                anchor_t.append(seconds)
            else:
                seconds, result = _timed(ours)
                ours_t.append(seconds)
                answer = ours_flat(result)
        if answer != expected:
            differ = sorted(
                (k, answer.get(k), expected.get(k))
                for k in set(answer) | set(expected)
                if answer.get(k) != expected.get(k)
            )
            raise SystemExit(f"VOID: {name}: ours and the anchor differ: {differ[:10]}")
    ratios = [o / a for o, a in zip(ours_t, anchor_t, strict=True)]
    median = statistics.median(ours_t)
    return {
        "case": name,
        "tier": tier,
        "ours_s": round(median, 4),
        "anchor": anchor_name,
        "anchor_s": round(statistics.median(anchor_t), 4),
        "ratio": round(statistics.median(ratios), 2),
        "spread": [round(min(ratios), 2), round(max(ratios), 2)],
        "target": f"median < {target:g} s at M",
        "met": median < target,
        "figures_compared": len(expected),
        "sql_statements": statements,
        "warm_up_anchor_forms_s": {n: round(t, 4) for n, (t, _) in warm.items()},
        "ours_runs": [round(t, 4) for t in ours_t],
        "anchor_runs": [round(t, 4) for t in anchor_t],
    }


def run(tier: str, reps: int, seed: int, days: int) -> list[dict]:
    customers, purchases = TIERS[tier]
    ensure_dataset(customers, purchases, seed)
    settings.DEBUG = False
    now = timezone.now()
    today = timezone.localdate()
    period = Period(days=days, end=today - dt.timedelta(days=1))  # the page's default end
    segment = scenario_create(period, now)
    try:
        members = Membership.objects.filter(segment=segment).count()
        s0, _ = period.previous.previous.bounds()
        s1, _ = period.previous.bounds()
        s2, e2 = period.bounds()
        month_keys = _month_keys(period.end)
        month_starts = [
            timezone.make_aware(dt.datetime.fromisoformat(key + "-01")) for key in month_keys
        ]
        rows = []
        for label, seg in ((f"KPI view, segment country ES ({days} d)", segment),
                           (f"KPI view, all customers ({days} d)", None)):  # fmt: skip
            params = {
                "segment": seg.pk if seg else None,
                "s0": s0, "s1": s1, "s2": s2, "e2": e2,
                "month_from": month_starts[0], "month_starts": month_starts[1:],
                "month_keys": month_keys,
                "tz": settings.TIME_ZONE, "survey_event": SURVEY_EVENT,
            }  # fmt: skip

            def ours(seg=seg):
                snapshot = kpi_snapshot_compute(segment=seg, period=period)
                kpi_report(snapshot)
                return snapshot.figures

            rows.append(
                measure(
                    name=label, tier=tier, reps=reps, ours=ours, ours_flat=_kpi_ours_flat,
                    forms=_kpi_forms(seg is not None), anchor=_kpi_anchor, params=params,
                    target=KPI_TARGET_S,
                )
            )  # fmt: skip
        cohort_from = timezone.make_aware(dt.datetime.fromisoformat(_month_keys(today)[0] + "-01"))
        for label, seg in (("cohort table, all customers", None),
                           ("cohort table, segment country ES", segment)):  # fmt: skip
            params = {"tz": settings.TIME_ZONE, "from": cohort_from, "segment": seg and seg.pk}
            rows.append(
                measure(
                    name=label, tier=tier, reps=reps,
                    ours=lambda seg=seg: cohort_table(segment_id=seg and seg.pk, today=today),
                    ours_flat=_cohort_ours_flat, forms=_cohort_forms(seg is not None),
                    anchor=_cohort_anchor, params=params, target=COHORT_TARGET_S,
                )
            )  # fmt: skip
        for row in rows:
            row["segment_members"] = members
    finally:
        KpiSnapshot.objects.filter(segment=None, days=period.days, end=period.end).delete()
        scenario_remove()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for row in rows:
        row["peak_rss_mb"] = round(peak_mb, 1)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", choices=sorted(TIERS), default="M")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, choices=(7, 30, 90, 365), default=30)
    args = parser.parse_args(argv)
    if args.reps < 3:
        parser.error("--reps: at least 3 measured repetitions")
    load_start = os.getloadavg()[0]
    rows = run(args.tier, args.reps, args.seed, args.days)
    load_end = os.getloadavg()[0]
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    customers, purchases = TIERS[args.tier]
    print(
        f"machine: {os.cpu_count()} cores, {memory:.0f} GiB; {customers:,} customers / "
        f"{purchases:,} purchases; segment of {rows[0]['segment_members']:,} members; "
        f"load average (1 min) {load_start:.2f} at start, {load_end:.2f} at end"
    )
    print("case | tier | ours_s | anchor | anchor_s | ratio (spread) | target | met")
    for r in rows:
        low, high = r["spread"]
        print(
            f"{r['case']} | {r['tier']} | {r['ours_s']:.3f} | {r['anchor']} | "
            f"{r['anchor_s']:.3f} | {r['ratio']} ({low}-{high}) | {r['target']} | "
            f"{'yes' if r['met'] else 'NO'}"
        )
    for r in rows:
        print(
            f"  {r['case']}: {r['figures_compared']} non-zero figures equal; "
            f"{r['sql_statements']} SQL statements; anchor forms on the warm-up "
            f"{r['warm_up_anchor_forms_s']}; peak memory {r['peak_rss_mb']} MB"
        )
    for r in rows:
        r["load_average_1min"] = [round(load_start, 2), round(load_end, 2)]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "kpi.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
