"""The set-based customer import on PostgreSQL agrees with the row-by-row import it replaces.

Both run on the same stored customers and the same file, one after the other, each in a
savepoint that is rolled back; the counts, the errors and what is stored must match. (Within a
batch the row-by-row import reports the errors of reading before the others, the set-based one
in line order, so the errors are compared as sets of lines and reasons.)
"""

import csv
import io
import os
from unittest import mock

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.importing import customers_import
from customers.models import Customer, Tag
from privacy.models import Suppression
from privacy.suppression import suppression_add

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the set-based import runs on PostgreSQL"
    ),
]

HEADER = ["external_id", "email", "first_name", "country", "phone", "tags", "attr.tier"]
CELLS = {
    "external_id": ["", "", "C1", "C2", "C3", "C4", "C5", "C6", "C\x007", "X" * 101],
    "email": [
        *("", "", "a@example.com", "A@Example.com", "b@example.com", "c@example.com", "x@@"),
        # A NUL; an address longer than 254 characters.
        "a\x00@example.com",
        "a" * 64 + "@" + ("b" * 60 + ".") * 4 + "com",
        # Erased: a new customer with it, or a stored one moved to it, is refused.
        "Gone@example.com",
        # Erased, yet stored again (the person signed up themselves): C5 keeps it.
        "Back@example.com",
    ],
    # A NUL, a lone CR (quoted by the writer), a cell too long for the field.
    "first_name": ["", "Ann", "Bob", " Émile ", "An\x00n", "A\rB", "F" * 101],
    "country": ["", "DE", "fr", "Germany"],
    # The last two are one erased phone, written two ways; C5 shares it.
    "phone": ["", "+49 30 1234", "030-1234", "(030) 1234"],
    "tags": ["", "vip", "vip;new", "new; new", "v\x00ip"],
    "attr.tier": ["", "gold", "silver", "go\x00ld"],
}
rows_of_cells = st.lists(
    st.fixed_dictionaries({name: st.sampled_from(v) for name, v in CELLS.items()}),
    min_size=1,
    max_size=20,
)


class _Rollback(Exception):
    pass


def stored() -> list[tuple]:
    customers = []
    for c in Customer.objects.order_by("external_id", "email", "first_name"):
        tags = sorted(c.tags.values_list("name", flat=True))
        customers.append(
            (
                c.external_id,
                c.email,
                c.first_name,
                c.country,
                c.phone,
                c.owner_id,
                c.attributes,
                c.email_hash,
                c.phone_hash,
                c.source,
                tuple(tags),
            )
        )
    return customers


def outcome(data: bytes, *, set_based: bool, user, batch_size: int) -> tuple:
    with mock.patch("customers.importing.customers._set_based", return_value=set_based):
        try:
            with transaction.atomic():
                result = customers_import(stream=io.BytesIO(data), user=user, batch_size=batch_size)
                found = (
                    result.counts(),
                    sorted((e.line, e.column, e.reason, e.value) for e in result.errors),
                    stored(),
                    sorted(Tag.objects.values_list("name", flat=True)),
                )
                raise _Rollback
        except _Rollback:
            return found


@pytest.fixture
def stored_customers(sales_user, other_sales_user):
    ann = Customer.objects.create(
        external_id="C1",
        email="a@example.com",
        first_name="Ann",
        owner=sales_user,
        attributes={"tier": "gold", "since": 2019},
    )
    ann.tags.add(Tag.objects.create(name="vip"))
    Customer.objects.create(email="b@example.com", first_name="Bea", owner=other_sales_user)
    Customer.objects.create(external_id="C3", first_name="Cem", owner=sales_user)
    Customer.objects.create(external_id="C4", email="c@example.com", owner=other_sales_user)
    Customer.objects.create(
        external_id="C5", email="back@example.com", phone="030 1234", owner=sales_user
    )
    suppression_add(reason=Suppression.Reason.ERASURE, email="gone@example.com", phone="030-1234")
    suppression_add(reason=Suppression.Reason.ERASURE, email="back@example.com")


@settings(
    max_examples=int(os.environ.get("IMPORT_PROPERTY_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rows=rows_of_cells,
    as_sales=st.booleans(),
    batch_size=st.sampled_from([2, 5, 1000]),
)
def test_set_based_customer_import_gives_what_the_row_by_row_import_gives(
    stored_customers, sales_user, rows, as_sales, batch_size
):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HEADER, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    data = out.getvalue().encode()
    user = sales_user if as_sales else None

    row_by_row = outcome(data, set_based=False, user=user, batch_size=batch_size)
    set_based = outcome(data, set_based=True, user=user, batch_size=batch_size)

    assert set_based == row_by_row


def test_two_rows_reaching_the_same_customer_are_applied_in_file_order(stored_customers):
    data = b"external_id,email,first_name,tags\nC1,,Anna,new\n,a@example.com,Annie,\n"

    row_by_row = outcome(data, set_based=False, user=None, batch_size=1000)
    set_based = outcome(data, set_based=True, user=None, batch_size=1000)

    assert set_based == row_by_row
    assert set_based[0]["updated"] == 2
    [ann] = [c for c in set_based[2] if c[0] == "C1"]
    assert (ann[2], ann[-1]) == ("Annie", ("new", "vip"))
