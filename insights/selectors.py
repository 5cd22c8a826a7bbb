"""Reads for the pages and the API: the KPI table of a snapshot, a comparison of segments."""

from typing import Any

from insights.kpi import METRICS, Figure, figure, kpi_figures, kpi_monthly_series
from insights.models import KpiSnapshot
from insights.stats import difference_interval


def _plain(f: Figure) -> dict[str, Any]:
    return {
        "value": f.value,
        "numerator": f.numerator,
        "denominator": f.denominator,
        **({"note": f.note} if f.note else {}),
    }


def kpi_report(snapshot: KpiSnapshot) -> dict[str, Any]:
    """The figures of a snapshot as plain data: per metric and population, the period's value,
    the previous period's and the change; and the monthly series."""
    counts = snapshot.figures
    populations = ("segment", "outside", "all") if counts.get("has_segment") else ("all",)
    metrics = []
    for row in kpi_figures(counts):
        metric = row["metric"]
        entry: dict[str, Any] = {
            "key": metric.key,
            "label": metric.label,
            "unit": metric.unit,
            "description": metric.description,
        }
        for population in populations:
            cell = row[population]
            entry[population] = {
                "current": _plain(cell["current"]),
                "previous": _plain(cell["previous"]),
                "change": cell["change"],
            }
        metrics.append(entry)
    return {
        "segment": snapshot.segment_id,
        "days": snapshot.days,
        "end": snapshot.end.isoformat(),
        "computed_at": snapshot.computed_at.isoformat(),
        "populations": list(populations),
        "metrics": metrics,
        "months": {p: kpi_monthly_series(counts, population=p) for p in populations},
    }


def segment_comparison(snapshots: list[KpiSnapshot]) -> list[dict[str, Any]]:
    """Each metric for each segment's members, with the difference from the first segment and,
    for rates, its 95% interval (Newcombe, from Wilson intervals) and whether it is beyond noise."""
    rows = []
    first = snapshots[0].figures["segment"]["current"]
    base_figures = {m.key: figure(m, first) for m in METRICS}
    for metric in METRICS:
        base = base_figures[metric.key]
        cells = []
        for index, snapshot in enumerate(snapshots):
            current = figure(metric, snapshot.figures["segment"]["current"])
            cell: dict[str, Any] = {"figure": current, "difference": None, "interval": None}
            if index and current.value is not None and base.value is not None:
                cell["difference"] = current.value - base.value
                if metric.unit == "rate" and current.denominator and base.denominator:
                    interval = difference_interval(
                        int(current.numerator),
                        int(current.denominator),
                        int(base.numerator),
                        int(base.denominator),
                    )
                    if interval is not None:
                        _d, low, high = interval
                        cell["interval"] = (low, high)
                        cell["beyond_noise"] = low > 0 or high < 0
            cells.append(cell)
        rows.append({"metric": metric, "cells": cells})
    return rows
