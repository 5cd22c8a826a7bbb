"""The marketing dashboard's segment growth card: the largest segments' sizes week by week.
Registered with crm.dashboard from SegmentsConfig.ready()."""

import datetime as dt

from django.db.models.functions import TruncWeek
from django.http import HttpRequest
from django.utils import timezone

from segments.models import RefreshRun, Segment

GROWTH_SEGMENTS = 5
GROWTH_WEEKS = 12


def segments_growth(*, segments: int = GROWTH_SEGMENTS, weeks: int = GROWTH_WEEKS) -> dict:
    """The sizes of the largest segments at the end of each of the last `weeks` weeks (the
    last refresh of the week, carried forward over weeks without one; this week is the size
    now), and each one's change over the period: two statements."""
    largest = list(Segment.objects.order_by("-member_count", "id")[:segments])
    today = timezone.localdate()
    this_week = today - dt.timedelta(days=today.weekday())
    starts = [this_week - dt.timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]
    since = timezone.make_aware(dt.datetime.combine(starts[0], dt.time.min))
    sizes: dict[tuple[int, dt.date], int] = {}
    if largest:
        rows = (
            RefreshRun.objects.filter(
                segment__in=[segment.pk for segment in largest],
                status=RefreshRun.Status.DONE,
                size__isnull=False,
                created_at__gte=since,
            )
            .annotate(week=TruncWeek("created_at"))
            .order_by("segment_id", "week", "-created_at", "-id")
            .distinct("segment_id", "week")
            .values_list("segment_id", "week", "size")
        )
        for segment_id, week, size in rows:
            day = week.date() if isinstance(week, dt.datetime) else week
            sizes[(segment_id, day)] = size
    lines = []
    for segment in largest:
        values: list[int | None] = []
        known = None
        for start in starts[:-1]:
            known = sizes.get((segment.pk, start), known)
            values.append(known)
        values.append(segment.member_count)
        first = next((v for v in values if v is not None), None)
        change = segment.member_count - first if first is not None else None
        lines.append(
            {
                "segment": segment,
                "values": values,
                "first": first,
                "now": segment.member_count,
                "change": change,
                "change_rate": change / first if first else None,
            }
        )
    return {
        "lines": lines,
        "weeks": weeks,
        "chart": {
            "labels": [start.strftime("%-d %b") for start in starts],
            "series": [{"label": line["segment"].name, "values": line["values"]} for line in lines],
        },
    }


def dashboard_segment_growth(request: HttpRequest) -> dict:
    return segments_growth()
