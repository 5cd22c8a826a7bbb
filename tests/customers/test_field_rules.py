"""The edit form, the API and the import read a customer's fields the same way: the same values
are accepted and refused, and the same normalised value is stored (customers.fields)."""

import csv
import datetime as dt
import io
import itertools

import pytest
from django.apps import apps as django_apps
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.fields import CUSTOMER_VALUE_FIELDS
from customers.importing import customers_import
from customers.models import Account, Customer
from tests.customers.factories import AccountFactory, CustomerFactory

pytestmark = pytest.mark.django_db

_numbers = itertools.count(1)


def _external_id() -> str:
    return f"PROBE-{next(_numbers)}"


def through_form(client, field: str, value: str) -> tuple[bool, object]:
    """(accepted, stored value) of the customer edit page creating a customer with `value`."""
    external_id = _external_id()
    name = "first_name" if field == "last_name" else "last_name"
    data = {"external_id": external_id, name: "Probe", field: value}
    if field == "external_id":
        data = {"last_name": "Probe", "external_id": value, "source": external_id}
    response = client.post(reverse("customers:customer_create"), data)
    return _stored(field, external_id, accepted=response.status_code == 302)


def through_api(client, field: str, value: str) -> tuple[bool, object]:
    external_id = _external_id()
    name = "first_name" if field == "last_name" else "last_name"
    data = {"external_id": external_id, name: "Probe", field: value}
    if field == "external_id":
        data = {"last_name": "Probe", "external_id": value, "source": external_id}
    response = client.post("/api/customers/", data, format="json")
    assert response.status_code in (201, 400), response.content
    if response.status_code == 400:
        assert field in response.data, response.data
    return _stored(field, external_id, accepted=response.status_code == 201)


def through_import(field: str, value: str) -> tuple[bool, object]:
    external_id = _external_id()
    out = io.StringIO()
    # CRLF: the writer then quotes a cell holding a lone CR as well.
    writer = csv.writer(out, lineterminator="\r\n")
    if field == "external_id":
        writer.writerows([["external_id", "last_name", "source"], [value, "Probe", external_id]])
    else:
        name = "first_name" if field == "last_name" else "last_name"
        writer.writerows([["external_id", name, field], [external_id, "Probe", value]])
    result = customers_import(stream=io.BytesIO(out.getvalue().encode()))
    if result.failed:
        assert result.errors[0].column == field or result.errors[0].column == "", result.errors
    accepted, stored = _stored(field, external_id, accepted=not result.failed)
    if field == "external_id" and not value.strip():
        # A row without any key is refused by the import (the form and the API have a name).
        return None, None
    return accepted, stored


def _stored(field: str, external_id: str, *, accepted: bool) -> tuple[bool, object]:
    lookup = {"source": external_id} if field == "external_id" else {"external_id": external_id}
    customer = Customer.objects.filter(**lookup).first()
    assert (customer is not None) == accepted
    if customer is None:
        return False, None
    value = getattr(customer, field)
    customer.delete()  # the next path may store the same unique value
    return True, value


@pytest.fixture
def admin_page(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def admin_api(api_client_for, superuser):
    return api_client_for(superuser)


# --- Country ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed,stored",
    [("Germany", "DE"), ("Sweden", "SE"), ("Deutschland", "DE"), ("sverige", "SE"),
     ("GE", "GE"), ("deu", "DE"), (" united kingdom ", "GB")],
)  # fmt: skip
def test_a_country_is_stored_as_its_code_whichever_way_it_is_typed(
    admin_page, admin_api, typed, stored
):
    assert through_form(admin_page, "country", typed) == (True, stored)
    assert through_api(admin_api, "country", typed) == (True, stored)
    assert through_import("country", typed) == (True, stored)


def test_a_name_that_is_no_country_is_refused_everywhere_naming_the_field(admin_page, admin_api):
    response = admin_page.post(
        reverse("customers:customer_create"), {"last_name": "Probe", "country": "Narnia"}
    )
    assert "Narnia" in str(response.context["form"].errors["country"])
    response = admin_api.post("/api/customers/", {"last_name": "P", "country": "Narnia"})
    assert "is not a country" in str(response.data["country"])
    result = customers_import(stream=io.BytesIO(b"external_id,country\nC1,Narnia\n"))
    assert (result.errors[0].column, result.errors[0].value) == ("country", "Narnia")


def test_the_edit_form_offers_a_picker_of_real_countries(admin_page):
    form = admin_page.get(reverse("customers:customer_create")).context["form"]

    choices = dict(form.fields["country"].choices)
    assert choices["DE"] == "Germany" and choices["GE"] == "Georgia" and "XX" not in choices


def test_an_account_country_follows_the_same_rule(admin_api):
    response = admin_api.post("/api/accounts/", {"name": "Acme", "country": "Österreich"})

    assert response.status_code == 201, response.data
    assert Account.objects.get(name="Acme").country == "AT"


# --- Birth date -------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["2099-01-01", "1850-06-01", "1899-12-31"])
def test_a_birth_date_in_the_future_or_implausibly_old_is_refused_everywhere(
    admin_page, admin_api, typed
):
    assert through_form(admin_page, "birth_date", typed) == (False, None)
    assert through_api(admin_api, "birth_date", typed) == (False, None)
    assert through_import("birth_date", typed) == (False, None)


def test_tomorrow_is_no_birth_date_but_today_is(admin_api):
    today = timezone.localdate()
    tomorrow = (today + dt.timedelta(days=1)).isoformat()

    assert through_api(admin_api, "birth_date", tomorrow) == (False, None)
    assert through_api(admin_api, "birth_date", today.isoformat()) == (True, today)


