"""Merging two records of the same person into one."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from customers.models import Customer, Event, Note, Purchase, Tag
from customers.services import customer_merge, customer_stats_refresh
from privacy.models import ConsentRecord, ConsentState
from privacy.services import consent_grant, consent_withdraw
from tests.customers.factories import CustomerFactory, EventFactory, NoteFactory, PurchaseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def target(sales_user):
    customer = CustomerFactory(
        owner=sales_user, email="anna@example.com", phone="", external_id="A-1"
    )
    PurchaseFactory(customer=customer, amount=Decimal("100.00"))
    customer_stats_refresh(customer_ids=[customer.pk])
    return customer


@pytest.fixture
def duplicate(sales_user):
    customer = CustomerFactory(
        owner=sales_user, email="anna.private@example.com", phone="+4930999", external_id="A-2"
    )
    customer.tags.add(Tag.objects.create(name="newsletter"))
    PurchaseFactory(customer=customer, amount=Decimal("50.00"))
    PurchaseFactory(customer=customer, amount=Decimal("30.00"))
    EventFactory(customer=customer, type="page_view")
    NoteFactory(customer=customer, body="Prefers phone calls.")
    return customer


def test_merge_moves_purchases_events_notes_and_tags_to_the_target(target, duplicate, sales_user):
    merged = customer_merge(target=target, duplicate=duplicate, actor=sales_user)

    assert not Customer.objects.filter(pk=duplicate.pk).exists()
    assert Purchase.objects.filter(customer=merged).count() == 3
    assert Event.objects.filter(customer=merged, type="page_view").exists()
    assert Note.objects.get(customer=merged).body == "Prefers phone calls."
    assert [t.name for t in merged.tags.all()] == ["newsletter"]


def test_merge_recomputes_the_figures(target, duplicate, sales_user):
    merged = customer_merge(target=target, duplicate=duplicate, actor=sales_user)

    assert merged.lifetime_value == Decimal("180.00")
    assert merged.purchase_count == 3
    assert merged.average_order_value == Decimal("60.00")


def test_merge_keeps_the_targets_values_and_fills_its_blanks(target, duplicate, sales_user):
    merged = customer_merge(target=target, duplicate=duplicate, actor=sales_user)

    assert merged.email == "anna@example.com"
    assert merged.external_id == "A-1"
    assert merged.phone == "+4930999"


def test_merge_moves_the_consent_ledger_unchanged_and_rederives_the_state(
    target, duplicate, sales_user
):
    consent_withdraw(customer=target, purpose="email_marketing", source="staff")
    newer = consent_grant(
        customer=duplicate, purpose="email_marketing", source="form", evidence="signup form"
    )
    before = ConsentRecord.objects.filter(customer=duplicate).values(
        "id", "state", "recorded_at", "source", "evidence"
    )
    before = list(before)

    merged = customer_merge(target=target, duplicate=duplicate, actor=sales_user)

    moved = list(
        ConsentRecord.objects.filter(pk=newer.pk).values(
            "id", "state", "recorded_at", "source", "evidence"
        )
    )
    assert moved == before
    assert ConsentRecord.objects.filter(customer=merged).count() == 2
    assert ConsentState.objects.get(customer=merged, purpose="email_marketing").state == "granted"


def test_merge_is_recorded_on_the_timeline(client, target, duplicate, sales_user):
    customer_merge(target=target, duplicate=duplicate, actor=sales_user)
    client.force_login(sales_user)

    page = client.get(reverse("customers:customer_detail", args=[target.pk])).content.decode()

    event = Event.objects.get(customer=target, type="customer_merged")
    assert event.properties["merged_customer_id"] == duplicate.pk
    assert event.properties["moved"]["purchases"] == 2
    assert f"Merged with customer {duplicate.pk}" in page


def test_a_customer_cannot_be_merged_into_itself(target, sales_user):
    with pytest.raises(ValidationError):
        customer_merge(target=target, duplicate=target, actor=sales_user)


def test_merging_through_the_page_asks_for_confirmation(client, target, duplicate, sales_user):
    client.force_login(sales_user)
    url = reverse("customers:customer_merge", args=[target.pk])

    unconfirmed = client.post(url, {"duplicate": duplicate.pk})
    assert unconfirmed.status_code == 200 and 'id="confirmation"' in unconfirmed.content.decode()
    assert Customer.objects.filter(pk=duplicate.pk).exists()

    confirmed = client.post(url, {"duplicate": duplicate.pk, "confirmed": "yes"})

    assert confirmed.status_code == 302
    assert not Customer.objects.filter(pk=duplicate.pk).exists()


def test_merging_with_an_unknown_number_names_the_field(client, target, sales_user):
    client.force_login(sales_user)

    response = client.post(
        reverse("customers:customer_merge", args=[target.pk]),
        {"duplicate": "999999", "confirm": "on"},
    )

    assert "Choose a customer you may see from the list." in response.content.decode()
