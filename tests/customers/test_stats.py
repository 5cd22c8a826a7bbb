import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from customers.services import customer_stats_refresh
from tests.customers.factories import CustomerFactory, PurchaseFactory

pytestmark = pytest.mark.django_db


def test_stats_reflect_every_purchase_of_the_customer():
    customer = CustomerFactory()
    first = timezone.now() - dt.timedelta(days=40)
    last = timezone.now() - dt.timedelta(days=2)
    PurchaseFactory(customer=customer, amount=Decimal("30.00"), purchased_at=first)
    PurchaseFactory(customer=customer, amount=Decimal("90.00"), purchased_at=last)

    customer_stats_refresh(customer_ids=[customer.pk])

    customer.refresh_from_db()
    assert customer.lifetime_value == Decimal("120.00")
    assert customer.purchase_count == 2
    assert customer.average_order_value == Decimal("60.00")
    assert customer.first_purchase_at == first
    assert customer.last_purchase_at == last


def test_customer_without_purchases_has_zero_figures():
    customer = CustomerFactory(lifetime_value=Decimal("5"), purchase_count=3)

    customer_stats_refresh()

    customer.refresh_from_db()
    assert customer.lifetime_value == 0
    assert customer.purchase_count == 0
    assert customer.last_purchase_at is None
