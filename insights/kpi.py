"""The KPI figures of a segment, of the customers outside it and of all customers, set-based.

Each figure family is one SQL statement over the whole period, grouped by whether the
customer is a member of the segment (so the segment, the rest and the total come out of the
same scan), never one query per customer:

- purchases: active customers, repeat buyers, retained customers (active in the period and in
  the one before), orders and revenue, for the period, the previous period and the one before
  that (which the previous period's retention needs);
- customers: live customers, new customers (first purchase in the period), predicted lifetime
  value (segments.ml CustomerScore.lifetime_value, BG/NBD x Gamma-Gamma; `predicted_value` is
  the churn model's spend over its short horizon, not a lifetime value) and historical value
  (Customer.lifetime_value: what the customer has spent so far);
- messages: campaign messages sent in the period, and of them opened, clicked, unsubscribed
  and converted (a purchase within the campaign's attribution window after the send);
- satisfaction: survey answers (behaviour events `survey_answer`): NPS promoters and
  detractors, CSAT answers of 4 or 5;
- months: the same purchase and satisfaction counts for each of the twelve months to the
  period's end, for the charts.

Membership is the segment's current members: a segment's KPIs describe the customers it holds
today, over the past period (reconstructing who was a member on each day from the change log
would cost a join against the history per period and describes a group nobody can act on).
Erased customers are no longer counted as customers, but their anonymised purchases still count
in revenue outside the segment and in the total, so revenue adds up to the books.

`kpi_counts` returns raw counts (JSON, kept in KpiSnapshot); `kpi_figures` turns them into
the rates and averages people read, with the numerator and denominator each rate came from.
"""

import datetime as dt
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Campaign, MessageEvent, Send
from customers.models import Customer, Event, Purchase
from insights.models import SURVEY_EVENT
from segments.models import CustomerScore, Membership

PERIOD_DAYS = (7, 30, 90, 365)
DEFAULT_DAYS = 30
MONTHS = 12
POPULATIONS = ("segment", "outside", "all")


@dataclass(frozen=True)
class Period:
    """The `days` days ending on `end` (inclusive), in the site's time zone."""

    days: int
    end: dt.date

    @property
    def start(self) -> dt.date:
        return self.end - dt.timedelta(days=self.days - 1)

    @property
    def previous(self) -> "Period":
        return Period(days=self.days, end=self.end - dt.timedelta(days=self.days))

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        return _midnight(self.start), _midnight(self.end + dt.timedelta(days=1))

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d} to {self.end:%Y-%m-%d}"


def _midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _tables() -> dict[str, str]:
    return {
        "purchase": Purchase._meta.db_table,
        "customer": Customer._meta.db_table,
        "membership": Membership._meta.db_table,
        "score": CustomerScore._meta.db_table,
        "send": Send._meta.db_table,
        "campaign": Campaign._meta.db_table,
        "message_event": MessageEvent._meta.db_table,
        "event": Event._meta.db_table,
    }


# Each statement groups by membership: `m.customer_id IS NOT NULL`. Without a segment the
# join condition `m.segment_id = NULL` matches nothing and every customer is "outside".
_MEMBER = "LEFT JOIN {membership} m ON m.segment_id = %(segment)s AND m.customer_id = {alias}"

PURCHASES_SQL = (
    """
WITH per_customer AS (
    SELECT p.customer_id,
           count(*) FILTER (WHERE p.purchased_at >= %(s2)s) AS n2,
           count(*) FILTER (WHERE p.purchased_at >= %(s1)s AND p.purchased_at < %(s2)s) AS n1,
           count(*) FILTER (WHERE p.purchased_at < %(s1)s) AS n0,
           coalesce(sum(p.amount) FILTER (WHERE p.purchased_at >= %(s2)s), 0) AS r2,
           coalesce(sum(p.amount) FILTER (WHERE p.purchased_at >= %(s1)s
                                          AND p.purchased_at < %(s2)s), 0) AS r1
    FROM {purchase} p
    WHERE p.purchased_at >= %(s0)s AND p.purchased_at < %(e2)s
    GROUP BY p.customer_id
)
SELECT m.customer_id IS NOT NULL AS in_segment,
       count(*) FILTER (WHERE n2 > 0), count(*) FILTER (WHERE n1 > 0),
       count(*) FILTER (WHERE n2 > 1), count(*) FILTER (WHERE n1 > 1),
       count(*) FILTER (WHERE n2 > 0 AND n1 > 0), count(*) FILTER (WHERE n1 > 0 AND n0 > 0),
       count(*) FILTER (WHERE n0 > 0),
       coalesce(sum(n2), 0), coalesce(sum(n1), 0), coalesce(sum(r2), 0), coalesce(sum(r1), 0)
FROM per_customer pc
"""
    + _MEMBER.replace("{alias}", "pc.customer_id")
    + """
GROUP BY 1
"""
)
_PURCHASE_COLUMNS = (
    ("current", "active"), ("previous", "active"),
    ("current", "repeat"), ("previous", "repeat"),
    ("current", "retained"), ("previous", "retained"),
    ("previous", "active_before"),
    ("current", "orders"), ("previous", "orders"),
    ("current", "revenue"), ("previous", "revenue"),
)  # fmt: skip

