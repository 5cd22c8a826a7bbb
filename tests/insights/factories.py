"""factory-boy factories and helpers for insights."""

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from customers.models import Customer, Purchase
from insights.kpi import Period
from tests.customers.factories import PurchaseFactory


def day(period: Period, offset: int, *, hour: int = 12) -> dt.datetime:
    """Noon on the period's start day plus `offset` days (negative: before the period)."""
    return timezone.make_aware(
        dt.datetime.combine(period.start + dt.timedelta(days=offset), dt.time(hour))
    )


def purchase(customer: Customer, at: dt.datetime, amount: str = "100.00") -> Purchase:
    return PurchaseFactory(customer=customer, purchased_at=at, amount=Decimal(amount))
