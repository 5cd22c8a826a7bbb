"""The customers REST API as a client sees it: filters, search, ordering, pages, sign-in,
figures, consent, validation and query counts."""

import base64
import datetime as dt
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from customers.models import Customer, Purchase, Tag
from privacy.models import AuditEntry
from privacy.services import consent_grant, consent_withdraw
from tests.customers.factories import (
    AccountFactory,
    CustomerFactory,
    NoteFactory,
    PurchaseFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def sales_client(api_client_for, sales_user):
    return api_client_for(sales_user)


@pytest.fixture
def admin_client(api_client_for, superuser):
    return api_client_for(superuser)


def ids(response) -> list[int]:
    return [item["id"] for item in response.data["results"]]


def all_pages(client, url: str) -> list[int]:
    seen: list[int] = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.data
        seen += ids(response)
        url = response.data["next"]
    return seen


# --- Filtering, search, ordering, pages -------------------------------------------------------


def test_customers_filter_by_country_city_and_tag(admin_client):
    vip = Tag.objects.create(name="VIP")
    wanted = CustomerFactory(country="FR", city="Lyon")
    wanted.tags.add(vip)
    CustomerFactory(country="FR", city="Paris").tags.add(vip)
    CustomerFactory(country="DE", city="Lyon")

    response = admin_client.get("/api/customers/", {"country": "fr", "city": "Lyon", "tag": "vip"})

    assert response.status_code == 200
    assert ids(response) == [wanted.pk]


def test_customers_filter_by_email_regardless_of_case_and_by_lifetime_value(admin_client):
    rich = CustomerFactory(email="Ann@Example.org", lifetime_value=Decimal("900"))
    CustomerFactory(lifetime_value=Decimal("10"))

    by_email = admin_client.get("/api/customers/", {"email": "ann@example.ORG"})
    by_value = admin_client.get("/api/customers/", {"lifetime_value_min": "500"})

    assert ids(by_email) == [rich.pk]
    assert ids(by_value) == [rich.pk]


def test_customers_filter_by_creation_time_range(admin_client):
    old = CustomerFactory()
    Customer.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=30))
    new = CustomerFactory()
    since = (timezone.now() - dt.timedelta(days=1)).isoformat()

    response = admin_client.get("/api/customers/", {"created_at_after": since})

    assert ids(response) == [new.pk]


def test_purchases_filter_by_channel_and_purchase_time(admin_client):
    customer = CustomerFactory()
    recent_store = PurchaseFactory(
        customer=customer, channel="store", purchased_at=timezone.now() - dt.timedelta(days=2)
    )
    PurchaseFactory(customer=customer, channel="online", purchased_at=timezone.now())
    PurchaseFactory(
        customer=customer, channel="store", purchased_at=timezone.now() - dt.timedelta(days=90)
    )
    since = (timezone.now() - dt.timedelta(days=7)).isoformat()

    response = admin_client.get(
        "/api/purchases/", {"channel": "store", "purchased_at_after": since}
    )

    assert ids(response) == [recent_store.pk]


def test_filter_with_a_bad_value_is_a_400_naming_the_filter(admin_client):
    bad_date = admin_client.get("/api/purchases/", {"purchased_at_after": "last tuesday"})
    bad_choice = admin_client.get("/api/purchases/", {"channel": "carrier-pigeon"})
    bad_number = admin_client.get("/api/customers/", {"lifetime_value_min": "lots"})

    assert bad_date.status_code == 400 and "purchased_at" in str(bad_date.data)
    assert bad_choice.status_code == 400 and "channel" in bad_choice.data
    assert bad_number.status_code == 400 and "lifetime_value" in str(bad_number.data)


def test_search_finds_customers_by_last_name_and_email_prefix(admin_client):
    found = CustomerFactory(last_name="Okonkwo", email="chi@example.org")
    CustomerFactory(last_name="Smith", email="smith@example.org")

    by_name = admin_client.get("/api/customers/", {"search": "okonk"})
    by_email = admin_client.get("/api/customers/", {"search": "chi@"})

    assert ids(by_name) == [found.pk]
    assert ids(by_email) == [found.pk]