CUSTOMERS_SQL = (
    """
SELECT m.customer_id IS NOT NULL AS in_segment,
       count(*),
       count(*) FILTER (WHERE c.first_purchase_at >= %(s2)s AND c.first_purchase_at < %(e2)s),
       count(*) FILTER (WHERE c.first_purchase_at >= %(s1)s AND c.first_purchase_at < %(s2)s),
       count(s.lifetime_value), coalesce(sum(s.lifetime_value), 0),
       coalesce(sum(c.lifetime_value), 0)
FROM {customer} c
LEFT JOIN {score} s ON s.customer_id = c.id
"""
    + _MEMBER.replace("{alias}", "c.id")
    + """
WHERE c.erased_at IS NULL
GROUP BY 1
"""
)
_CUSTOMER_COLUMNS = (
    ("current", "customers"), ("current", "new"), ("previous", "new"),
    ("current", "predicted_n"), ("current", "predicted_sum"), ("current", "historical_sum"),
)  # fmt: skip

# The reactions to each message are grouped once (one hash of the period's events by send)
# rather than probed three times per message: at 666k messages the probes cost 26 s.
MESSAGES_SQL = (
    """
WITH reactions AS (
    SELECT e.send_id, bool_or(e.kind IN ('open', 'click')) AS opened,
           bool_or(e.kind = 'click') AS clicked, bool_or(e.kind = 'unsubscribe') AS unsubscribed
    FROM {message_event} e JOIN {send} s ON s.id = e.send_id
    WHERE s.status = 'sent' AND s.sent_at >= %(s1)s AND s.sent_at < %(e2)s
    GROUP BY e.send_id
), sent AS (
    SELECT s.customer_id, s.sent_at >= %(s2)s AS is_current,
           coalesce(r.opened, false) AS opened, coalesce(r.clicked, false) AS clicked,
           coalesce(r.unsubscribed, false) AS unsubscribed,
           EXISTS (SELECT 1 FROM {purchase} p
                   WHERE p.customer_id = s.customer_id AND p.purchased_at >= s.sent_at
                     AND p.purchased_at < s.sent_at + make_interval(days => c.attribution_days)
                  ) AS converted
    FROM {send} s JOIN {campaign} c ON c.id = s.campaign_id
    LEFT JOIN reactions r ON r.send_id = s.id
    WHERE s.status = 'sent' AND s.sent_at >= %(s1)s AND s.sent_at < %(e2)s
)
SELECT m.customer_id IS NOT NULL AS in_segment, is_current,
       count(*), count(*) FILTER (WHERE opened), count(*) FILTER (WHERE clicked),
       count(*) FILTER (WHERE unsubscribed), count(*) FILTER (WHERE converted)
FROM sent
"""
    + _MEMBER.replace("{alias}", "sent.customer_id")
    + """
GROUP BY 1, 2
"""
)
_MESSAGE_COLUMNS = ("sent", "opened", "clicked", "unsubscribed", "converted")

# A survey answer's score, when it is one (events can be posted by anyone with the API).
_ANSWERS = """
    SELECT e.customer_id, e.occurred_at, e.properties ->> 'kind' AS kind,
           CASE WHEN e.properties ->> 'score' ~ '^[0-9]{{1,2}}$'
                THEN (e.properties ->> 'score')::int END AS score
    FROM {event} e
    WHERE e.type = %(survey_event)s AND e.occurred_at >= %(from)s AND e.occurred_at < %(e2)s
"""
_SATISFACTION_COUNTS = """
       count(*) FILTER (WHERE kind = 'nps' AND score BETWEEN 0 AND 10),
       count(*) FILTER (WHERE kind = 'nps' AND score BETWEEN 9 AND 10),
       count(*) FILTER (WHERE kind = 'nps' AND score BETWEEN 0 AND 6),
       count(*) FILTER (WHERE kind = 'csat' AND score BETWEEN 1 AND 5),
       count(*) FILTER (WHERE kind = 'csat' AND score BETWEEN 4 AND 5)
"""
_SATISFACTION_COLUMNS = ("nps_n", "promoters", "detractors", "csat_n", "satisfied")

