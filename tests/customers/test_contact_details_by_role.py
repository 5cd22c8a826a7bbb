"""Marketers see what targeting needs: the age, not the birth date, and no phone number.

Their customer export leaves both out; the customer page, the top-bar search and the API detail
follow the same rule. Sales staff, privacy officers and admins see both.
"""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

PHONE = "+49 30 555 0199"


@pytest.fixture
def customer(sales_user):
    today = timezone.localdate()
    born = dt.date(today.year - 41, 1, 1)
    return CustomerFactory(
        owner=sales_user, first_name="Greta", last_name="Lind", phone=PHONE, birth_date=born
    )


def test_a_marketer_sees_the_age_but_not_the_birth_date_or_phone_on_the_page(
    client, marketing_user, customer
):
    client.force_login(marketing_user)

    page = client.get(reverse("customers:customer_detail", args=[customer.pk])).content.decode()

    assert PHONE not in page and customer.birth_date.isoformat() not in page
    assert "<dt>Age</dt><dd>41</dd>" in page


@pytest.mark.parametrize("who", ["sales_user", "privacy_user", "superuser"])
def test_sales_privacy_and_admins_see_the_birth_date_and_phone(client, request, who, customer):
    client.force_login(request.getfixturevalue(who))

    page = client.get(reverse("customers:customer_detail", args=[customer.pk])).content.decode()

    assert PHONE in page and customer.birth_date.isoformat() in page


def test_the_top_bar_search_shows_a_marketer_no_phone(client, marketing_user, customer):
    client.force_login(marketing_user)

    results = client.get(reverse("customers:search"), {"q": "Greta"}).content.decode()

    assert "Greta" in results and PHONE not in results


def test_the_api_detail_gives_a_marketer_null_for_birth_date_and_phone(
    api_client_for, marketing_user, sales_user, customer
):
    as_marketer = api_client_for(marketing_user).get(f"/api/customers/{customer.pk}/").data
    as_owner = api_client_for(sales_user).get(f"/api/customers/{customer.pk}/").data

    assert (as_marketer["phone"], as_marketer["birth_date"]) == (None, None)
    assert as_marketer["first_name"] == "Greta"
    assert (as_owner["phone"], as_owner["birth_date"]) == (PHONE, customer.birth_date.isoformat())


def test_a_marketer_cannot_find_a_customer_by_phone_number(
    client, api_client_for, marketing_user, sales_user, customer
):
    client.force_login(marketing_user)
    by_phone = "+49 30 555"

    assert "Greta" not in client.get(reverse("customers:search"), {"q": by_phone}).content.decode()
    assert (
        "Greta"
        not in client.get(reverse("customers:customer_list"), {"q": by_phone}).content.decode()
    )
    api = api_client_for(marketing_user).get("/api/customers/", {"search": "555 0199"}).data
    assert api["results"] == []
    # The owner finds her by phone.
    owner = api_client_for(sales_user).get("/api/customers/", {"search": "555 0199"}).data
    assert [c["id"] for c in owner["results"]] == [customer.pk]
    client.force_login(sales_user)
    assert "Greta" in client.get(reverse("customers:search"), {"q": by_phone}).content.decode()
    assert (
        "Greta" in client.get(reverse("customers:customer_list"), {"q": by_phone}).content.decode()
    )
