"""An erased person's phone number is recognised however it is written: with its country code,
in national form (read in PHONE_DEFAULT_REGION), with any punctuation. Runs on PostgreSQL, where
the import takes its set-based path, and in the row-by-row path."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from customers.importing import customers_import
from customers.models import Customer
from customers.phones import phone_e164, phone_key, phone_validate
from customers.services import customer_create
from privacy.erasure import customer_erase
from privacy.suppression import suppression_contains
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

ERASED = "belongs to a person whose data was erased at their request"


@pytest.fixture(autouse=True)
def _numbers_read_as_german(settings):
    settings.PHONE_DEFAULT_REGION = "DE"


@pytest.fixture
def erased_berliner():
    """A person with a Berlin number in international form, erased at their request."""
    person = CustomerFactory(email="berlin@example.com", phone="+49 30 1234567")
    customer_erase(customer=person)


def test_an_import_row_with_the_erased_number_in_national_form_is_refused(erased_berliner):
    text = "external_id,phone,first_name\nN1,030 1234567,Again\nN2,030 7654321,Other\n"

    result = customers_import(stream=io.BytesIO(text.encode()))

    assert result.counts()["created"] == 1 and result.counts()["failed"] == 1
    (error,) = result.errors
    assert (error.line, error.column, error.value) == (2, "phone", "")
    assert ERASED in error.reason
    assert set(Customer.objects.values_list("external_id", flat=True)) >= {"N2"}
    assert not Customer.objects.filter(external_id="N1").exists()


def test_an_import_row_with_the_number_written_with_00_and_punctuation_is_refused(
    erased_berliner,
):
    text = "external_id,phone\nN1,0049 (30) 123-45-67\n"

    result = customers_import(stream=io.BytesIO(text.encode()))

    assert result.counts()["failed"] == 1
    assert ERASED in result.errors[0].reason


def test_the_form_refuses_the_erased_number_in_national_form(erased_berliner, client, sales_user):
    client.force_login(sales_user)

    response = client.post(
        reverse("customers:customer_create"),
        {"first_name": "Again", "phone": "030 1234567", "owner": sales_user.pk},
    )

    assert response.status_code == 400
    assert ERASED in response.content.decode()
    assert not Customer.objects.filter(first_name="Again").exists()


def test_the_api_refuses_the_erased_number_in_national_form_keyed_by_phone(
    erased_berliner, sales_user
):
    client = APIClient()
    client.force_authenticate(user=sales_user)

    response = client.post(
        "/api/customers/", {"first_name": "Again", "phone": "030 1234567"}, format="json"
    )

    assert response.status_code == 400
    assert ERASED in response.data["phone"][0]


def test_the_suppression_list_holds_the_number_in_every_writing(erased_berliner):
    for written in ("+49 30 1234567", "030 1234567", "0049-30-123 45 67", "(030) 1234567"):
        assert suppression_contains(phone=written), written
    assert not suppression_contains(phone="030 1234568")


def test_a_national_number_is_read_in_the_configured_region(erased_berliner, settings, superuser):
    settings.PHONE_DEFAULT_REGION = "FR"

    # In France, 030 1234567 is not the Berlin number.
    customer = customer_create(actor=superuser, first_name="Paris", phone="030 1234567")

    assert customer.pk is not None


def test_the_erased_number_is_refused_to_the_service_in_any_writing(erased_berliner, superuser):
    with pytest.raises(ValidationError) as refused:
        customer_create(actor=superuser, first_name="Again", phone="0301234567")

    assert list(refused.value.message_dict) == ["phone"]


def test_one_number_has_one_e164_form_and_text_that_is_no_number_falls_back_to_digits():
    assert {phone_e164(w) for w in ("+49 30 1234567", "030 1234567", "0049 30 1234567")} == {
        "+49301234567"
    }
    assert phone_key("+49 30 1234567") == "49301234567"
    assert phone_key("call 12") == "12" or phone_key("call 12").isdigit()
    assert phone_key("n/a") == ""


def test_the_validation_names_the_problem_and_returns_e164():
    assert phone_validate("030 1234567") == "+49301234567"
    with pytest.raises(ValidationError) as refused:
        phone_validate("not a number")
    assert "not a phone number" in refused.value.messages[0]
