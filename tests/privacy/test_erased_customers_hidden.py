from decimal import Decimal

import pytest

from customers.selectors import customers_visible_to
from privacy.erasure import customer_erase
from segments.compiler import compile_rule
from tests.customers.factories import CustomerFactory, PurchaseFactory

pytestmark = pytest.mark.django_db


def test_an_erased_customer_leaves_every_list_and_no_rule_selects_them(
    privacy_user, marketing_user
):
    kept = CustomerFactory(country="DE")
    erased = CustomerFactory(country="DE")
    PurchaseFactory(customer=erased, amount=Decimal("80.00"))

    customer_erase(customer=erased, actor=privacy_user)

    assert list(customers_visible_to(marketing_user)) == [kept]
    assert list(compile_rule({"field": "country", "op": "eq", "value": "DE"})) == [kept]
    erased.refresh_from_db()
    assert erased.erased_at is not None
    assert erased.purchases.get().amount == Decimal("80.00")
