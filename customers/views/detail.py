"""The customer page and the account page: everything about one of them on one screen."""

from dataclasses import replace
from datetime import date, timedelta

from django.db.models import Count, Max, Min, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone

from crm.roles import user_edits_customers, user_has_role
from customers.forms import NoteForm
from customers.models import Customer, Note, Purchase
from customers.registry import (
    TimelineEntry,
    access_record,
    account_panels,
    customer_panels,
    timeline_events_shown_by_sources,
    timeline_sources,
)
from customers.selectors import (
    accounts_visible_to,
    customer_fields_hidden_from,
    customers_visible_to,
)
from customers.views.access import staff_required
from customers.views.pagination import KeysetOrder, KeysetPage, cursor_encode, keyset_page

TIMELINE_LENGTH = 40
PURCHASES_SHOWN = 10
PURCHASE_ORDER = KeysetOrder(("purchased_at", "id"), descending=True)


def customer_timeline(
    customer: Customer,
    *,
    limit: int = TIMELINE_LENGTH,
    purchases: list[Purchase] | None = None,
    notes: list[Note] | None = None,
) -> list[TimelineEntry]:
    """Purchases, notes, events and every registered source (consent, campaigns, segments),
    newest first; each source gives at most `limit` entries, so the cost does not grow with history.
    The page passes the purchases and notes it already loaded (newest first)."""
    entries: list[TimelineEntry] = []
    if purchases is None:
        purchases = list(customer.purchases.order_by("-purchased_at", "-id")[:limit])
    if notes is None:
        notes = recent_notes(customer.notes, limit=limit)
    for p in purchases[:limit]:
        detail = " · ".join(x for x in (p.get_channel_display(), p.category, p.promotion_code) if x)
        entries.append(
            TimelineEntry(
                at=p.purchased_at,
                kind="purchase",
                title=f"Purchase {p.amount} {p.currency}",
                detail=detail,
            )
        )
    for n in notes[:limit]:
        who = n.author.get_username() if n.author else "someone"
        entries.append(
            TimelineEntry(
                at=n.created_at,
                kind="note",
                title=f"{n.get_kind_display()} by {who}",
                detail=n.body[:200],
            )
        )
    events = customer.events.all()
    for shown_elsewhere in timeline_events_shown_by_sources():
        events = events.exclude(shown_elsewhere)
    for e in events.order_by("-occurred_at", "-id")[:limit]:
        if e.type == "customer_merged":
            title = f"Merged with customer {e.properties.get('merged_customer_id', '?')}"
            moved = e.properties.get("moved", {})
            detail = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in moved.items() if v)
            entries.append(
                TimelineEntry(at=e.occurred_at, kind="merge", title=title, detail=detail)
            )
        else:
            detail = ", ".join(f"{k}: {v}" for k, v in list(e.properties.items())[:3])
            entries.append(
                TimelineEntry(
                    at=e.occurred_at,
                    kind="event",
                    title=e.type.replace("_", " ").capitalize(),
                    detail=detail,
                )
            )
    for source in timeline_sources().values():
        entries.extend(source(customer, limit))
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]


def timeline_for(user, entries: list[TimelineEntry]) -> list[TimelineEntry]:
    """The entries with the links this user may not open taken off (the lines stay)."""
    return [
        replace(e, url="") if e.url_roles and not user_has_role(user, *e.url_roles) else e
        for e in entries
    ]


def customer_figures(customer: Customer) -> dict:
    days = (timezone.now() - customer.last_purchase_at).days if customer.last_purchase_at else None
    return {
        "lifetime_value": customer.lifetime_value,
        "purchase_count": customer.purchase_count,
        "average_order_value": customer.average_order_value,
        "first_purchase_at": customer.first_purchase_at,
        "last_purchase_at": customer.last_purchase_at,
        "days_since_last_purchase": days,
    }


def recent_notes(notes_qs, *, limit: int = 50) -> list[Note]:
    return list(notes_qs.select_related("author").order_by("-created_at", "-id")[:limit])


def notes_context(
    request: HttpRequest, notes: list[Note], *, form: NoteForm | None = None, post_url: str
) -> dict:
    follow_ups = sorted(
        (n for n in notes if n.due_date and not n.done), key=lambda n: (n.due_date, n.pk)
    )
    return {
        "notes": [n for n in notes if not (n.due_date and not n.done)],
        "follow_ups": follow_ups,
        "note_form": form or NoteForm(),
        "note_post_url": post_url,
        "today": timezone.localdate(),
        "can_edit": user_edits_customers(request.user),
    }


