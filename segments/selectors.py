"""Shared reads on segments: preview, size history, overlap, a customer's segments."""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import CharField, Count, Exists, F, OuterRef, QuerySet, Value
from django.utils import timezone

from crm.db_router import heavy_reads
from customers.models import Customer
from customers.selectors import customers_visible_to
from segments.compiler import compile_rule
from segments.models import Membership, MembershipChange, RefreshRun, Segment


@dataclass
class Preview:
    """What an unsaved rule would select now, and how that differs from the saved membership."""

    count: int
    sample: list[Customer]
    would_join: int | None = None
    would_leave: int | None = None
    join_sample: list[Customer] | None = None
    leave_sample: list[Customer] | None = None


@heavy_reads()  # on the read replica when there is one (crm/db_router.py)
def segment_preview(
    *,
    rule: Any,
    segment: Segment | None = None,
    sample_size: int = 10,
    now: dt.datetime | None = None,
) -> Preview:
    """Count and sample an unsaved rule; against a saved segment, who would join and leave."""
    wanted = compile_rule(rule, now=now or timezone.now())
    sample = list(wanted.order_by("-id")[:sample_size])
    preview = Preview(count=wanted.count(), sample=sample)
    if segment is not None:
        saved = Membership.objects.filter(segment=segment, customer_id=OuterRef("pk"))
        joiners = wanted.filter(~Exists(saved))
        leavers = Customer.objects.filter(Exists(saved)).exclude(pk__in=wanted.values("pk"))
        preview.would_join = joiners.count()
        preview.would_leave = leavers.count()
        preview.join_sample = list(joiners.order_by("-id")[:sample_size])
        preview.leave_sample = list(leavers.order_by("-id")[:sample_size])
    return preview


def segment_members(*, segment: Segment, user: AbstractBaseUser) -> QuerySet[Customer]:
    """The members of a segment that the user may see."""
    members = Membership.objects.filter(segment=segment, customer_id=OuterRef("pk"))
    return customers_visible_to(user).filter(Exists(members))


def segment_size_history(*, segment: Segment, limit: int = 60) -> list[RefreshRun]:
    """The last finished refreshes, oldest first (for charts)."""
    runs = segment.runs.filter(status=RefreshRun.Status.DONE).order_by("-finished_at", "-id")[
        :limit
    ]
    return list(reversed(runs))


def segment_overlap(*, segment: Segment, limit: int = 10) -> list[tuple[Segment, int]]:
    """The other segments that share members with this one, with the number shared."""
    mine = Membership.objects.filter(segment=segment).values("customer_id")
    rows = (
        Membership.objects.filter(customer_id__in=mine)
        .exclude(segment=segment)
        .values("segment_id")
        .annotate(shared=Count("customer_id"))
        .order_by("-shared")[:limit]
    )
    by_id = Segment.objects.in_bulk([row["segment_id"] for row in rows])
    return [(by_id[row["segment_id"]], row["shared"]) for row in rows if row["segment_id"] in by_id]


def segments_for_customer(*, customer: Customer) -> QuerySet[Membership]:
    """The customer's memberships with their segments, newest first."""
    return Membership.objects.filter(customer=customer).select_related("segment").order_by("-since")


def membership_changes(
    *,
    segment: Segment | None = None,
    customer: Customer | None = None,
    run: RefreshRun | None = None,
) -> QuerySet:
    """Every join and leave as dicts (segment_id, segment_name, customer_id, run_id, change, at),
    newest first: the log of ended stays plus the join of each current member, which lives on
    its membership row."""
    logged = MembershipChange.objects.order_by()
    current = Membership.objects.order_by().annotate(
        change=Value(MembershipChange.Change.JOINED, output_field=CharField()), at=F("since")
    )
    if segment is not None:
        logged, current = logged.filter(segment=segment), current.filter(segment=segment)
    if customer is not None:
        logged, current = logged.filter(customer=customer), current.filter(customer=customer)
    if run is not None:
        logged = logged.filter(run=run)
        current = current.filter(segment_id=run.segment_id, run=run)
    fields = ("segment_id", "segment__name", "customer_id", "run_id", "change", "at")
    return (
        logged.values(*fields)
        .union(current.values(*fields), all=True)
        .order_by("-at", "change", "segment_id", "customer_id")
    )


def segment_joiners(
    *, segments: QuerySet[Segment], after: dt.datetime, until: dt.datetime
) -> QuerySet[Customer]:
    """The customers who joined any of the segments in (after, until], members now or not."""
    logged = MembershipChange.objects.filter(
        segment__in=segments, change=MembershipChange.Change.JOINED, at__gt=after, at__lte=until
    )
    current = Membership.objects.filter(segment__in=segments, since__gt=after, since__lte=until)
    return Customer.objects.filter(
        pk__in=logged.order_by().values("customer_id").union(current.values("customer_id"))
    )