def test_ordering_by_lifetime_value_descending(admin_client):
    low = CustomerFactory(lifetime_value=Decimal("5"))
    high = CustomerFactory(lifetime_value=Decimal("500"))
    middle = CustomerFactory(lifetime_value=Decimal("50"))

    response = admin_client.get("/api/customers/", {"ordering": "-lifetime_value"})

    assert ids(response) == [high.pk, middle.pk, low.pk]


def test_ordering_by_an_unindexed_field_is_refused_by_name(admin_client):
    response = admin_client.get("/api/customers/", {"ordering": "email"})

    assert response.status_code == 400
    assert "email" in response.data["ordering"][0]


def test_cursor_pages_walk_every_customer_once(admin_client):
    customers = CustomerFactory.create_batch(7)

    seen = all_pages(admin_client, "/api/customers/?page_size=3")

    assert sorted(seen) == sorted(c.pk for c in customers)
    assert len(seen) == len(set(seen))


def test_cursor_pages_ordered_by_a_value_with_ties_still_walk_every_customer_once(admin_client):
    customers = [CustomerFactory(lifetime_value=Decimal(n % 3)) for n in range(8)]

    seen = all_pages(admin_client, "/api/customers/?page_size=3&ordering=lifetime_value")

    assert sorted(seen) == sorted(c.pk for c in customers)
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize(
    ("ordering", "position"),
    [("-id", "abc"), ("-id", "1\x00"), ("last_name", "Lind\x00"), ("lifetime_value", "many")],
)
def test_a_cursor_forged_with_a_position_of_another_type_is_an_invalid_cursor(
    admin_client, ordering, position
):
    CustomerFactory.create_batch(2)
    cursor = base64.b64encode(f"p={position}".encode()).decode()

    response = admin_client.get("/api/customers/", {"ordering": ordering, "cursor": cursor})

    assert response.status_code == 404
    assert response.data["detail"] == "Invalid cursor"


def test_a_cursor_by_text_still_walks_every_customer_once(admin_client):
    customers = CustomerFactory.create_batch(5)

    seen = all_pages(admin_client, "/api/customers/?page_size=2&ordering=last_name")

    assert sorted(seen) == sorted(c.pk for c in customers)


def test_a_page_carries_a_cursor_not_a_page_number(admin_client):
    CustomerFactory.create_batch(3)

    response = admin_client.get("/api/customers/", {"page_size": 2})

    assert "cursor=" in response.data["next"]
    assert "count" not in response.data


# --- Sign-in ----------------------------------------------------------------------------------


def test_token_in_the_authorization_header_signs_in(sales_user):
    CustomerFactory(owner=sales_user)
    token = Token.objects.create(user=sales_user)
    client = APIClient()

    response = client.get("/api/customers/", HTTP_AUTHORIZATION=f"Token {token.key}")

    assert response.status_code == 200
    assert len(response.data["results"]) == 1


def test_a_wrong_token_is_turned_away(sales_user):
    client = APIClient()

    response = client.get("/api/customers/", HTTP_AUTHORIZATION="Token not-a-real-key")

    assert response.status_code in (401, 403)


