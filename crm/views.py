"""Pages that belong to no single app: the dashboard and health."""

from datetime import datetime, time, timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db.models import Sum
from django.db.models.functions import TruncMonth
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from crm.dashboard import dashboard_cards_for
from crm.roles import Role, user_edits_customers, user_has_role
from customers.models import Purchase
from customers.selectors import accounts_visible_to, customers_visible_to
from customers.views.detail import follow_ups_due


def _month_starts(count: int) -> list:
    """The first day of each of the last `count` months, oldest first, ending with this month."""
    today = timezone.localdate()
    year, month = today.year, today.month
    months = []
    for _ in range(count):
        months.append(today.replace(year=year, month=month, day=1))
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return list(reversed(months))


REVENUE_CACHE_SECONDS = 600  # the chart may lag ten minutes; summing a year of purchases is costly


def _revenue_by_month(my_accounts) -> dict:
    """Revenue of the accounts' customers per month over the last twelve months, for the chart."""
    months = _month_starts(12)
    since = timezone.make_aware(datetime.combine(months[0], time.min))
    revenue = (
        Purchase.objects.filter(
            customer__account__in=my_accounts.values("pk"), purchased_at__gte=since
        )
        .annotate(month=TruncMonth("purchased_at"))
        .values("month")
        .annotate(total=Sum("amount"))
        .values_list("month", "total")
    )
    by_month = {}
    for month, total in revenue:
        key = month.date() if hasattr(month, "date") else month
        by_month[(key.year, key.month)] = float(total or 0)
    return {
        "labels": [m.strftime("%b %Y") for m in months],
        "values": [round(by_month.get((m.year, m.month), 0.0), 2) for m in months],
    }


def _sales_widgets(user: AbstractBaseUser) -> dict:
    """A salesperson's day: follow-ups due, their accounts, best and newest customers, revenue."""
    now = timezone.now()
    today = timezone.localdate()
    customers = customers_visible_to(user)
    my_accounts = accounts_visible_to(user).filter(owner=user)
    # My accounts by their latest purchase: walk the newest purchases of my accounts' customers
    # (index on last_purchase_at) instead of aggregating over every account I own.
    latest = (
        customers.filter(account__owner=user, last_purchase_at__isnull=False)
        .order_by("-last_purchase_at", "-id")
        .values_list("account_id", "last_purchase_at")[:400]
    )
    activity: dict[int, object] = {}
    for account_id, at in latest:
        activity.setdefault(account_id, at)
        if len(activity) == 8:
            break
    accounts_recent = sorted(
        my_accounts.filter(pk__in=list(activity)), key=lambda a: activity[a.pk], reverse=True
    )
    for account in accounts_recent:
        account.last_activity = activity[account.pk]
    chart = cache.get_or_set(
        f"dashboard-revenue:{user.pk}:{today.isoformat()}",
        lambda: _revenue_by_month(my_accounts),
        timeout=REVENUE_CACHE_SECONDS,
    )
    week_ago = now - timedelta(days=7)
    return {
        "follow_ups": follow_ups_due(user),
        "accounts_recent": accounts_recent,
        "top_customers": list(
            customers.select_related("account").order_by("-lifetime_value", "-id")[:8]
        ),
        "new_customers": list(
            customers.filter(created_at__gte=week_ago).order_by("-created_at", "-id")[:8]
        ),
        "new_customers_count": customers.filter(created_at__gte=week_ago).count(),
        "revenue_chart": chart,
        "revenue_total": sum(chart["values"]),
        "revenue_rows": list(zip(chart["labels"], chart["values"], strict=True)),
    }


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Each role's day: the sales widgets for sales staff, and the cards the apps register for
    the user's roles (marketing and privacy dashboards, follow-ups assigned to me)."""
    user = request.user
    shows_sales = user_has_role(user, Role.SALES)
    context = {
        "today": timezone.localdate(),
        "shows_sales": shows_sales,
        "can_edit": user_edits_customers(user),
        "cards": dashboard_cards_for(request),
    }
    if shows_sales:
        context.update(_sales_widgets(user))
    return render(request, "crm/dashboard.html", context)
