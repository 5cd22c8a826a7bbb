"""The set-based purchase import agrees with the rules of a purchase written one by one.

The upsert key the SQL derives must be the key purchase_dedup_key() gives (the API uses the
Python function), and a file imported set-based must report the errors the row parser gives.
"""

import csv
import datetime as dt
import io
import zoneinfo
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.importing import PURCHASE_FIELDS, purchase_dedup_key, purchases_import
from customers.importing.purchase_rows import PurchaseParser, RowRejected
from customers.importing.purchase_stage import DEDUP_KEY_SQL
from customers.importing.reading import Columns
from customers.models import Customer, Product, Purchase

pytestmark = pytest.mark.django_db

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")

KEY_CASES = [
    # (purchased_at, amount, currency, quantity, channel, category, promotion_code, external_id)
    (dt.datetime(2024, 1, 2, 10, 0, tzinfo=dt.UTC), "10", "EUR", 1, "online", "", "", None),
    (
        dt.datetime(2024, 1, 2, 10, 0, 0, 123456, tzinfo=dt.UTC),
        ".5",
        "usd",
        2,
        "store",
        "",
        "",
        None,
    ),
    (dt.datetime(2024, 3, 31, 2, 30, tzinfo=BERLIN), "0", "EUR", 7, "phone", "shoes", "", None),
    (
        dt.datetime(2024, 10, 27, 2, 30, tzinfo=BERLIN),
        "1234567890.99",
        "EUR",
        1,
        "other",
        "",
        "X",
        None,
    ),
    (
        dt.datetime(
            1999, 12, 31, 23, 59, 59, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30))
        ),
        "12.50",
        "CHF",
        3,
        "marketplace",
        "Küche & Bad",
        "SPRING–10",
        None,
    ),
    (dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC), "5", "EUR", 1, "online", "", "", "O-77"),
]


@pytest.mark.parametrize("case", KEY_CASES)
@pytest.mark.parametrize("with_product", [False, True])
def test_upsert_key_derived_in_sql_is_the_key_of_purchase_dedup_key(case, with_product):
    moment, amount, currency, quantity, channel, category, promotion_code, external_id = case
    product_id = 42 if with_product else None

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT "
            + DEDUP_KEY_SQL.format(
                ext="%(ext)s::text",
                customer_id="%(customer_id)s::bigint",
                moment="%(moment)s::timestamptz",
                amount="%(amount)s::text",
                currency="%(currency)s::text",
                quantity="%(quantity)s::integer",
                channel="%(channel)s::text",
                product_id="%(product_id)s::bigint",
                category="%(category)s::text",
                promotion_code="%(promotion_code)s::text",
            ),
            {
                "ext": external_id,
                "customer_id": 7,
                "moment": moment,
                "amount": amount,
                "currency": currency.upper(),
                "quantity": quantity,
                "channel": channel,
                "product_id": product_id,
                "category": category,
                "promotion_code": promotion_code,
            },
        )
        [sql_key] = cursor.fetchone()

    assert sql_key == purchase_dedup_key(
        customer_id=7,
        purchased_at=moment,
        amount=amount,
        currency=currency,
        quantity=quantity,
        channel=channel,
        product_id=product_id,
        category=category,
        promotion_code=promotion_code,
        external_id=external_id,
    )


def test_imported_purchases_carry_the_key_of_purchase_dedup_key_in_a_local_time_zone():
    customer = Customer.objects.create(external_id="C1")
    text = (
        "customer_external_id,purchased_at,amount,currency,quantity,channel,product_sku,category\n"
        "C1,2024-03-31T02:30:00,10,eur,1,online,SKU-1,shoes\n"
        "C1,2024-10-27T02:30:00,10,EUR,1,Store,,\n"
        "C1,20240103,.5,EUR,2,,,\n"
        "C1,2024-01-02T10:00:00.5+01:00,99.99,usd,3,PHONE,SKU-1,\n"
    )

    with timezone.override(BERLIN):
        result = purchases_import(stream=io.BytesIO(text.encode()))

    assert result.created == 4
    product = Product.objects.get(sku="SKU-1")
    for purchase in Purchase.objects.all():
        assert purchase.dedup_key == purchase_dedup_key(
            customer_id=customer.pk,
            purchased_at=purchase.purchased_at,
            amount=purchase.amount,
            currency=purchase.currency,
            quantity=purchase.quantity,
            channel=purchase.channel,
            product_id=product.pk if purchase.product_id else None,
            category=purchase.category,
            promotion_code=purchase.promotion_code,
        )
    local = Purchase.objects.get(amount=Decimal("10"), channel="store").purchased_at
    # 2:30 happened twice that night; the first (summer time, UTC+2) is meant, as in Python.
    assert local == dt.datetime(2024, 10, 27, 0, 30, tzinfo=dt.UTC)


CELLS = {
    "customer_external_id": ["C1", " C1 ", "C1\u00a0", "", "X" * 101, "\u3000C1", "C\x001"],
    "customer_email": ["", "ann@example.com", "not-an-email", " ANN@example.com "],
    "external_id": ["", "", "O1", " O2 ", "Z" * 101],
    "purchased_at": [
        "2024-01-02",
        "20240103",
        "2024-01-02T10:00:00+01:00",
        "2024-13-45",
        "",
        " 2024-03-31 ",
        "2024-01-02T10:00:00.123456Z",
        "31.12.2023",
        # Past the range of dates once in UTC.
        "9999-12-31T23:59:00-05:00",
        "0001-01-01T00:00:00+05:00",
    ],
    "amount": [
        "10",
        "12.5",
        ".5",
        "-3",
        "1,5",
        "",
        "12345678901",
        "1.234",
        " 7 ",
        "1.",
        "0.00",
        "1e309",
        "nan",
    ],
    "currency": ["", "eur", "EURO", "u$d", " usd "],
    "quantity": ["", "1", "0", "007", "1234567890", "-1", "1.0"],
    "channel": ["", "online", "Store", "PHONE", "fax", " marketplace "],
    "product_sku": ["", "SKU-1", "S" * 65],
    "category": ["", "shoes", "c" * 101, "sh\x00oes"],
    "promotion_code": ["", "SPRING", "p" * 65],
}
row_of_cells = st.fixed_dictionaries({name: st.sampled_from(v) for name, v in CELLS.items()})


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(row_of_cells, min_size=1, max_size=30))
def test_set_based_import_reports_the_cell_errors_of_the_row_parser(rows):
    Customer.objects.get_or_create(external_id="C1", defaults={"email": "ann@example.com"})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(PURCHASE_FIELDS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    columns = Columns(header=list(PURCHASE_FIELDS), fields=PURCHASE_FIELDS, column_map={})
    parser = PurchaseParser(columns, None)
    expected = set()
    for line, row in enumerate(rows, start=2):
        try:
            parser.values(line, [row[name] for name in PURCHASE_FIELDS])
        except RowRejected as rejected:
            error = rejected.error
            expected.add((error.line, error.column, error.reason, error.value))

    result = purchases_import(stream=io.BytesIO(out.getvalue().encode()))

    reported = {
        (e.line, e.column, e.reason, e.value)
        for e in result.errors
        if not e.reason.startswith(("duplicate within the file", "unknown customer"))
    }
    assert reported == expected
    assert result.read == len(rows)
    assert result.created + result.updated + result.unchanged + result.failed == len(rows)
