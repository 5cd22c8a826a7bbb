"""What segments adds to other apps: the customer page panel, timeline, consent audiences."""

from collections.abc import Iterable

from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse

from crm.roles import Role, user_has_role
from customers.models import Customer
from customers.registry import TimelineEntry
from segments.models import Membership, Segment
from segments.selectors import membership_changes, segments_for_customer


def customer_panel_context(request: HttpRequest, customer: Customer) -> dict:
    """The segments the customer is in, with the date they joined."""
    return {
        "segment_memberships": list(segments_for_customer(customer=customer)[:50]),
        "segments_linkable": user_has_role(request.user, Role.MARKETING, Role.SALES),
    }


def customer_timeline(customer: Customer, limit: int) -> Iterable[TimelineEntry]:
    """Joining and leaving segments, newest first."""
    for change in membership_changes(customer=customer)[:limit]:
        verb = "Joined" if change["change"] == "joined" else "Left"
        yield TimelineEntry(
            at=change["at"],
            kind="segment",
            title=f"{verb} segment {change['segment__name']}",
            url=reverse("segments:detail", args=[change["segment_id"]]),
            url_roles=(Role.MARKETING, Role.SALES),
        )


def segment_audience(segment_id: int) -> QuerySet:
    return Membership.objects.filter(segment_id=segment_id).values_list("customer_id", flat=True)


def segment_choices() -> list[tuple[int, str]]:
    return list(Segment.objects.order_by("name").values_list("pk", "name"))
