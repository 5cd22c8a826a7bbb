"""A person erased at their request is not recorded again from a file, a form or the API.

Their email and phone stay on the suppression list as salted hashes; an address suppressed
because its owner unsubscribed from everything may still be recorded (it is never targeted).
Runs in both passes of `make test`: on PostgreSQL the import takes its set-based path.
"""

import io

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
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


def test_an_import_refuses_to_move_a_stored_customer_to_an_erased_email_or_phone(erased_person):
    ann = CustomerFactory(external_id="C1", email="ann@example.com", phone="", first_name="Ann")
    bob = CustomerFactory(external_id="C2", email="bob@example.com", phone="", first_name="Bob")
    cy = CustomerFactory(external_id="C3", email="cy@example.com", phone="", first_name="Cy")
    text = (
        "external_id,email,phone,first_name\n"
        "C1, gone@EXAMPLE.com ,,Ann Gone\n"
        "C2,,+49 (30) 123-4567,Bob Gone\n"
        "C3,cy.new@example.com,030 555,Cy New\n"
    )

    result = customers_import(stream=io.BytesIO(text.encode()))

    assert result.counts() == {"read": 3, "created": 0, "updated": 1, "unchanged": 0, "failed": 2}
    failed = {e.line: e for e in result.errors}
    assert (failed[2].column, failed[3].column) == ("email", "phone")
    assert ERASED in failed[2].reason and ERASED in failed[3].reason
    # The report keeps no trace of the erased address.
    assert failed[2].value == "" and failed[3].value == ""
    for customer in (ann, bob, cy):
        customer.refresh_from_db()
    assert (ann.email, ann.first_name) == ("ann@example.com", "Ann")
    assert (bob.phone, bob.first_name) == ("", "Bob")
    assert (cy.email, cy.phone, cy.first_name) == ("cy.new@example.com", "+4930555", "Cy New")


def test_an_import_matching_by_email_refuses_an_erased_phone_and_reports_the_email_first(
    erased_person,
):
    ann = CustomerFactory(external_id=None, email="ann@example.com", phone="")
    CustomerFactory(external_id="C2", email="bob@example.com", phone="")
    text = (
        "external_id,email,phone\n"
        ",ANN@example.com,+49 30 1234567\n"
        "C2,gone@example.com,+49 30 1234567\n"
    )

    result = customers_import(stream=io.BytesIO(text.encode()))

    assert [(e.line, e.column, e.value) for e in result.errors] == [
        (2, "phone", ""),
        (3, "email", ""),
    ]
    ann.refresh_from_db()
    assert (ann.email, ann.phone) == ("ann@example.com", "")


def test_a_stored_customer_who_already_has_an_erased_address_keeps_it_when_a_row_repeats_it(
    erased_person,
):
    # A household phone shared with the erased person, and the person who signed up again.
    shared = CustomerFactory(external_id="C1", email="ann@example.com", phone="+49 30 123 4567")
    back = CustomerFactory(external_id="C2", email="gone@example.com", phone="")
    text = (
        "external_id,email,phone,first_name\nC1,,+49 (30) 1234567,Ann\nC2,GONE@example.com,,Gone\n"
    )

    result = customers_import(stream=io.BytesIO(text.encode()))

    assert result.counts() == {"read": 2, "created": 0, "updated": 2, "unchanged": 0, "failed": 0}
    shared.refresh_from_db()
    back.refresh_from_db()
    assert (shared.phone, shared.first_name) == ("+49301234567", "Ann")
    assert (back.email, back.first_name) == ("GONE@example.com", "Gone")


def test_an_import_asks_the_suppression_list_once_per_batch_whatever_the_rows(erased_person):
    for n in range(40):
        CustomerFactory(external_id=f"C{n}", email=f"c{n}@example.com", phone="")
    rows = [f"C{n},,+49 30 {n:07d}" for n in range(38)]
    rows += ["C38,gone@example.com,", "C39,,+49 30 1234567", "C40,new@example.com,"]
    # Two rows of the first batch reach C0: on PostgreSQL that batch takes the row-by-row rules.
    rows.insert(1, ",c0@example.com,+49 30 7654321")
    text = "external_id,email,phone\n" + "\n".join(rows) + "\n"
    suppression = Suppression._meta.db_table

    with CaptureQueriesContext(connection) as queries:
        result = customers_import(stream=io.BytesIO(text.encode()), batch_size=25)

    assert result.counts() == {
        "read": 42,
        "created": 1,
        "updated": 39,
        "unchanged": 0,
        "failed": 2,
    }
    assert len([q for q in queries if suppression in q["sql"]]) == 2  # two batches


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


def test_a_customer_who_shares_an_erased_phone_may_rewrite_it_but_not_take_another_erased_one(
    erased_person, superuser
):
    # A household phone shared with the erased person, stored before the erasure.
    shared = CustomerFactory(email="ann@example.com", phone="+49 30 123 4567")

    customer_update(customer=shared, actor=superuser, phone="+49 (30) 1234567")

    shared.refresh_from_db()
    assert shared.phone == "+49301234567"
    with pytest.raises(ValidationError) as refused:
        customer_update(customer=shared, actor=superuser, email="GONE@example.com ")
    assert list(refused.value.message_dict) == ["email"]


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