def _age(birth_date: date | None) -> int | None:
    if birth_date is None:
        return None
    today = timezone.localdate()
    return (
        today.year
        - birth_date.year
        - ((today.month, today.day) < (birth_date.month, birth_date.day))
    )


@staff_required
def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_object_or_404(
        customers_visible_to(request.user).select_related("owner", "account"), pk=pk
    )
    access_record(user=request.user, action="view", object_kind="customer", object_id=customer.pk)
    # One query serves the purchases table (first 10) and the timeline (first 40).
    recent = list(
        customer.purchases.select_related("product").order_by(*PURCHASE_ORDER.order_by())[
            :TIMELINE_LENGTH
        ]
    )
    purchases = KeysetPage(
        rows=recent[:PURCHASES_SHOWN],
        next_cursor=cursor_encode(
            [recent[PURCHASES_SHOWN - 1].purchased_at, recent[PURCHASES_SHOWN - 1].pk]
        )
        if len(recent) > PURCHASES_SHOWN
        else None,
        is_first=True,
    )
    notes = recent_notes(customer.notes)
    panels = [
        {"panel": panel, "context": panel.context(request, customer)} for panel in customer_panels()
    ]
    context = {
        "customer": customer,
        "hidden": customer_fields_hidden_from(request.user),
        "age": _age(customer.birth_date),
        "figures": customer_figures(customer),
        "tags": list(customer.tags.all()),
        "purchases": purchases,
        "timeline": timeline_for(
            request.user, customer_timeline(customer, purchases=recent, notes=notes)
        ),
        "panels": panels,
        "can_edit": user_edits_customers(request.user),
        **notes_context(
            request, notes, post_url=_url("customers:customer_note_create", customer.pk)
        ),
    }
    return render(request, "customers/customer_detail.html", context)


@staff_required
def customer_purchases(request: HttpRequest, pk: int) -> HttpResponse:
    """The next page of a customer's purchases (loaded into the page with htmx)."""
    customer = get_object_or_404(customers_visible_to(request.user), pk=pk)
    purchases = keyset_page(
        customer.purchases.select_related("product"),
        order=PURCHASE_ORDER,
        cursor=request.GET.get("after", ""),
        size=25,
    )
    return render(
        request, "customers/_purchase_rows.html", {"customer": customer, "purchases": purchases}
    )


def _url(name: str, pk: int) -> str:
    return reverse(name, args=[pk])


@staff_required
def account_detail(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_object_or_404(accounts_visible_to(request.user).select_related("owner"), pk=pk)
    customers = customers_visible_to(request.user).filter(account=account)
    figures = customers.aggregate(
        customers=Count("id"),
        lifetime_value=Sum("lifetime_value"),
        purchases=Sum("purchase_count"),
        first_purchase_at=Min("first_purchase_at"),
        last_purchase_at=Max("last_purchase_at"),
    )
    figures["average_order_value"] = (
        (figures["lifetime_value"] / figures["purchases"]) if figures["purchases"] else None
    )
    revenue_12m = Purchase.objects.filter(
        customer__in=customers, purchased_at__gte=timezone.now() - timedelta(days=365)
    ).aggregate(total=Sum("amount"))["total"]
    access_record(user=request.user, action="view", object_kind="account", object_id=account.pk)
    context = {
        "account": account,
        "figures": figures,
        "revenue_12m": revenue_12m,
        "customers": list(
            customers.select_related("owner").order_by("-lifetime_value", "-id")[:100]
        ),
        "tags": list(account.tags.all()),
        "panels": [
            {"panel": panel, "context": panel.context(request, account)}
            for panel in account_panels()
        ],
        "can_edit": user_edits_customers(request.user),
        **notes_context(
            request,
            recent_notes(account.notes),
            post_url=_url("customers:account_note_create", account.pk),
        ),
    }
    return render(request, "customers/account_detail.html", context)


def follow_ups_due(user, *, within_days: int = 7) -> list[Note]:
    """The user's open follow-ups due within the coming days, overdue first (oldest due first)."""
    horizon = date.fromordinal(timezone.localdate().toordinal() + within_days)
    return list(
        Note.objects.filter(author=user, done=False, due_date__isnull=False, due_date__lte=horizon)
        .select_related("customer", "account")
        .order_by("due_date", "id")[:20]
    )