# --- Phone and email --------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["030 1234567", "+49 (30) 123-4567", "0049 30 1234567"])
def test_a_phone_number_is_stored_in_e164_everywhere(admin_page, admin_api, typed):
    assert through_form(admin_page, "phone", typed) == (True, "+49301234567")
    assert through_api(admin_api, "phone", typed) == (True, "+49301234567")
    assert through_import("phone", typed) == (True, "+49301234567")


def test_an_email_keeps_its_local_part_and_gets_a_lower_case_domain_everywhere(
    admin_page, admin_api
):
    typed = "  Ann.Lee@EXAMPLE.Com "

    assert through_form(admin_page, "email", typed) == (True, "Ann.Lee@example.com")
    assert through_api(admin_api, "email", typed) == (True, "Ann.Lee@example.com")
    assert through_import("email", typed) == (True, "Ann.Lee@example.com")


def test_an_email_another_customer_has_in_other_letters_is_the_same_address_everywhere(
    admin_page, admin_api
):
    ann = CustomerFactory(email="ann@example.com", first_name="Ann")

    response = admin_page.post(
        reverse("customers:customer_create"), {"last_name": "X", "email": "ANN@Example.com"}
    )
    assert "already has this email" in str(response.context["form"].errors["email"])
    response = admin_api.post("/api/customers/", {"last_name": "X", "email": "ANN@Example.com"})
    assert "already has this email" in str(response.data["email"])
    response = admin_api.patch(
        f"/api/customers/{CustomerFactory().pk}/", {"email": "Ann@EXAMPLE.COM"}, format="json"
    )
    assert response.status_code == 400 and "email" in response.data
    # The import reads the same address as the same customer: it updates Ann.
    result = customers_import(stream=io.BytesIO(b"email,first_name\nANN@Example.COM,Annie\n"))
    assert result.counts()["updated"] == 1
    ann.refresh_from_db()
    assert ann.first_name == "Annie"
    assert Customer.objects.filter(email__iexact="ann@example.com").count() == 1


# --- One rule, three paths: a property test ---------------------------------------------------

hostile = st.sampled_from(
    ["", " ", "\x00", "a\x00b", "\t", "\u200b", "é", "ß", "İ", "<script>", "'; DROP TABLE x;--",
     "=1+2", "x" * 300, "\u202e", "😀", "\\", '"', "\r\n", "NaN", "0", "-1"]
)  # fmt: skip
plausible = {
    "country": st.sampled_from(
        ["DE", "de", "GE", "Germany", "germany ", "Georgia", "DEU", "Sverige", "UK", "XX", "Narnia",
         "United States", "Côte d'Ivoire", "EL", "ZZZ"]
    ),
    "birth_date": st.one_of(
        st.dates(min_value=dt.date(1800, 1, 1), max_value=dt.date(2200, 1, 1)).map(str),
        st.sampled_from(["19800101", "1980-13-01", "1980-02-30", "1980-01-01T10:00:00",
                         "01/02/1980", "yesterday"]),
    ),
    "phone": st.sampled_from(
        ["030 1234567", "+49 30 1234567", "+1 202 555 0143", "12", "+999 1", "phone", "0" * 41,
         "+49 (30) 1234567 ext. 5", "1-800-FLOWERS"]
    ),
    "email": st.one_of(
        st.emails().map(str),
        st.sampled_from(["a@b", "a@@b.de", "A@EXAMPLE.COM", " a@b.de ", "a b@c.de", "@x.de"]),
    ),
    "gender": st.sampled_from(["female", "Female", "FEMALE", "Prefers not to say", "robot", "m"]),
    "income_band": st.sampled_from(["low", "Upper middle", "upper_middle", "rich"]),
    "language": st.sampled_from(["en", "EN", "pt-br", "pt_BR", "english", "e", "zh-hant-tw"]),
}  # fmt: skip


@st.composite
def field_and_value(draw):
    field = draw(st.sampled_from(CUSTOMER_VALUE_FIELDS))
    strategies = [st.text(max_size=40), hostile]
    if field in plausible:
        strategies.append(plausible[field])
    return field, draw(st.one_of(*strategies))


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=field_and_value())
def test_the_form_the_api_and_the_import_accept_refuse_and_store_alike(admin_page, admin_api, case):
    field, value = case

    by_form = through_form(admin_page, field, value)
    by_api = through_api(admin_api, field, value)
    by_import = through_import(field, value)

    assert by_form == by_api, (field, value)
    if by_import != (None, None):
        assert by_import == by_form, (field, value)


# --- Stored data ------------------------------------------------------------------------------


def test_stored_phones_become_e164_and_country_codes_iso_with_the_hashes_unchanged():
    migration = __import__("customers.migrations.0010_phones_e164_country_codes", fromlist=["x"])
    typed = CustomerFactory(phone="030 1234567", country="de")
    junk = CustomerFactory(phone="call reception", country="UK")
    unknown = CustomerFactory(phone="", country="XX")
    account = AccountFactory(country="el")
    Customer.objects.filter(pk=unknown.pk).update(country="XX")
    hashes = dict(Customer.objects.values_list("pk", "phone_hash"))

    migration.phones_to_e164(django_apps, None)
    migration.countries_to_codes(django_apps, None)

    stored = {c.pk: (c.phone, c.country) for c in Customer.objects.all()}
    assert stored[typed.pk] == ("+49301234567", "DE")
    assert stored[junk.pk] == ("call reception", "GB")
    assert stored[unknown.pk] == ("", "XX")  # never guessed
    assert dict(Customer.objects.values_list("pk", "phone_hash")) == hashes
    account.refresh_from_db()
    assert account.country == "GR"
