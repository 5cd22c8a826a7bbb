"""Property tests: whatever mix of good and bad rows, each good row goes in once, each bad is reported."""

import csv
import datetime as dt
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.importing import customers_import, purchases_import
from customers.models import Customer, Purchase

pytestmark = pytest.mark.django_db

good_purchase = st.fixed_dictionaries(
    {
        "customer_external_id": st.sampled_from(["C1", "C2"]),
        "purchased_at": st.dates(
            min_value=dt.date(1970, 1, 1), max_value=dt.date(2100, 12, 31)
        ).map(lambda d: d.strftime("%Y%m%d")),
        "amount": st.decimals(min_value=0, max_value=10**6, places=2).map(str),
        "channel": st.sampled_from(["online", "Store", "PHONE", ""]),
        "quantity": st.integers(min_value=1, max_value=50).map(str),
    }
)
defects = st.sampled_from(
    [
        ("amount", "1,5"),
        ("amount", ""),
        ("purchased_at", "2024-02-30"),
        ("channel", "fax"),
        ("quantity", "0"),
        ("customer_external_id", "NOBODY"),
    ]
)
purchase_rows = st.lists(
    st.tuples(good_purchase, st.one_of(st.none(), defects)), min_size=1, max_size=25
)
FIELDS = ["customer_external_id", "purchased_at", "amount", "channel", "quantity"]


def as_csv(rows: list[dict], fields: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


@pytest.fixture
def two_customers():
    Customer.objects.create(external_id="C1")
    Customer.objects.create(external_id="C2")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=purchase_rows, batch_size=st.integers(min_value=1, max_value=7))
def test_every_valid_purchase_goes_in_once_and_every_invalid_one_is_reported(
    two_customers, rows, batch_size
):
    Purchase.objects.all().delete()
    written, bad_lines = [], set()
    for n, (row, defect) in enumerate(rows):
        line = n + 2
        if defect is not None:
            row = {**row, defect[0]: defect[1]}
            bad_lines.add(line)
        written.append(row)
    data = as_csv(written, FIELDS)

    first = purchases_import(stream=io.BytesIO(data), batch_size=batch_size)
    second = purchases_import(stream=io.BytesIO(data), batch_size=batch_size)

    assert {e.line for e in first.errors} == bad_lines
    assert first.created == len(rows) - len(bad_lines) == Purchase.objects.count()
    assert (second.created, second.updated, second.unchanged) == (0, 0, first.created)
    assert {e.line for e in second.errors} == bad_lines


customer_rows = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=12),
        st.sampled_from(["ok", "bad_email", "bad_country", "no_key"]),
        st.text(alphabet="abcxyzÄé ", max_size=8),
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=customer_rows, batch_size=st.integers(min_value=1, max_value=7))
def test_every_valid_customer_goes_in_once_and_every_invalid_one_is_reported(rows, batch_size):
    Customer.objects.all().delete()
    written, bad_lines, seen = [], set(), set()
    for n, (number, kind, name) in enumerate(rows):
        line = n + 2
        row = {
            "external_id": f"C{number}",
            "email": f"c{number}@example.com",
            "country": "DE",
            "first_name": name,
        }
        if kind == "bad_email":
            row["email"] = "c@@example"
        elif kind == "bad_country":
            row["country"] = "Narnia"
        elif kind == "no_key":
            row["external_id"] = row["email"] = ""
        if kind != "ok" or number in seen:
            bad_lines.add(line)
        else:
            seen.add(number)
        written.append(row)
    data = as_csv(written, ["external_id", "email", "country", "first_name"])

    first = customers_import(stream=io.BytesIO(data), batch_size=batch_size)
    second = customers_import(stream=io.BytesIO(data), batch_size=batch_size)

    assert {e.line for e in first.errors} == bad_lines
    assert first.created == len(seen) == Customer.objects.count()
    assert (second.created, second.updated) == (0, 0)
    assert second.unchanged == len(seen)
