"""A merge shows the two customers side by side and merges only once confirmed."""

import pytest
from django.urls import reverse

from customers.models import Customer
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair(sales_user):
    keeper = CustomerFactory(
        owner=sales_user, first_name="Ada", last_name="Lovelace", email="ada@example.com"
    )
    duplicate = CustomerFactory(
        owner=sales_user, first_name="Ada", last_name="Lovelace", email="a.lovelace@example.com"
    )
    return keeper, duplicate


def test_choosing_the_duplicate_shows_both_side_by_side_and_merges_nothing(
    client, sales_user, pair
):
    keeper, duplicate = pair
    client.force_login(sales_user)

    response = client.post(
        reverse("customers:customer_merge", args=[keeper.pk]), {"duplicate": duplicate.pk}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="confirmation-compare"' in html
    assert "ada@example.com" in html and "a.lovelace@example.com" in html
    assert Customer.objects.filter(pk=duplicate.pk).exists()


def test_confirming_merges(client, sales_user, pair):
    keeper, duplicate = pair
    client.force_login(sales_user)

    response = client.post(
        reverse("customers:customer_merge", args=[keeper.pk]),
        {"duplicate": duplicate.pk, "confirmed": "yes"},
    )

    assert response.status_code == 302
    assert not Customer.objects.filter(pk=duplicate.pk).exists()
