"""Retention cohorts: customers by the month of their first purchase, and the share of each
cohort still buying (and its revenue) in each following month. One statement.

Filters: a segment's current members, country, acquisition source (Customer.source) and the
channel of the first purchase (the acquisition channel). The first purchase is
Customer.first_purchase_at, kept by customers.services.customer_stats_refresh; the channel is
read from that purchase through the (customer, purchased_at) index.
"""

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from customers.models import Customer, Purchase
from segments.models import Membership

COHORT_SQL = """
WITH cohort AS (
    SELECT c.id, date_trunc('month', c.first_purchase_at AT TIME ZONE %(tz)s) AS month
    FROM {customer} c
    WHERE c.first_purchase_at >= %(from)s AND c.erased_at IS NULL {filters}
), activity AS (
    SELECT p.customer_id, date_trunc('month', p.purchased_at AT TIME ZONE %(tz)s) AS month,
           sum(p.amount) AS revenue
    FROM {purchase} p JOIN cohort ON cohort.id = p.customer_id
    WHERE p.purchased_at >= %(from)s
    GROUP BY 1, 2
)
SELECT to_char(co.month, 'YYYY-MM'), -1, count(*), 0 FROM cohort co GROUP BY 1
UNION ALL
SELECT to_char(co.month, 'YYYY-MM'),
       ((extract(year FROM a.month) - extract(year FROM co.month)) * 12
        + extract(month FROM a.month) - extract(month FROM co.month))::int,
       count(*), coalesce(sum(a.revenue), 0)
FROM cohort co JOIN activity a ON a.customer_id = co.id
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
    start = timezone.make_aware(dt.datetime.fromisoformat(keys[0] + "-01"))
    filters, params = [], {"tz": settings.TIME_ZONE, "from": start}
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
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        result = cursor.fetchall()
    sizes: dict[str, int] = {}
    cells: dict[tuple[str, int], tuple[int, float]] = {}
    for cohort, offset, customers, revenue in result:
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
