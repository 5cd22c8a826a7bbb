"""Behaviour events recorded many at once: event_create's checks, one insert."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from customers.models import Customer, Event
from customers.services import events_create
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_events_are_recorded_with_their_type_trimmed():
    customer = CustomerFactory()

    events_create(events=[Event(customer=customer, type=" page_view ", occurred_at=timezone.now())])

    assert list(customer.events.values_list("type", "properties")) == [("page_view", {})]


def test_an_event_for_a_customer_who_does_not_exist_records_nothing():
    customer = CustomerFactory()
    gone = Customer.objects.order_by("-pk").values_list("pk", flat=True).first() + 1
    now = timezone.now()

    with pytest.raises(ValidationError) as refused:
        events_create(events=[Event(customer=customer, type="page_view", occurred_at=now),
                              Event(customer_id=gone, type="page_view", occurred_at=now)])  # fmt: skip

    assert list(refused.value.message_dict) == ["customer"]
    assert not Event.objects.exists()


def test_an_event_type_too_long_records_nothing():
    customer = CustomerFactory()

    with pytest.raises(ValidationError):
        events_create(events=[Event(customer=customer, type="x" * 65, occurred_at=timezone.now())])

    assert not Event.objects.exists()


def test_sales_staff_may_not_record_events(sales_user):
    with pytest.raises(PermissionDenied):
        events_create(events=[], actor=sales_user)
