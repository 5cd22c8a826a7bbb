"""The privacy dashboard's cards: the request queue by status, the deadlines due and overdue,
recent erasures and consent withdrawals. Registered with crm.dashboard from the privacy app."""

import datetime as dt

from django.core.cache import cache
from django.db.models import Count, Q
from django.http import HttpRequest
from django.utils import timezone

from privacy.models import (
    ConsentRecord,
    ConsentStatus,
    DataSubjectRequest,
    ErasureLog,
    RequestStatus,
)

DEADLINES_SHOWN = 8
DUE_SOON_DAYS = 7
RECENT_DAYS = 30
# Counting a month of the consent ledger reads many rows on a large database: the figures may
# lag ten minutes.
ACTIVITY_CACHE_SECONDS = 600


def dashboard_request_queue(request: HttpRequest) -> dict:
    """Requests by status (open ones, and those closed in the last 30 days) with the open,
    overdue and due-soon counts: one statement."""
    today = timezone.localdate()
    closed_since = timezone.now() - dt.timedelta(days=RECENT_DAYS)
    open_ = Q(status__in=DataSubjectRequest.OPEN_STATUSES)
    counts = DataSubjectRequest.objects.filter(open_ | Q(handled_at__gte=closed_since)).aggregate(
        open=Count("id", filter=open_),
        overdue=Count("id", filter=open_ & Q(deadline__lt=today)),
        due_this_week=Count(
            "id",
            filter=open_ & Q(deadline__gte=today, deadline__lte=today + dt.timedelta(days=7)),
        ),
        **{
            f"status_{value}": Count("id", filter=Q(status=value)) for value in RequestStatus.values
        },
    )
    counts["by_status"] = [
        {"status": value, "label": label, "count": counts[f"status_{value}"]}
        for value, label in RequestStatus.choices
    ]
    counts["closed_days"] = RECENT_DAYS
    return counts


def dashboard_deadlines(request: HttpRequest) -> dict:
    """Open requests overdue or due within a week, the most urgent first: one statement."""
    today = timezone.localdate()
    due = list(
        DataSubjectRequest.objects.filter(
            status__in=DataSubjectRequest.OPEN_STATUSES,
            deadline__lte=today + dt.timedelta(days=DUE_SOON_DAYS),
        )
        .select_related("customer")
        .order_by("deadline", "id")[:DEADLINES_SHOWN]
    )
    for dsr in due:
        dsr.days_left = (dsr.deadline - today).days
        dsr.days_overdue = max(0, -dsr.days_left)
    return {"requests": due, "days": DUE_SOON_DAYS}


def privacy_activity(*, days: int = RECENT_DAYS) -> dict:
    """Erasures and consent withdrawals (with grants beside them) per purpose over the last
    `days` days: two statements."""
    since = timezone.now() - dt.timedelta(days=days)
    by_purpose = list(
        ConsentRecord.objects.filter(recorded_at__gte=since)
        .values("purpose_id", "purpose__name")
        .annotate(
            withdrawn=Count("id", filter=Q(state=ConsentStatus.WITHDRAWN)),
            granted=Count("id", filter=Q(state=ConsentStatus.GRANTED)),
        )
        .order_by("-withdrawn", "purpose__name")
    )
    return {
        "days": days,
        "erasures": ErasureLog.objects.filter(erased_at__gte=since).count(),
        "withdrawals": sum(row["withdrawn"] for row in by_purpose),
        "by_purpose": by_purpose,
    }


def dashboard_privacy_activity(request: HttpRequest) -> dict:
    today = timezone.localdate().isoformat()
    return cache.get_or_set(
        f"dashboard-privacy-activity:{today}", privacy_activity, timeout=ACTIVITY_CACHE_SECONDS
    )