SATISFACTION_SQL = (
    "WITH answers AS (" + _ANSWERS + ")\n"
    "SELECT m.customer_id IS NOT NULL AS in_segment, a.occurred_at >= %(s2)s,"
    + _SATISFACTION_COUNTS
    + "FROM answers a\n"
    + _MEMBER.replace("{alias}", "a.customer_id")
    + "\nGROUP BY 1, 2"
)

# The month of a row is its bucket among the months' first midnights (computed in Python, in
# the site's time zone like the periods): a comparison per row instead of a time-zone
# conversion and a to_char, and the purchases are grouped by customer and month first, in the
# order of the (customer, purchased_at) index, so counting active customers needs no sort of
# all the year's purchases (which spilled to disk).
_MONTH = "width_bucket({column}, %(month_starts)s::timestamptz[])"

MONTHLY_PURCHASES_SQL = (
    """
SELECT pm.month, m.customer_id IS NOT NULL AS in_segment,
       count(*), coalesce(sum(pm.orders), 0), coalesce(sum(pm.revenue), 0)
FROM (SELECT p.customer_id, """
    + _MONTH.format(column="p.purchased_at")
    + """ AS month,
             count(*) AS orders, sum(p.amount) AS revenue
      FROM {purchase} p
      WHERE p.purchased_at >= %(from)s AND p.purchased_at < %(e2)s
      GROUP BY 1, 2) pm
"""
    + _MEMBER.replace("{alias}", "pm.customer_id")
    + """
GROUP BY 1, 2
"""
)
_MONTHLY_PURCHASE_COLUMNS = ("active", "orders", "revenue")

MONTHLY_SATISFACTION_SQL = (
    "WITH answers AS (" + _ANSWERS + ")\n"
    "SELECT " + _MONTH.format(column="a.occurred_at") + ","
    " m.customer_id IS NOT NULL AS in_segment,"
    + _SATISFACTION_COUNTS
    + "FROM answers a\n"
    + _MEMBER.replace("{alias}", "a.customer_id")
    + "\nGROUP BY 1, 2"
)

COUNT_KEYS = (
    "customers", "new", "active", "repeat", "retained", "active_before", "orders", "revenue",
    "predicted_n", "predicted_sum", "historical_sum",
    *_MESSAGE_COLUMNS, *_SATISFACTION_COLUMNS,
)  # fmt: skip


def _number(value: Any) -> float | int:
    if isinstance(value, Decimal):
        return float(round(value, 2))
    return value or 0


def _empty() -> dict[str, dict[str, Any]]:
    return {
        population: {
            "current": dict.fromkeys(COUNT_KEYS, 0),
            "previous": {**dict.fromkeys(COUNT_KEYS, 0), "customers": None, "predicted_n": None},
        }
        for population in ("segment", "outside")
    }


def _month_keys(end: dt.date) -> list[str]:
    keys = []
    year, month = end.year, end.month
    for _ in range(MONTHS):
        keys.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return list(reversed(keys))


# JIT compiles these statements' expressions for up to seconds that a single run never wins
# back (4.2 s of one statement at 1M customers); as in campaigns.results, it is off for them.
ANALYTIC_SETTINGS = ("SET LOCAL jit = off",)


def analytic_settings_apply() -> None:
    """Inside a transaction: the settings the KPI and cohort statements run with."""
    with connection.cursor() as cursor:
        for statement in ANALYTIC_SETTINGS:
            cursor.execute(statement)


def _run(sql: str, params: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql.format(**_tables()), params)
        return cursor.fetchall()


def kpi_counts(*, segment_id: int | None, period: Period) -> dict[str, Any]:
    """The raw counts of every figure family for the period and the previous one, for the
    segment's members, the customers outside it and all customers; and the twelve months."""
    with transaction.atomic():
        analytic_settings_apply()
        return _kpi_counts(segment_id=segment_id, period=period)


