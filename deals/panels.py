"""What deals adds to customer and account pages, their timeline and the dashboard."""

from collections.abc import Iterable

from django.db.models import Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from crm.roles import Role
from customers.models import Account, Customer
from customers.registry import TimelineEntry
from deals.forms import ACTIVITY_IDS, ActivityForm
from deals.models import Activity, Deal, StageChange
from deals.selectors import (
    deals_visible_to,
    deals_with_figures,
    follow_ups_assigned,
    user_edits_deals,
    user_reads_deals,
)

PANEL_DEALS = 10
DEAL_READERS = (Role.SALES, Role.MARKETING)


def _panel_context(request: HttpRequest, deals, *, new_query: str, on: dict) -> dict:
    user = request.user
    if not user_reads_deals(user):
        return {"deals_readable": False}
    shown = deals_visible_to(user) & deals
    return {
        "deals_readable": True,
        "deals": list(
            deals_with_figures(shown)
            .select_related("stage", "owner")
            .order_by("stage__outcome", "expected_close_date", "-id")[:PANEL_DEALS]
        ),
        "deals_count": shown.count(),
        "deal_new_url": f"{reverse('deals:create')}?{new_query}",
        "deals_editable": user_edits_deals(user),
        "activity_form": ActivityForm(auto_id=ACTIVITY_IDS),
        **on,
    }


def customer_panel_context(request: HttpRequest, customer: Customer) -> dict:
    return _panel_context(
        request,
        Deal.objects.filter(customer=customer),
        new_query=f"customer={customer.pk}",
        on={"on_customer": customer.pk},
    )


def account_panel_context(request: HttpRequest, account: Account) -> dict:
    return _panel_context(
        request,
        Deal.objects.filter(account=account),
        new_query=f"account={account.pk}",
        on={"on_account": account.pk},
    )


def customer_timeline(customer: Customer, limit: int) -> Iterable[TimelineEntry]:
    """Activities on the customer or their deals, and the stage moves of their deals."""
    entries = []
    activities = (
        Activity.objects.filter(Q(customer=customer) | Q(deal__customer=customer))
        .select_related("author", "deal")
        .order_by("-occurred_at", "-id")[:limit]
    )
    for a in activities:
        who = a.author.get_username() if a.author else "someone"
        entries.append(
            TimelineEntry(
                at=a.occurred_at,
                kind="activity",
                title=f"{a.get_kind_display()} by {who}: {a.subject}",
                detail=a.body[:200],
                url=reverse("deals:detail", args=[a.deal_id]) if a.deal_id else "",
                url_roles=DEAL_READERS,
            )
        )
    changes = (
        StageChange.objects.filter(deal__customer=customer)
        .select_related("deal", "to_stage", "from_stage")
        .order_by("-changed_at", "-id")[:limit]
    )
    for c in changes:
        title = (
            f"Deal {c.deal.name} moved to {c.to_stage.name}"
            if c.from_stage_id
            else f"Deal {c.deal.name} opened in {c.to_stage.name}"
        )
        entries.append(
            TimelineEntry(
                at=c.changed_at,
                kind="deal",
                title=title,
                url=reverse("deals:detail", args=[c.deal_id]),
                url_roles=DEAL_READERS,
            )
        )
    return entries


def deals_merge_hook(target_id: int, duplicate_id: int) -> None:
    """A merged customer's deals and activities move to the customer kept."""
    Deal.objects.filter(customer_id=duplicate_id).update(customer_id=target_id)
    Activity.objects.filter(customer_id=duplicate_id).update(customer_id=target_id)


def dashboard_follow_ups_context(request: HttpRequest) -> dict:
    return {
        "follow_ups": follow_ups_assigned(request.user),
        "today": timezone.localdate(),
        "can_edit": user_edits_deals(request.user),
    }
