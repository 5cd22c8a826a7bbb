"""An import marks the customers it creates or changes, chunk by chunk, so segments follow them
within seconds (segments.realtime); customers it leaves as they were are not marked."""

import io

import pytest

from customers.importing import customers_import, purchases_import
from customers.models import Customer, MembershipMark
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def marked() -> set[int]:
    return set(MembershipMark.objects.values_list("customer_id", flat=True))


def test_customers_an_import_creates_or_changes_are_marked_and_the_unchanged_are_not():
    changed = CustomerFactory(external_id="C1", city="Berlin")
    unchanged = CustomerFactory(external_id="C2", city="Paris")

    result = customers_import(
        stream=io.BytesIO(b"external_id,city\nC1,Hamburg\nC2,Paris\nC3,Rome\n"), batch_size=2
    )

    assert (result.created, result.updated, result.unchanged) == (1, 1, 1)
    created = Customer.objects.get(external_id="C3")
    assert marked() == {changed.pk, created.pk}
    assert unchanged.pk not in marked()


def test_rows_written_one_after_the_other_mark_their_customers_too():
    customer = CustomerFactory(external_id="C1", email="ann@example.com")

    # Two rows reaching the same customer: written row by row, in file order.
    customers_import(
        stream=io.BytesIO(b"external_id,email,city\nC1,,Hamburg\n,ann@example.com,Munich\n")
    )

    customer.refresh_from_db()
    assert customer.city == "Munich"
    assert customer.pk in marked()


def test_the_customers_of_imported_purchases_are_marked():
    buyer = CustomerFactory(external_id="C1")
    other = CustomerFactory(external_id="C2")

    purchases_import(
        stream=io.BytesIO(
            b"customer_external_id,external_id,purchased_at,amount\nC1,O1,2024-01-02,12.50\n"
        )
    )

    assert buyer.pk in marked()
    assert other.pk not in marked()