def _kpi_counts(*, segment_id: int | None, period: Period) -> dict[str, Any]:
    previous = period.previous
    s0, _ = previous.previous.bounds()
    s1, _ = previous.bounds()
    s2, e2 = period.bounds()
    first_month = dt.date.fromisoformat(_month_keys(period.end)[0] + "-01")
    params = {
        "segment": segment_id,
        "s0": s0, "s1": s1, "s2": s2, "e2": e2,
        "survey_event": SURVEY_EVENT,
    }  # fmt: skip
    counts = _empty()

    def side(in_segment: bool) -> dict:
        return counts["segment" if in_segment else "outside"]

    for in_segment, *values in _run(PURCHASES_SQL, params):
        for (which, key), value in zip(_PURCHASE_COLUMNS, values, strict=True):
            side(in_segment)[which][key] = _number(value)
    for population in ("segment", "outside"):
        # this period's retention is of the previous period's active customers
        counts[population]["current"]["active_before"] = counts[population]["previous"]["active"]
    for in_segment, *values in _run(CUSTOMERS_SQL, params):
        for (which, key), value in zip(_CUSTOMER_COLUMNS, values, strict=True):
            side(in_segment)[which][key] = _number(value)
    for in_segment, is_current, *values in _run(MESSAGES_SQL, params):
        which = "current" if is_current else "previous"
        side(in_segment)[which].update(zip(_MESSAGE_COLUMNS, map(_number, values), strict=True))
    for in_segment, is_current, *values in _run(SATISFACTION_SQL, {**params, "from": s1}):
        which = "current" if is_current else "previous"
        side(in_segment)[which].update(
            zip(_SATISFACTION_COLUMNS, map(_number, values), strict=True)
        )

    month_keys = _month_keys(period.end)
    months = {key: {"segment": {}, "outside": {}} for key in month_keys}
    # bucket 0 is the first month (rows from its start), bucket i the month starting at the
    # i-th boundary
    month_starts = [_midnight(dt.date.fromisoformat(key + "-01")) for key in month_keys[1:]]
    monthly_params = {**params, "from": _midnight(first_month), "month_starts": month_starts}
    for bucket, in_segment, *values in _run(MONTHLY_PURCHASES_SQL, monthly_params):
        months[month_keys[bucket]]["segment" if in_segment else "outside"].update(
            zip(_MONTHLY_PURCHASE_COLUMNS, map(_number, values), strict=True)
        )
    for bucket, in_segment, *values in _run(MONTHLY_SATISFACTION_SQL, monthly_params):
        months[month_keys[bucket]]["segment" if in_segment else "outside"].update(
            zip(_SATISFACTION_COLUMNS, map(_number, values), strict=True)
        )

    monthly_keys = (*_MONTHLY_PURCHASE_COLUMNS, *_SATISFACTION_COLUMNS)
    for month in months.values():
        for population in ("segment", "outside"):
            month[population] = {k: month[population].get(k, 0) for k in monthly_keys}
        month["all"] = _add(month["segment"], month["outside"])
    counts["all"] = {
        which: _add(counts["segment"][which], counts["outside"][which])
        for which in ("current", "previous")
    }
    counts["months"] = [{"month": key, **months[key]} for key in month_keys]
    counts["has_segment"] = segment_id is not None
    return counts


def _add(a: dict, b: dict) -> dict:
    return {
        key: None if a[key] is None or b[key] is None else _number(a[key] + b[key]) for key in a
    }


def kpi_counts_timed(*, segment_id: int | None, period: Period) -> tuple[dict, int]:
    started = time.monotonic()
    counts = kpi_counts(segment_id=segment_id, period=period)
    return counts, int((time.monotonic() - started) * 1000)


# The figures people read, derived from the counts. A rate carries its numerator and
# denominator, so a comparison can tell whether a difference is beyond noise.
@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str  # count, money, rate, ratio, score
    numerator: str
    denominator: str = ""
    description: str = ""