def test_a_session_write_without_the_csrf_token_is_refused(sales_user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(sales_user)

    response = client.post("/api/customers/", {"first_name": "Eve"}, format="json")

    assert response.status_code == 403
    assert "CSRF" in str(response.data)
    assert not Customer.objects.filter(first_name="Eve").exists()


# --- Customer detail: figures and consent -----------------------------------------------------


def test_posting_a_purchase_updates_the_customers_figures_in_the_detail(sales_client, sales_user):
    customer = CustomerFactory(owner=sales_user)
    first, last = timezone.now() - dt.timedelta(days=20), timezone.now() - dt.timedelta(days=2)
    for at, amount in ((first, "30.00"), (last, "90.00")):
        response = sales_client.post(
            "/api/purchases/",
            {"customer": customer.pk, "purchased_at": at.isoformat(), "amount": amount},
            format="json",
        )
        assert response.status_code == 201, response.data

    detail = sales_client.get(f"/api/customers/{customer.pk}/").data

    assert Decimal(detail["lifetime_value"]) == Decimal("120.00")
    assert detail["purchase_count"] == 2
    assert Decimal(detail["average_order_value"]) == Decimal("60.00")
    assert dt.datetime.fromisoformat(detail["first_purchase_at"]) == first
    assert dt.datetime.fromisoformat(detail["last_purchase_at"]) == last


def test_customer_detail_shows_the_current_consent_per_purpose(sales_client, sales_user):
    customer = CustomerFactory(owner=sales_user)
    consent_grant(customer=customer, purpose="email_marketing", source="form")
    consent_grant(customer=customer, purpose="sms_marketing", source="form")
    consent_withdraw(customer=customer, purpose="sms_marketing", source="unsubscribe")

    consents = sales_client.get(f"/api/customers/{customer.pk}/").data["consents"]

    assert consents["email_marketing"]["state"] == "granted"
    assert consents["sms_marketing"]["state"] == "withdrawn"
    assert consents["profiling"] == {"state": "unknown", "changed_at": None}


def test_reading_a_customer_is_written_to_the_audit_log(sales_client, sales_user):
    customer = CustomerFactory(owner=sales_user)

    sales_client.get(f"/api/customers/{customer.pk}/")

    assert AuditEntry.objects.filter(
        actor=sales_user, action="view", object_kind="customer", object_id=customer.pk
    ).exists()


# --- Writes and ownership ---------------------------------------------------------------------


def test_sales_user_creating_a_customer_becomes_its_owner(sales_client, sales_user):
    response = sales_client.post(
        "/api/customers/",
        {"first_name": "Lena", "email": "lena@example.org", "tags": ["lead", "Lead", "spring"]},
        format="json",
    )

    assert response.status_code == 201, response.data
    customer = Customer.objects.get(pk=response.data["id"])
    assert customer.owner == sales_user
    assert sorted(response.data["tags"]) == ["lead", "spring"]


def test_sales_user_cannot_hand_a_new_customer_to_someone_else(sales_client, other_sales_user):
    response = sales_client.post(
        "/api/customers/", {"first_name": "Lena", "owner": other_sales_user.pk}, format="json"
    )

    assert response.status_code == 400
    assert "owner" in response.data


def test_admin_assigns_a_customer_to_a_salesperson(admin_client, sales_user):
    response = admin_client.post(
        "/api/customers/", {"first_name": "Lena", "owner": sales_user.pk}, format="json"
    )

    assert response.status_code == 201
    assert Customer.objects.get(pk=response.data["id"]).owner == sales_user


def test_sales_user_updates_their_customer(sales_client, sales_user):
    customer = CustomerFactory(owner=sales_user, city="Berlin")

    response = sales_client.patch(
        f"/api/customers/{customer.pk}/", {"city": "Bremen", "tags": ["vip"]}, format="json"
    )

    assert response.status_code == 200, response.data
    customer.refresh_from_db()
    assert customer.city == "Bremen"
    assert [t.name for t in customer.tags.all()] == ["vip"]


def test_note_is_changed_only_by_its_author(api_client_for, sales_user, other_sales_user, settings):
    settings.CRM_SALES_SEE_ALL = True
    note = NoteFactory(customer=CustomerFactory(owner=sales_user), author=sales_user)

    by_colleague = api_client_for(other_sales_user).patch(
        f"/api/notes/{note.pk}/", {"body": "mine now"}, format="json"
    )
    by_author = api_client_for(sales_user).patch(
        f"/api/notes/{note.pk}/", {"done": True}, format="json"
    )

    assert by_colleague.status_code == 403
    assert by_author.status_code == 200
    note.refresh_from_db()
    assert note.done and note.done_at is not None and note.body != "mine now"


# --- Validation: always a 400 naming the field ------------------------------------------------


def test_malformed_json_is_a_400(sales_client):
    response = sales_client.generic(
        "POST", "/api/customers/", '{"first_name": "Ann",', content_type="application/json"
    )

    assert response.status_code == 400
    assert "JSON" in str(response.data)


@pytest.mark.parametrize(
    "payload,field",
    [
        ({"birth_date": "yesterday"}, "birth_date"),
        ({"email": "not-an-email"}, "email"),
        ({"gender": "robot"}, "gender"),
        ({"country": "Narnia"}, "country"),
        ({"tags": "vip"}, "tags"),
        ({"attributes": ["a", "list"]}, "attributes"),
        ({"account": 99999999}, "account"),
        ({"account": "abc"}, "account"),
        ({"owner": 99999999}, "owner"),
        ({"first_name": "x" * 101}, "first_name"),
    ],
)
def test_customer_with_a_bad_field_is_a_400_naming_it(admin_client, payload, field):
    response = admin_client.post("/api/customers/", payload, format="json")

    assert response.status_code == 400
    assert field in response.data


def test_customer_with_an_account_of_another_salesperson_is_refused(sales_client, other_sales_user):
    account = AccountFactory(owner=other_sales_user)

    response = sales_client.post(
        "/api/customers/", {"first_name": "Ann", "account": account.pk}, format="json"
    )

    assert response.status_code == 400
    assert "account" in response.data


def test_duplicate_email_differing_only_by_case_is_refused(sales_client):
    CustomerFactory(email="ann@example.org")

    response = sales_client.post("/api/customers/", {"email": "ANN@Example.org"}, format="json")

    assert response.status_code == 400
    assert "email" in response.data


def test_changing_email_to_another_customers_is_refused(sales_client, sales_user):
    CustomerFactory(email="ann@example.org")
    customer = CustomerFactory(owner=sales_user, email="bob@example.org")

    response = sales_client.patch(
        f"/api/customers/{customer.pk}/", {"email": "Ann@example.org"}, format="json"
    )

    assert response.status_code == 400
    assert "email" in response.data


def test_duplicate_external_id_is_refused(sales_client):
    CustomerFactory(external_id="CRM-1")

    response = sales_client.post("/api/customers/", {"external_id": "CRM-1"}, format="json")

    assert response.status_code == 400
    assert "external_id" in response.data


@pytest.mark.parametrize(
    "change,field",
    [
        ({"amount": "abc"}, "amount"),
        ({"amount": "-5.00"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"quantity": 0}, "quantity"),
        ({"currency": "euro"}, "currency"),
        ({"channel": "fax"}, "channel"),
        ({"purchased_at": "soon"}, "purchased_at"),
        ({"product": 99999999}, "product"),
        ({"customer": 99999999}, "customer"),
        ({"external_id": "ORD-" + "9" * 100}, "external_id"),
    ],
)
def test_purchase_with_a_bad_field_is_a_400_naming_it(sales_client, sales_user, change, field):
    customer = CustomerFactory(owner=sales_user)
    payload = {
        "customer": customer.pk,
        "purchased_at": timezone.now().isoformat(),
        "amount": "9.99",
    }

    response = sales_client.post("/api/purchases/", {**payload, **change}, format="json")

    assert response.status_code == 400
    assert field in response.data


def test_purchase_with_a_known_order_number_is_refused(sales_client, sales_user):
    customer = CustomerFactory(owner=sales_user)
    payload = {
        "customer": customer.pk,
        "purchased_at": timezone.now().isoformat(),
        "amount": "9.99",
        "external_id": "ORD-7",
    }
    assert sales_client.post("/api/purchases/", payload, format="json").status_code == 201

    response = sales_client.post("/api/purchases/", payload, format="json")

    assert response.status_code == 400
    assert "external_id" in response.data
    assert Purchase.objects.filter(customer=customer).count() == 1


def test_the_same_purchase_posted_twice_is_stored_once(sales_client, sales_user):
    customer = CustomerFactory(owner=sales_user)
    payload = {"customer": customer.pk, "purchased_at": "2024-05-01T10:00:00Z", "amount": "9.99"}
    assert sales_client.post("/api/purchases/", payload, format="json").status_code == 201

    response = sales_client.post(
        "/api/purchases/", {**payload, "purchased_at": "2024-05-01T12:00:00+02:00"}, format="json"
    )

    assert response.status_code == 400
    assert Purchase.objects.filter(customer=customer).count() == 1


def test_note_without_customer_or_account_names_the_customer_field(sales_client):
    response = sales_client.post("/api/notes/", {"body": "Call back"}, format="json")

    assert response.status_code == 400
    assert "customer" in response.data


def test_product_with_a_taken_sku_is_refused(api_client_for, marketing_user):
    client = api_client_for(marketing_user)
    assert (
        client.post("/api/products/", {"sku": "A-1", "name": "A"}, format="json").status_code == 201
    )

    response = client.post("/api/products/", {"sku": "A-1", "name": "B"}, format="json")

    assert response.status_code == 400
    assert "sku" in response.data


# --- Query counts -----------------------------------------------------------------------------


def _queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    "url",
    ["/api/customers/", "/api/accounts/", "/api/purchases/", "/api/notes/", "/api/events/"],
)
def test_list_queries_do_not_grow_with_the_page_size(
    api_client_for, sales_user, url, django_assert_max_num_queries
):
    from tests.customers.factories import EventFactory

    tags = [Tag.objects.create(name=f"t{n}") for n in range(3)]
    account = AccountFactory(owner=sales_user)
    account.tags.set(tags)
    AccountFactory.create_batch(29, owner=sales_user)
    for _ in range(30):
        customer = CustomerFactory(owner=sales_user, account=account)
        customer.tags.set(tags)
        PurchaseFactory(customer=customer)
        NoteFactory(customer=customer, author=sales_user)
        EventFactory(customer=customer)
    client = api_client_for(sales_user)

    small = _queries_for(client, f"{url}?page_size=3")
    with django_assert_max_num_queries(small):
        response = client.get(f"{url}?page_size=30")

    assert len(response.data["results"]) == 30
    assert small <= 6


