"""A person erased at their request is not recorded again from a file, a form or the API.

Their email and phone stay on the suppression list as salted hashes; an address suppressed
because its owner unsubscribed from everything may still be recorded (it is never targeted).
Runs in both passes of `make test`: on PostgreSQL the import takes its set-based path.
"""

import io

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from customers.importing import customers_import
from customers.models import Customer
from customers.services import customer_create, customer_update
from privacy.models import Suppression
from privacy.suppression import suppression_add
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

ERASED = "belongs to a person whose data was erased at their request"


@pytest.fixture
def erased_person():
    suppression_add(
        reason=Suppression.Reason.ERASURE, email="Gone@Example.com", phone="+49 30 1234567"
    )


@pytest.fixture
def unsubscribed_person():
    suppression_add(reason=Suppression.Reason.UNSUBSCRIBE, email="quiet@example.com")


def test_an_import_reports_the_erased_persons_rows_and_creates_the_others(
    erased_person, unsubscribed_person
):
    text = (
        "external_id,email,phone,first_name\n"
        "C1,ann@example.com,,Ann\n"
        "C2,GONE@example.com,,Gone\n"
        "C3,,+49 (30) 123-4567,Phone\n"
        "C4,quiet@example.com,,Quiet\n"
    )

    result = customers_import(stream=io.BytesIO(text.encode()))

    assert result.counts() == {"read": 4, "created": 2, "updated": 0, "unchanged": 0, "failed": 2}
    assert set(Customer.objects.values_list("external_id", flat=True)) == {"C1", "C4"}
    failed = {e.line: e for e in result.errors}
    assert (failed[3].column, failed[4].column) == ("email", "phone")
    assert ERASED in failed[3].reason and ERASED in failed[4].reason
    # The report keeps no trace of the erased address.
    assert failed[3].value == "" and failed[4].value == ""


def test_an_erased_address_in_a_renamed_column_is_reported_under_the_files_column_name(
    erased_person,
):
    text = "Kundennummer,E-Mail\nC1,gone@example.com\n"

    result = customers_import(
        stream=io.BytesIO(text.encode()),
        column_map={"external_id": "Kundennummer", "email": "E-Mail"},
    )

    assert [(e.line, e.column) for e in result.errors] == [(2, "E-Mail")]
    assert not Customer.objects.exists()


def test_an_import_still_updates_a_stored_customer_whose_row_carries_no_erased_address(
    erased_person,
):
    stored = CustomerFactory(external_id="C1", email="ann@example.com", first_name="Ann")

    result = customers_import(stream=io.BytesIO(b"external_id,first_name\nC1,Anna\n"))

    assert result.counts()["updated"] == 1
    stored.refresh_from_db()
    assert stored.first_name == "Anna"


def test_the_service_refuses_to_create_or_move_a_customer_to_an_erased_address(
    erased_person, superuser
):
    with pytest.raises(ValidationError) as refused:
        customer_create(actor=superuser, first_name="Gone", email="gone@example.com")
    assert ERASED in refused.value.message_dict["email"][0]

    customer = customer_create(actor=superuser, first_name="Ann", email="ann@example.com")
    with pytest.raises(ValidationError) as refused:
        customer_update(customer=customer, actor=superuser, phone="+49 30 1234567")
    assert list(refused.value.message_dict) == ["phone"]
    customer.refresh_from_db()
    assert customer.phone == ""


def test_the_form_shows_the_refusal_next_to_the_email_field(erased_person, client, sales_user):
    client.force_login(sales_user)

    response = client.post(
        reverse("customers:customer_create"),
        {"first_name": "Gone", "email": "gone@example.com", "owner": sales_user.pk},
    )

    assert response.status_code == 400
    assert ERASED in response.content.decode()
    assert not Customer.objects.exists()


def test_the_api_answers_400_keyed_by_the_field(erased_person, sales_user):
    client = APIClient()
    client.force_authenticate(user=sales_user)

    response = client.post(
        "/api/customers/", {"first_name": "Gone", "email": "gone@example.com"}, format="json"
    )

    assert response.status_code == 400
    assert ERASED in response.data["email"][0]
    assert not Customer.objects.exists()
