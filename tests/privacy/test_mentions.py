"""An erasure takes the person out of free text about others, in the forms people write them,
and leaves the rest of the text (and people with a similar name) alone."""

import pytest

from customers.models import Customer, Note
from privacy.erasure import customer_erase
from privacy.mentions import Mentions
from tests.customers.factories import AccountFactory, CustomerFactory, EventFactory, NoteFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def person():
    return CustomerFactory(
        first_name="Zebulon",
        last_name="Quixotaris",
        email="zebulon.quixotaris@example.org",
        phone="+49 30 5550199",
    )


@pytest.mark.parametrize(
    "written",
    [
        "zebulon.quixotaris@example.org",
        "ZEBULON.QUIXOTARIS@EXAMPLE.ORG",
        "Zebulon Quixotaris",
        "QUIXOTARIS, Zebulon",
        "Zebulon_Quixotaris",
        "+49 (30) 555-0199",
        "0049 30 555 01 99",
    ],
)
def test_a_note_about_someone_else_loses_each_way_of_writing_the_person(person, written):
    account = AccountFactory()
    note = NoteFactory(customer=None, account=account, body=f"Ask {written} about the order.")

    customer_erase(customer=person)

    assert Note.objects.get(pk=note.pk).body == "Ask [erased] about the order."


def test_a_namesake_by_first_name_only_and_longer_numbers_are_left_alone(person):
    other = CustomerFactory(first_name="Zebulon", last_name="Other")
    body = "Zebulon Other ordered 4930555019912 items."
    note = NoteFactory(customer=other, body=body)

    customer_erase(customer=person)

    assert Note.objects.get(pk=note.pk).body == body


def test_json_values_lose_the_person_in_texts_keys_and_numbers(person):
    other = CustomerFactory(attributes={"referred_by": "Zebulon Quixotaris", "n": 1})
    event = EventFactory(
        customer=other,
        properties={"zebulon.quixotaris@example.org": True, "phone": 49305550199, "page": "/x"},
    )

    customer_erase(customer=person)

    assert Customer.objects.get(pk=other.pk).attributes == {"referred_by": "[erased]", "n": 1}
    event.refresh_from_db()
    assert event.properties == {"[erased]": True, "phone": "[erased]", "page": "/x"}


def test_nobody_without_an_identifier_is_looked_for():
    assert not Mentions.of([Customer(first_name="Zebulon", phone="12")])