METRICS: tuple[Metric, ...] = (
    Metric("customers", "Customers", "count", "customers", description="Live customers today"),
    Metric("new_customers", "New customers", "count", "new",
           description="First purchase in the period"),
    Metric("active_customers", "Active customers", "count", "active",
           description="At least one purchase in the period"),
    Metric("repeat_rate", "Repeat-purchase rate", "rate", "repeat", "active",
           description="Active customers with two or more purchases"),
    Metric("retention", "Retention", "rate", "retained", "active_before",
           description="Share of the previous period's active customers still active"),
    Metric("churn", "Churn", "rate", "churned", "active_before",
           description="Share of the previous period's active customers no longer active"),
    Metric("revenue", "Revenue", "money", "revenue"),
    Metric("revenue_per_customer", "Revenue per customer", "money", "revenue", "active",
           description="Revenue per active customer"),
    Metric("average_order_value", "Average order value", "money", "revenue", "orders"),
    Metric("purchase_frequency", "Purchase frequency", "ratio", "orders", "active",
           description="Purchases per active customer"),
    Metric("predicted_value", "Predicted lifetime value", "money", "predicted_sum", "predicted_n",
           description="Mean BG/NBD lifetime value of scored customers (segments.ml)"),
    Metric("messages_sent", "Messages sent", "count", "sent"),
    Metric("open_rate", "Open rate", "rate", "opened", "sent"),
    Metric("click_rate", "Click rate", "rate", "clicked", "sent"),
    Metric("unsubscribe_rate", "Unsubscribe rate", "rate", "unsubscribed", "sent"),
    Metric("conversion_rate", "Campaign conversion", "rate", "converted", "sent",
           description="Messages followed by a purchase within the campaign's attribution window"),
    Metric("nps", "NPS", "score", "promoters", "nps_n",
           description="Promoters minus detractors, in points (-100 to 100)"),
    Metric("csat", "CSAT", "rate", "satisfied", "csat_n",
           description="Share of CSAT answers of 4 or 5"),
)  # fmt: skip
METRIC_KEYS = {m.key: m for m in METRICS}


@dataclass(frozen=True)
class Figure:
    metric: Metric
    value: float | None
    numerator: float | None = None
    denominator: float | None = None
    note: str = ""


def figure(metric: Metric, counts: dict) -> Figure:
    """One figure from one population's counts for one period (None when it has no meaning)."""
    counts = {**counts, "churned": _minus(counts.get("active_before"), counts.get("retained"))}
    if metric.key == "predicted_value":
        if counts.get("predicted_n"):
            return _ratio(metric, counts["predicted_sum"], counts["predicted_n"])
        if counts.get("customers"):
            return Figure(
                metric,
                round(counts["historical_sum"] / counts["customers"], 2),
                counts["historical_sum"],
                counts["customers"],
                note="historical value (no predictions yet)",
            )
        return Figure(metric, None)
    if metric.key == "nps":
        n = counts.get("nps_n") or 0
        if not n:
            return Figure(metric, None, 0, 0)
        score = (counts["promoters"] - counts["detractors"]) * 100 / n
        return Figure(metric, round(score, 1), counts["promoters"] - counts["detractors"], n)
    numerator = counts.get(metric.numerator)
    if not metric.denominator:
        return Figure(metric, numerator)
    return _ratio(metric, numerator, counts.get(metric.denominator))


def _minus(a, b):
    return None if a is None or b is None else a - b


def _ratio(metric: Metric, numerator, denominator) -> Figure:
    if numerator is None or not denominator:
        return Figure(metric, None, numerator, denominator)
    return Figure(metric, numerator / denominator, numerator, denominator)


def kpi_figures(counts: dict) -> list[dict]:
    """Every metric for every population: current and previous value and the change."""
    populations = POPULATIONS if counts.get("has_segment") else ("all",)
    rows = []
    for metric in METRICS:
        row: dict[str, Any] = {"metric": metric}
        for population in populations:
            current = figure(metric, counts[population]["current"])
            previous = figure(metric, counts[population]["previous"])
            change = (
                current.value - previous.value
                if current.value is not None and previous.value is not None
                else None
            )
            row[population] = {"current": current, "previous": previous, "change": change}
        rows.append(row)
    return rows


def kpi_monthly_series(counts: dict, *, population: str) -> dict[str, list]:
    """The monthly chart series of one population: revenue, active customers, AOV and NPS."""
    labels, revenue, active, aov, nps = [], [], [], [], []
    for month in counts["months"]:
        values = month[population]
        labels.append(month["month"])
        revenue.append(values["revenue"])
        active.append(values["active"])
        aov.append(round(values["revenue"] / values["orders"], 2) if values["orders"] else None)
        nps.append(
            round((values["promoters"] - values["detractors"]) * 100 / values["nps_n"], 1)
            if values["nps_n"]
            else None
        )
    return {"labels": labels, "revenue": revenue, "active": active, "aov": aov, "nps": nps}
