import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.utils import timezone

from customers.models import Customer, Purchase
from tests.customers.factories import CustomerFactory


def buy(customer: Customer, *, days_ago: float, amount: str | Decimal, category: str = "") -> None:
    Purchase.objects.create(
        customer=customer,
        purchased_at=timezone.now() - dt.timedelta(days=days_ago),
        amount=Decimal(str(amount)),
        category=category,
        dedup_key=uuid.uuid4().hex,
    )


@pytest.fixture
def champion():
    customer = CustomerFactory(first_name="Cara")
    for days in (2, 20, 40, 60, 80, 100):
        buy(customer, days_ago=days, amount="400")
    return customer


@pytest.fixture
def lost_customer():
    customer = CustomerFactory(first_name="Lou")
    buy(customer, days_ago=600, amount="5")
    return customer


@pytest.fixture
def buyers_in_between():
    customers = CustomerFactory.create_batch(8)
    for i, customer in enumerate(customers):
        for j in range(1 + i % 3):
            buy(customer, days_ago=30 + 50 * i + j, amount=str(20 + 10 * i))
    return customers


@pytest.fixture
def three_planted_groups():
    """Recent big frequent spenders, occasional mid spenders, long-gone small spenders."""
    groups = []
    for recency, count, amount in [(5, 8, 500), (120, 3, 60), (500, 1, 5)]:
        members = CustomerFactory.create_batch(12)
        for k, customer in enumerate(members):
            for j in range(count):
                buy(customer, days_ago=recency + j * 3 + k * 0.5, amount=str(amount + k))
        groups.append(members)
    return groups
