"""Behaviour of the CSV import of customers and purchases."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.utils import timezone

from customers.importing import (
    ImportFileError,
    customers_import,
    purchase_dedup_key,
    purchases_import,
)
from customers.models import Customer, Product, Purchase
from tests.customers.factories import CustomerFactory, PurchaseFactory

pytestmark = pytest.mark.django_db


def import_customers(text: str | bytes, **options):
    data = text.encode() if isinstance(text, str) else text
    return customers_import(stream=io.BytesIO(data), **options)


def import_purchases(text: str | bytes, **options):
    data = text.encode() if isinstance(text, str) else text
    return purchases_import(stream=io.BytesIO(data), **options)


def errors_of(result) -> list[tuple[int, str]]:
    return [(e.line, e.column) for e in result.errors]


@pytest.fixture
def known_customer():
    return CustomerFactory(external_id="C1", email="Ann@Example.com", first_name="Ann")


# Customers


def test_new_customers_are_created_with_their_fields():
    result = import_customers(
        "external_id,email,first_name,country,gender,birth_date\n"
        "C1,ann@example.com,Ann,de,Female,1990-04-01\n"
        "C2,bob@example.com,Bob,FR,male,19851231\n"
    )

    assert result.counts() == {"read": 2, "created": 2, "updated": 0, "unchanged": 0, "failed": 0}
    ann = Customer.objects.get(external_id="C1")
    assert (ann.email, ann.country, ann.gender) == ("ann@example.com", "DE", "female")
    assert Customer.objects.get(external_id="C2").birth_date == dt.date(1985, 12, 31)


def test_importing_the_same_customers_twice_changes_nothing_the_second_time():
    text = "external_id,email,tags,attr.size\nC1,ann@example.com,vip;new,42\nC2,,,\n"
    import_customers(text)

    second = import_customers(text)

    assert second.counts() == {"read": 2, "created": 0, "updated": 0, "unchanged": 2, "failed": 0}
    assert Customer.objects.count() == 2


def test_customer_is_updated_by_external_id(known_customer):
    result = import_customers("external_id,first_name,city\nC1,Anna,Hamburg\n")

    assert result.updated == 1
    known_customer.refresh_from_db()
    assert (known_customer.first_name, known_customer.city) == ("Anna", "Hamburg")


def test_customer_without_external_id_is_matched_by_email_ignoring_case(known_customer):
    result = import_customers("email,last_name\nann@EXAMPLE.com,Lovelace\n")

    assert result.updated == 1
    known_customer.refresh_from_db()
    assert known_customer.last_name == "Lovelace"


def test_empty_cells_leave_stored_values_alone(known_customer):
    import_customers("external_id,first_name,email\nC1,,\n")

    known_customer.refresh_from_db()
    assert (known_customer.first_name, known_customer.email) == ("Ann", "Ann@Example.com")


def test_tags_are_added_and_custom_attributes_merged(known_customer):
    known_customer.attributes = {"size": "40", "pet": "cat"}
    known_customer.save(update_fields=["attributes"])

    import_customers("external_id,tags,attr.size\nC1,vip; newsletter ;vip,42\n")

    known_customer.refresh_from_db()
    assert set(known_customer.tags.values_list("name", flat=True)) == {"vip", "newsletter"}
    assert known_customer.attributes == {"size": "42", "pet": "cat"}


def test_customer_cells_with_tabs_backslashes_line_breaks_and_accents_are_stored_as_written():
    result = import_customers(
        "external_id,first_name,city,tags,attr.note\n"
        'C1,"A\tB","Köln\\Nord","grün;a\\b","zwei\nZeilen"\n'
        "C2,\\N,,,\n"
    )

    assert result.counts() == {"read": 2, "created": 2, "updated": 0, "unchanged": 0, "failed": 0}
    first = Customer.objects.get(external_id="C1")
    assert (first.first_name, first.city) == ("A\tB", "Köln\\Nord")
    assert sorted(first.tags.values_list("name", flat=True)) == ["a\\b", "grün"]
    assert first.attributes == {"note": "zwei\nZeilen"}
    assert Customer.objects.get(external_id="C2").first_name == "\\N"


def test_header_with_byte_order_mark_is_understood():
    result = import_customers("\ufeffexternal_id,email\nC1,ann@example.com\n".encode("utf-8"))

    assert result.created == 1
    assert Customer.objects.filter(external_id="C1").exists()


def test_columns_named_differently_are_read_through_the_map():
    result = import_customers(
        "Kundennummer,E-Mail,Vorname,Größe\nK7,kai@example.com,Kai,44\n",
        column_map={
            "external_id": "Kundennummer",
            "email": "E-Mail",
            "first_name": "Vorname",
            "attr.size": "Größe",
        },
    )

    assert result.created == 1
    kai = Customer.objects.get(external_id="K7")
    assert (kai.email, kai.first_name, kai.attributes) == ("kai@example.com", "Kai", {"size": "44"})


def test_birth_dates_in_a_given_format_are_read():
    import_customers("external_id,birth_date\nC1,31/12/1980\n", date_format="%d/%m/%Y")

    assert Customer.objects.get(external_id="C1").birth_date == dt.date(1980, 12, 31)


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("C2,not-an-email,DE,female", "email", "not a valid email"),
        ("C2,b@example.com,Narnia,female", "country", "not a country"),
        ("C2,b@example.com,DE,sometimes", "gender", "not a gender"),
        (",,DE,female", "external_id", "required"),
        ("C2,b@example.com,DE", "", "expected 4 fields"),
    ],
)
def test_bad_customer_row_is_reported_and_the_others_go_in(row, column, reason):
    result = import_customers(
        f"external_id,email,country,gender\nC1,a@example.com,DE,female\n{row}\nC3,c@example.com,FR,male\n"
    )

    assert result.counts() == {"read": 3, "created": 2, "updated": 0, "unchanged": 0, "failed": 1}
    [error] = result.errors
    assert (error.line, error.column) == (3, column)
    assert reason in error.reason
    assert set(Customer.objects.values_list("external_id", flat=True)) == {"C1", "C3"}


def test_customer_repeated_in_the_file_is_reported_as_duplicate():
    result = import_customers(
        "external_id,email\nC1,a@example.com\nC2,b@example.com\nC1,c@example.com\n", batch_size=2
    )

    assert errors_of(result) == [(4, "external_id")]
    assert "line 2" in result.errors[0].reason
    assert Customer.objects.count() == 2


def test_email_repeated_in_later_batches_is_reported_against_its_first_line():
    result = import_customers(
        "external_id,email\n"
        "C1,ann@example.com\nC2,bob@example.com\n"
        "C3,ANN@example.com\nC4,carl@example.com\n"
        "C5,Bob@Example.com\nC6,ann@example.com\n",
        batch_size=2,
    )

    assert errors_of(result) == [(4, "email"), (6, "email"), (7, "email")]
    assert [e.reason for e in result.errors] == [
        "duplicate within the file: line 2 has the same email",
        "duplicate within the file: line 3 has the same email",
        "duplicate within the file: line 2 has the same email",
    ]
    assert sorted(Customer.objects.values_list("external_id", flat=True)) == ["C1", "C2", "C4"]


def test_email_of_another_customer_is_refused(known_customer):
    CustomerFactory(external_id="C2", email="bob@example.com")

    result = import_customers("external_id,email\nC2,ann@example.com\n")

    assert errors_of(result) == [(2, "email")]
    assert Customer.objects.get(external_id="C2").email == "bob@example.com"


def test_line_numbers_count_lines_inside_quoted_cells():
    result = import_customers(
        'external_id,first_name,email\nC1,"two\nlines",a@example.com\nC2,x,bad\n'
    )

    assert errors_of(result) == [(4, "email")]


def test_line_that_is_not_utf8_is_reported():
    result = import_customers(b"external_id,first_name\nC1,Ann\nC2,J\xe9r\xf4me\n")

    assert result.created == 1
    assert errors_of(result) == [(3, "")]
    assert "UTF-8" in result.errors[0].reason


def test_customers_created_by_a_sales_user_are_owned_by_them(sales_user):
    import_customers("external_id\nC1\n", user=sales_user)

    assert Customer.objects.get(external_id="C1").owner == sales_user


def test_sales_user_cannot_update_a_customer_owned_by_someone_else(sales_user, other_sales_user):
    CustomerFactory(external_id="C1", first_name="Ann", owner=other_sales_user)

    result = import_customers("external_id,first_name\nC1,Mallory\n", user=sales_user)

    assert result.failed == 1
    assert "another user" in result.errors[0].reason
    assert Customer.objects.get(external_id="C1").first_name == "Ann"


@pytest.mark.parametrize(
    ("header", "column_map", "message"),
    [
        ("first_name,city", {}, "external_id"),
        ("external_id", {"email": "Mail"}, "'Mail'"),
        ("external_id", {"shoe_size": "x"}, "unknown field"),
        ("", {}, "empty"),
    ],
)
def test_file_whose_header_cannot_work_is_refused_as_a_whole(header, column_map, message):
    with pytest.raises(ImportFileError, match=message):
        import_customers(f"{header}\n" if header else "", column_map=column_map)


# Purchases


PURCHASES = (
    "customer_external_id,external_id,purchased_at,amount,currency,quantity,channel,product_sku,category\n"
    "C1,O1,2024-01-02T10:00:00+01:00,12.50,eur,1,online,SKU-1,shoes\n"
    "C1,,20240103,10,EUR,2,Store,,\n"
)


def test_purchases_are_created_and_the_customer_figures_refreshed(known_customer):
    result = import_purchases(PURCHASES)

    assert result.counts() == {"read": 2, "created": 2, "updated": 0, "unchanged": 0, "failed": 0}
    first = Purchase.objects.get(external_id="O1")
    assert first.amount == Decimal("12.50")
    assert first.currency == "EUR"
    assert first.purchased_at == dt.datetime(2024, 1, 2, 9, 0, tzinfo=dt.UTC)
    assert first.product == Product.objects.get(sku="SKU-1")
    known_customer.refresh_from_db()
    assert known_customer.purchase_count == 2
    assert known_customer.lifetime_value == Decimal("22.50")


def test_importing_the_same_purchases_twice_adds_nothing(known_customer):
    import_purchases(PURCHASES)

    second = import_purchases(PURCHASES)

    assert second.counts() == {"read": 2, "created": 0, "updated": 0, "unchanged": 2, "failed": 0}
    assert Purchase.objects.count() == 2


def test_purchase_with_an_order_number_is_updated(known_customer):
    import_purchases(PURCHASES)

    result = import_purchases(
        "customer_external_id,external_id,purchased_at,amount\nC1,O1,2024-01-02,99.00\n"
    )

    assert (result.updated, result.created) == (1, 0)
    assert Purchase.objects.get(external_id="O1").amount == Decimal("99.00")
    known_customer.refresh_from_db()
    assert known_customer.lifetime_value == Decimal("109.00")


def test_order_moved_to_another_customer_changes_the_figures_of_both(known_customer):
    other = CustomerFactory(external_id="C2")
    import_purchases(PURCHASES)

    result = import_purchases(
        "customer_external_id,external_id,purchased_at,amount\nC2,O1,2024-01-02,12.50\n"
    )

    assert result.updated == 1
    known_customer.refresh_from_db()
    other.refresh_from_db()
    assert (known_customer.purchase_count, known_customer.lifetime_value) == (1, Decimal("10.00"))
    assert (other.purchase_count, other.lifetime_value) == (1, Decimal("12.50"))


def test_cells_with_tabs_backslashes_and_line_breaks_are_stored_as_written(known_customer):
    result = import_purchases(
        "customer_external_id,external_id,purchased_at,amount,category,promotion_code\n"
        'C1,O\\1,2024-01-02,1,"home\tgarden","multi\nline"\n'
        'C1,,2024-01-03,2,"a\\tb",\\N\n'
    )

    assert result.counts() == {"read": 2, "created": 2, "updated": 0, "unchanged": 0, "failed": 0}
    first = Purchase.objects.get(purchased_at__date=dt.date(2024, 1, 2))
    assert (first.external_id, first.category, first.promotion_code) == (
        "O\\1",
        "home\tgarden",
        "multi\nline",
    )
    second = Purchase.objects.get(purchased_at__date=dt.date(2024, 1, 3))
    assert (second.external_id, second.category, second.promotion_code) == (None, "a\\tb", "\\N")


def test_stored_key_of_a_purchase_without_order_number_is_the_public_derivation(known_customer):
    import_purchases(PURCHASES)

    purchase = Purchase.objects.get(external_id=None)

    assert purchase.dedup_key == purchase_dedup_key(
        customer_id=known_customer.pk,
        purchased_at=timezone.make_aware(dt.datetime(2024, 1, 3)),
        amount="10",
        currency="EUR",
        quantity=2,
        channel="store",
    )


def test_purchase_posted_before_with_the_same_key_is_not_added_again(known_customer):
    moment = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    key = purchase_dedup_key(
        customer_id=known_customer.pk, purchased_at=moment, amount=Decimal("5")
    )
    PurchaseFactory(
        customer=known_customer,
        dedup_key=key,
        purchased_at=moment,
        amount=Decimal("5"),
        category="",
    )

    result = import_purchases(
        "customer_external_id,purchased_at,amount\nC1,2024-05-01T12:00:00Z,5.00\n"
    )

    assert result.unchanged == 1
    assert Purchase.objects.count() == 1


def test_customer_is_found_by_email_ignoring_case(known_customer):
    result = import_purchases("customer_email,purchased_at,amount\nANN@example.COM,2024-01-01,3\n")

    assert result.created == 1
    assert Purchase.objects.get().customer == known_customer


@pytest.mark.parametrize(
    ("cells", "column", "reason"),
    [
        ("C1,2024-13-45,10,online", "purchased_at", "not a date"),
        ("C1,,10,online", "purchased_at", "required"),
        ("C1,2024-01-01,12;50,online", "amount", "not an amount"),
        ("C1,2024-01-01,-3,online", "amount", "negative"),
        ("C1,2024-01-01,,online", "amount", "required"),
        ("C1,2024-01-01,10,pigeon", "channel", "not a channel"),
        ("C9,2024-01-01,10,online", "customer_external_id", "unknown customer"),
    ],
)
def test_bad_purchase_row_is_reported_and_the_others_go_in(known_customer, cells, column, reason):
    result = import_purchases(
        "customer_external_id,purchased_at,amount,channel\n"
        "C1,2024-01-01,1,online\n"
        f"{cells}\n"
        "C1,2024-01-02,2,store\n"
    )

    assert result.counts() == {"read": 3, "created": 2, "updated": 0, "unchanged": 0, "failed": 1}
    [error] = result.errors
    assert (error.line, error.column) == (3, column)
    assert reason in error.reason
    assert Purchase.objects.count() == 2


def test_with_strict_duplicates_a_repeated_purchase_is_reported_as_duplicate_across_batches(
    known_customer,
):
    result = import_purchases(
        "customer_external_id,external_id,purchased_at,amount\n"
        "C1,O1,2024-01-01,1\nC1,,2024-01-01,1\nC1,O1,2024-01-01,1\nC1,,2024-01-01,1\n",
        batch_size=1,
        strict_duplicates=True,
    )

    assert errors_of(result) == [(4, "external_id"), (5, "")]
    assert [e.reason for e in result.errors] == [
        "duplicate within the file: line 2 has the same external_id",
        "duplicate within the file: line 3 has the same purchase",
    ]
    assert Purchase.objects.count() == 2


def test_purchase_of_an_earlier_batch_repeated_twice_in_a_later_one_is_reported_twice(
    known_customer,
):
    result = import_purchases(
        "customer_external_id,external_id,purchased_at,amount\n"
        "C1,O1,2024-01-01,1\nC1,,2024-01-02,1\nC1,O1,2024-01-01,1\nC1,O1,2024-01-01,1\n",
        batch_size=2,
    )

    assert errors_of(result) == [(4, "external_id"), (5, "external_id")]
    assert {e.reason for e in result.errors} == {
        "duplicate within the file: line 2 has the same external_id"
    }
    assert (result.created, Purchase.objects.count()) == (2, 2)


def test_unknown_customers_are_created_when_asked(sales_user):
    result = import_purchases(
        "customer_external_id,purchased_at,amount\nNEW1,2024-01-01,5\nNEW1,2024-01-02,6\n",
        create_customers=True,
        user=sales_user,
    )

    assert (result.created, result.customers_created) == (2, 1)
    customer = Customer.objects.get(external_id="NEW1")
    assert customer.owner == sales_user
    assert customer.purchase_count == 2


def test_purchase_dates_in_a_given_format_and_mapped_columns_are_read(known_customer):
    result = import_purchases(
        "Kunde;Datum;Betrag\n".replace(";", ",") + "C1,31.12.2023 18:30,7.5\n",
        column_map={"customer_external_id": "Kunde", "purchased_at": "Datum", "amount": "Betrag"},
        date_format="%d.%m.%Y %H:%M",
    )

    assert result.created == 1
    assert Purchase.objects.get().purchased_at == timezone.make_aware(
        dt.datetime(2023, 12, 31, 18, 30)
    )


def test_sales_user_cannot_add_purchases_to_someone_elses_customer(sales_user, other_sales_user):
    CustomerFactory(external_id="C5", owner=other_sales_user)

    result = import_purchases(
        "customer_external_id,purchased_at,amount\nC5,2024-01-01,5\n", user=sales_user
    )

    assert result.failed == 1
    assert "unknown customer" in result.errors[0].reason
    assert not Purchase.objects.exists()


def test_purchase_file_without_amount_column_is_refused():
    with pytest.raises(ImportFileError, match="amount"):
        import_purchases("customer_external_id,purchased_at\nC1,2024-01-01\n")
