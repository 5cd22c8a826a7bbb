"""Writes on customer data. Views, API, tasks and commands call these; none write models directly."""

from collections.abc import Iterable

from django.db import transaction
from django.db.models import Avg, Count, DecimalField, Max, Min, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from customers.models import Customer, Purchase


def customer_stats_refresh(*, customer_ids: Iterable[int] | None = None) -> int:
    """Recompute the derived purchase figures set-based, for some customers or for all.

    One UPDATE with correlated subqueries; never a save per customer. Returns rows updated.
    """
    per_customer = Purchase.objects.filter(customer_id=OuterRef("pk")).values("customer_id")
    money = DecimalField(max_digits=14, decimal_places=2)

    def agg(expr):
        return Subquery(per_customer.annotate(v=expr).values("v")[:1])

    customers = Customer.objects.all()
    if customer_ids is not None:
        ids = list(customer_ids)
        if not ids:
            return 0
        customers = customers.filter(pk__in=ids)
    with transaction.atomic():
        return customers.update(
            lifetime_value=Coalesce(agg(Sum("amount")), Value(0), output_field=money),
            purchase_count=Coalesce(agg(Count("id")), Value(0)),
            first_purchase_at=agg(Min("purchased_at")),
            last_purchase_at=agg(Max("purchased_at")),
            average_order_value=Coalesce(agg(Avg("amount")), Value(0), output_field=money),
        )
