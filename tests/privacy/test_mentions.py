"""An erasure takes the person out of free text about others, in the forms people write them,
and leaves the rest of the text (and people with a similar name) alone."""

import pytest
from django.apps import apps
from django.db import models
from django.test.utils import isolate_apps

from customers.models import Customer, Note
from privacy.erasure import customer_erase
from privacy.mentions import Mentions, personal_data_text_fields_undecided
from tests.customers.factories import AccountFactory, CustomerFactory, EventFactory, NoteFactory


@pytest.fixture
def person(db):
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
        "030 555 0199",
        "030/5550199",
    ],
)
@pytest.mark.django_db
def test_a_note_about_someone_else_loses_each_way_of_writing_the_person(person, written):
    account = AccountFactory()
    note = NoteFactory(customer=None, account=account, body=f"Ask {written} about the order.")

    customer_erase(customer=person)

    assert Note.objects.get(pk=note.pk).body == "Ask [erased] about the order."


@pytest.mark.django_db
def test_a_namesake_by_first_name_only_and_longer_numbers_are_left_alone(person):
    other = CustomerFactory(first_name="Zebulon", last_name="Other")
    body = "Zebulon Other ordered 4930555019912 items."
    note = NoteFactory(customer=other, body=body)

    customer_erase(customer=person)

    assert Note.objects.get(pk=note.pk).body == body


@pytest.mark.django_db
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


def test_every_text_field_is_either_searched_by_erasure_or_said_to_name_no_one():
    assert personal_data_text_fields_undecided() == [], (
        "Register the fields with privacy.mentions.personal_data_mentions_register() or declare "
        "why they cannot mention a person with personal_data_mentions_exempt()"
    )


@isolate_apps("privacy")
def test_a_new_free_text_field_is_reported_until_someone_decides_about_it():
    class Complaint(models.Model):
        kind = models.CharField(max_length=8, choices=[("a", "A")])
        text = models.TextField()

        class Meta:
            app_label = "privacy"

        def __str__(self) -> str:
            return self.text

    candidates = [*apps.get_models(include_auto_created=True), Complaint]

    assert personal_data_text_fields_undecided(candidates) == ["privacy.complaint.text"]
