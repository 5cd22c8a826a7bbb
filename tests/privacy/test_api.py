"""The consent ledger through the REST API: append and read only."""

import datetime as dt

import pytest
from django.core.cache import cache
from django.utils import timezone

from privacy.models import ConsentRecord, ConsentState, ConsentWording, Purpose
from privacy.services import consent_grant
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def privacy_client(api_client_for, privacy_user):
    return api_client_for(privacy_user)


@pytest.fixture
def customer():
    return CustomerFactory()


def test_privacy_officer_records_a_grant_and_the_state_follows(
    privacy_client, privacy_user, customer
):
    response = privacy_client.post(
        "/api/consents/",
        {
            "customer": customer.pk,
            "purpose": "email_marketing",
            "state": "granted",
            "ip_address": "203.0.113.9",
            "evidence": "paper form 12",
        },  # fmt: skip
        format="json",
    )

    assert response.status_code == 201, response.data
    record = ConsentRecord.objects.get(pk=response.data["id"])
    assert (record.state, record.source, record.actor) == ("granted", "api", privacy_user)
    assert record.ip_address == "203.0.113.9"
    assert ConsentState.objects.get(customer=customer, purpose="email_marketing").state == "granted"


def test_a_withdrawal_is_a_new_record_and_the_detail_shows_it(privacy_client, customer):
    consent_grant(customer=customer, purpose="email_marketing", source="form")

    response = privacy_client.post(
        "/api/consents/",
        {
            "customer": customer.pk,
            "purpose": "email_marketing",
            "state": "withdrawn",
            "source": "staff",
        },  # fmt: skip
        format="json",
    )

    assert response.status_code == 201
    assert ConsentRecord.objects.filter(customer=customer).count() == 2
    detail = privacy_client.get(f"/api/customers/{customer.pk}/").data
    assert detail["consents"]["email_marketing"]["state"] == "withdrawn"


def test_consent_recorded_in_the_past_keeps_its_time(privacy_client, customer):
    when = timezone.now() - dt.timedelta(days=40)

    response = privacy_client.post(
        "/api/consents/",
        {
            "customer": customer.pk,
            "purpose": "profiling",
            "state": "granted",
            "recorded_at": when.isoformat(),
        },  # fmt: skip
        format="json",
    )

    assert response.status_code == 201
    assert ConsentRecord.objects.get(pk=response.data["id"]).recorded_at == when


def test_consent_list_filters_by_customer_and_purpose(privacy_client, customer):
    wanted = consent_grant(customer=customer, purpose="sms_marketing", source="form")
    consent_grant(customer=customer, purpose="email_marketing", source="form")
    consent_grant(customer=CustomerFactory(), purpose="sms_marketing", source="form")

    response = privacy_client.get(
        "/api/consents/", {"customer": customer.pk, "purpose": "sms_marketing"}
    )

    assert [r["id"] for r in response.data["results"]] == [wanted.pk]


def test_consent_list_filter_by_a_customer_id_beyond_the_database_range_is_a_400(privacy_client):
    response = privacy_client.get("/api/consents/", {"customer": "9.3e18"})

    assert response.status_code == 400
    assert "customer" in response.data


def test_sales_see_the_consent_records_of_their_own_customers_only(
    api_client_for, sales_user, customer
):
    own = CustomerFactory(owner=sales_user)
    visible = consent_grant(customer=own, purpose="email_marketing", source="form")
    consent_grant(customer=customer, purpose="email_marketing", source="form")

    response = api_client_for(sales_user).get("/api/consents/")

    assert [r["id"] for r in response.data["results"]] == [visible.pk]


def test_consent_records_cannot_be_changed_or_removed(privacy_client, customer):
    record = consent_grant(customer=customer, purpose="email_marketing", source="form")

    patch = privacy_client.patch(
        f"/api/consents/{record.pk}/", {"state": "withdrawn"}, format="json"
    )
    delete = privacy_client.delete(f"/api/consents/{record.pk}/")

    assert patch.status_code in (404, 405)
    assert delete.status_code in (404, 405)
    assert ConsentRecord.objects.get(pk=record.pk).state == "granted"


def test_sales_cannot_record_consent(api_client_for, sales_user):
    customer = CustomerFactory(owner=sales_user)

    response = api_client_for(sales_user).post(
        "/api/consents/",
        {"customer": customer.pk, "purpose": "email_marketing", "state": "granted"},
        format="json",
    )

    assert response.status_code == 403
    assert not ConsentRecord.objects.exists()


@pytest.mark.parametrize(
    "change,field",
    [
        ({"purpose": "telepathy"}, "purpose"),
        ({"state": "maybe"}, "state"),
        ({"source": "rumour"}, "source"),
        ({"customer": 99999999}, "customer"),
        ({"ip_address": "not-an-ip"}, "ip_address"),
        ({"recorded_at": "2999-01-01T00:00:00Z"}, "recorded_at"),
        ({"wording": 99999999}, "wording"),
    ],
)
def test_consent_with_a_bad_field_is_a_400_naming_it(privacy_client, customer, change, field):
    payload = {"customer": customer.pk, "purpose": "email_marketing", "state": "granted"}

    response = privacy_client.post("/api/consents/", {**payload, **change}, format="json")

    assert response.status_code == 400
    assert field in response.data
    assert not ConsentRecord.objects.exists()


def test_wording_of_another_purpose_is_refused(privacy_client, customer):
    wording = ConsentWording.objects.create(
        purpose_id="sms_marketing", version="1", text="Texts", effective_from=dt.date(2024, 1, 1)
    )

    response = privacy_client.post(
        "/api/consents/",
        {
            "customer": customer.pk,
            "purpose": "email_marketing",
            "state": "granted",
            "wording": wording.pk,
        },  # fmt: skip
        format="json",
    )

    assert response.status_code == 400
    assert "wording" in response.data


def test_purposes_are_listed_and_read_only(privacy_client):
    listed = privacy_client.get("/api/purposes/")
    created = privacy_client.post("/api/purposes/", {"code": "x", "name": "X"}, format="json")

    assert {p["code"] for p in listed.data} == set(Purpose.objects.values_list("code", flat=True))
    assert created.status_code == 405
