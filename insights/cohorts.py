"""Retention cohorts: customers by the month of their first purchase, and the share of each
cohort still buying (and its revenue) in each following month. One statement.

Filters: a segment's current members, country, acquisition source (Customer.source) and the
channel of the first purchase (the acquisition channel). The first purchase is
Customer.first_purchase_at, kept by customers.services.customer_stats_refresh; the channel is
read from that purchase through the (customer, purchased_at) index.
"""

import datetime as dt
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from customers.models import Customer, Purchase
from insights.kpi import analytic_settings_apply
from segments.models import Membership

# A month is a bucket among the months' first midnights (computed in Python in the site's time
# zone), a comparison per row instead of a time-zone conversion and a truncation; each purchase
# row carries its customer's cohort, so the cohorts are joined once.
COHORT_SQL = """
WITH cohort AS MATERIALIZED (
    SELECT c.id, width_bucket(c.first_purchase_at, %(month_starts)s::timestamptz[]) AS month
    FROM {customer} c
    WHERE c.first_purchase_at >= %(from)s AND c.first_purchase_at < %(until)s
      AND c.erased_at IS NULL {filters}
)
SELECT month, -1, count(*), 0 FROM cohort GROUP BY 1
UNION ALL
SELECT cohort_month, month - cohort_month, count(*), coalesce(sum(revenue), 0)
FROM (SELECT co.month AS cohort_month, p.customer_id,
             width_bucket(p.purchased_at, %(month_starts)s::timestamptz[]) AS month,
             sum(p.amount) AS revenue
      FROM cohort co JOIN {purchase} p ON p.customer_id = co.id
      WHERE p.purchased_at >= %(from)s AND p.purchased_at < %(until)s
      GROUP BY 1, 2, 3) activity
GROUP BY 1, 2
"""


def _months_back(today: dt.date, months: int) -> list[str]:
    year, month = today.year, today.month
    keys = []
    for _ in range(months):
        keys.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return list(reversed(keys))


def heat_class(share: float) -> str:
    """A CSS class from heat-0 to heat-10 for a share (the page colours cells by class)."""
    return f"heat-{max(0, min(10, round(share * 10)))}"


def cohort_table(
    *,
    segment_id: int | None = None,
    country: str = "",
    source: str = "",
    channel: str = "",
    months: int = 12,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """The cohorts of the last `months` months: size, and per following month the customers
    still buying, their share of the cohort and their revenue."""
    today = today or timezone.localdate()
    keys = _months_back(today, months)
    starts = [timezone.make_aware(dt.datetime.fromisoformat(key + "-01")) for key in keys]
    this_month = dt.date.fromisoformat(keys[-1] + "-01")
    until = timezone.make_aware(
        dt.datetime.combine((this_month + dt.timedelta(days=31)).replace(day=1), dt.time.min)
    )
    # bucket 0 is the first month (rows from its start), bucket i the month from starts[i]
    filters: list[str] = []
    params: dict[str, Any] = {"from": starts[0], "until": until, "month_starts": starts[1:]}
    if segment_id is not None:
        filters.append(
            f"AND EXISTS (SELECT 1 FROM {Membership._meta.db_table} m"
            " WHERE m.segment_id = %(segment)s AND m.customer_id = c.id)"
        )
        params["segment"] = segment_id
    if country:
        filters.append("AND c.country = %(country)s")
        params["country"] = country.upper()
    if source:
        filters.append("AND c.source = %(source)s")
        params["source"] = source
    if channel:
        filters.append(
            f"AND EXISTS (SELECT 1 FROM {Purchase._meta.db_table} fp WHERE fp.customer_id = c.id"
            " AND fp.purchased_at = c.first_purchase_at AND fp.channel = %(channel)s)"
        )
        params["channel"] = channel
    sql = COHORT_SQL.format(
        customer=Customer._meta.db_table,
        purchase=Purchase._meta.db_table,
        filters=" ".join(filters),
    )
    with transaction.atomic(), connection.cursor() as cursor:
        analytic_settings_apply()
        cursor.execute(sql, params)
        result = cursor.fetchall()
    sizes: dict[str, int] = {}
    cells: dict[tuple[str, int], tuple[int, float]] = {}
    for bucket, offset, customers, revenue in result:
        cohort = keys[bucket]
        if offset < 0:
            sizes[cohort] = customers
        else:
            cells[(cohort, offset)] = (customers, float(round(revenue, 2)))
    rows = []
    for index, cohort in enumerate(keys):
        size = sizes.get(cohort, 0)
        row_cells = []
        for offset in range(months - index):  # the months that have begun
            active, revenue = cells.get((cohort, offset), (0, 0.0))
            share = active / size if size else None
            row_cells.append({
                "offset": offset,
                "active": active,
                "share": share,
                "revenue": revenue,
                "heat": heat_class(share) if share is not None else "heat-none",
            })  # fmt: skip
        rows.append({
            "cohort": cohort,
            "size": size,
            "revenue": round(sum(c["revenue"] for c in row_cells), 2),
            "cells": row_cells,
        })  # fmt: skip
    return {"offsets": list(range(months)), "rows": rows}