# --- Schema and docs --------------------------------------------------------------------------


def test_api_docs_page_runs_no_inline_script(client):
    response = client.get("/api/docs/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "<script>" not in html and "<style>" not in html
    assert 'src="/api/docs/?script="' in html
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]


def test_api_docs_init_script_is_served_as_javascript(client):
    response = client.get("/api/docs/", {"script": ""})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")


def test_openapi_schema_generates_without_warnings(tmp_path):
    from django.core.management import call_command

    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml")
    )

    assert "/api/customers/{id}/" in (tmp_path / "schema.yml").read_text()


@pytest.mark.parametrize("value", ["9.223372036854776e+18", "99999999999999999999", "1.5"])
def test_filter_by_an_id_that_is_no_database_id_is_a_400_naming_the_filter(admin_client, value):
    response = admin_client.get("/api/purchases/", {"customer": value})

    assert response.status_code == 400
    assert "customer" in response.data


def test_time_filter_with_a_large_utc_offset_finds_the_same_rows_as_in_utc(admin_client):
    purchase = PurchaseFactory(purchased_at=dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC))

    # 2024-05-01 07:00 UTC, written with an offset PostgreSQL cannot store.
    response = admin_client.get("/api/purchases/", {"purchased_at_after": "2024-05-02T03:00+20:00"})

    assert response.status_code == 200
    assert ids(response) == [purchase.pk]


def test_time_filter_that_leaves_the_calendar_in_utc_is_a_400_naming_the_filter(admin_client):
    response = admin_client.get("/api/purchases/", {"purchased_at_after": "0001-01-01T00:00+01:00"})

    assert response.status_code == 400
    assert "purchased_at" in str(response.data)
