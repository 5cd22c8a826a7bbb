"""Reads shared by the pages and the API: the RFM grid, class counts, the latest runs."""

from django.db.models import Count, Sum

from segments.ml.models import CustomerScore, RfmRun
from segments.ml.scoring import RFM_CLASSES


def rfm_grid() -> dict:
    """Recency score (rows, 5 first) by frequency score (columns): customers and revenue per cell,
    each with a heat level 0..9 relative to the busiest cell."""
    cells = {
        (row["r_score"], row["f_score"]): row
        for row in CustomerScore.objects.exclude(r_score=None)
        .values("r_score", "f_score")
        .annotate(customers=Count("pk"), revenue=Sum("rfm_monetary"))
        .order_by()
    }
    top = max((c["customers"] for c in cells.values()), default=0) or 1
    rows = []
    for r in (5, 4, 3, 2, 1):
        row = []
        for f in (1, 2, 3, 4, 5):
            cell = cells.get((r, f), {"customers": 0, "revenue": 0})
            row.append(
                {
                    "r": r,
                    "f": f,
                    "customers": cell["customers"],
                    "revenue": float(cell["revenue"] or 0),
                    "heat": min(9, int(10 * cell["customers"] / top)),
                }
            )
        rows.append({"r": r, "cells": row})
    return {"rows": rows}


def rfm_class_counts() -> list[dict]:
    counts = dict(
        CustomerScore.objects.exclude(rfm_class="")
        .values_list("rfm_class")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return [{"rfm_class": name, "customers": counts.get(name, 0)} for name in RFM_CLASSES]


def rfm_last_run() -> RfmRun | None:
    """The last finished run of the current scores (back-tests keep their figures apart)."""
    return RfmRun.objects.filter(status=RfmRun.Status.DONE, backtest=False).first()
