"""Pages that belong to no single app: the dashboard and health."""

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.db.models import Max, Sum
from django.db.models.functions import TruncMonth
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from crm.roles import user_edits_customers
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


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """A salesperson's day: follow-ups due, their accounts, best and newest customers, revenue."""
    user = request.user
    now = timezone.now()
    today = timezone.localdate()
    customers = customers_visible_to(user)
    my_accounts = accounts_visible_to(user).filter(owner=user)
    accounts_recent = list(
        my_accounts.annotate(last_activity=Max("customers__last_purchase_at"))
        .order_by("-last_activity", "name")
        .select_related("owner")[:8]
    )
    months = _month_starts(12)
    revenue = dict(
        Purchase.objects.filter(
            customer__account__in=my_accounts.values("pk"), purchased_at__gte=months[0]
        )
        .annotate(month=TruncMonth("purchased_at"))
        .values("month")
        .annotate(total=Sum("amount"))
        .values_list("month", "total")
    )
    by_month = {}
    for month, total in revenue.items():
        key = month.date() if hasattr(month, "date") else month
        by_month[(key.year, key.month)] = float(total or 0)
    chart = {
        "labels": [m.strftime("%b %Y") for m in months],
        "values": [round(by_month.get((m.year, m.month), 0.0), 2) for m in months],
    }
    week_ago = now - timedelta(days=7)
    context = {
        "today": today,
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
        "can_edit": user_edits_customers(user),
    }
    return render(request, "crm/dashboard.html", context)


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers and `make run`: the app answers and the database is reachable."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
