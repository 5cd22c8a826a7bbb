"""The set-based customer import stores what the import rules say, checked against a reference.

The reference below takes the rows as the parser gives them (the cell rules have their own
tests) and applies the rules of the import one row after the other, in Python, on a copy of the
stored customers: a key seen earlier in the file is a duplicate; a row matches its customer by
external_id, else by email (case-insensitive); a row may not take another customer's email, nor
touch someone else's customer when its user sees only their own; an erased person's address is
refused unless the matched customer already has it; empty cells leave the stored value, tags are
added and custom attributes merged. The import runs in a savepoint that is rolled back; its
counts, errors (as sets of lines and reasons) and stored customers must be the reference's.
"""

import csv
import io
import os

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.roles import user_sees_all_customers
from customers.contact_hashes import contact_hashes, email_hash, phone_hash
from customers.importing import customers_import
from customers.importing.customers import (
    CUSTOMER_FIELDS,
    CUSTOMER_VALUE_FIELDS,
    _row_parse,
    _RowRejected,
)
from customers.importing.reading import Columns, CsvSource
from customers.models import Customer, Tag
from customers.registry import addresses_refused
from privacy.models import Suppression
from privacy.suppression import suppression_add

pytestmark = pytest.mark.django_db

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


def _row(c: dict) -> tuple:
    hashes = contact_hashes(email=c["email"], phone=c["phone"])
    return (
        *(c[f] for f in ("external_id", "email", "first_name", "country", "phone", "owner_id")),
        c["attributes"],
        hashes["email_hash"],
        hashes["phone_hash"],
        c["source"],
        tuple(sorted(c["tags"])),
    )


def _people() -> list[dict]:
    return [
        {
            **{f: getattr(c, f) for f in CUSTOMER_VALUE_FIELDS},
            "owner_id": c.owner_id,
            "attributes": dict(c.attributes or {}),
            "tags": set(c.tags.values_list("name", flat=True)),
        }
        for c in Customer.objects.all()
    ]


def stored() -> list[tuple]:
    return sorted((_row(c) for c in _people()), key=repr)


def reference(data: bytes, *, user) -> tuple:
    """The import's outcome, worked out row by row in Python; writes nothing."""
    people = _people()
    tag_names = set(Tag.objects.values_list("name", flat=True))
    source = CsvSource(io.BytesIO(data))
    columns = Columns(
        header=source.header, fields=CUSTOMER_FIELDS, column_map={}, allow_attributes=True
    )
    owner_id = None if user is None or user.is_superuser else user.pk
    restricted_to = None if user is None or user_sees_all_customers(user) else user.pk
    counts = dict.fromkeys(["read", "created", "updated", "unchanged", "failed"], 0)
    errors, seen = [], {}

    def refuse(line, name, reason, value=""):
        errors.append((line, columns.column.get(name, name), reason, value))

    for line, fields in source.rows():
        counts["read"] += 1
        try:
            row = _row_parse(line, fields, columns, None)
        except _RowRejected as rejected:
            e = rejected.error
            errors.append((e.line, e.column, e.reason, e.value))
            continue
        external_id = row.values.get("external_id")
        email = (row.values.get("email") or "").lower()
        keys = [("external_id", "ext:" + external_id)] if external_id else []
        keys += [("email", "email:" + email)] if email else []
        earlier = next(((name, key) for name, key in keys if key in seen), None)
        if earlier is not None:
            name, key = earlier
            refuse(
                line,
                name,
                f"duplicate within the file: line {seen[key]} has the same {name}",
                row.values.get(name, ""),
            )
            continue
        seen.update((key, line) for _name, key in keys)

        by_id = [p for p in people if external_id and p["external_id"] == external_id]
        by_email = [p for p in people if email and (p["email"] or "").lower() == email]
        customer = by_id[0] if by_id else None
        other = by_email[0] if by_email else None
        if customer is None and other is not None:
            if external_id and other["external_id"]:
                refuse(
                    line,
                    "email",
                    f"already used by the customer with external_id '{other['external_id']}'",
                    row.values.get("email", ""),
                )
                continue
            customer = other
        elif customer is not None and other is not None and other is not customer:
            refuse(line, "email", "already used by another customer", row.values.get("email", ""))
            continue
        if customer is not None and restricted_to is not None:
            if customer["owner_id"] != restricted_to:
                name = "external_id" if external_id else "email"
                refuse(
                    line,
                    name,
                    "this customer belongs to another user: only its owner may update it",
                    row.values.get(name, ""),
                )
                continue
        new = {
            "email": email_hash(row.values.get("email")),
            "phone": phone_hash(row.values.get("phone")),
        }
        refused = addresses_refused(email_hashes=[new["email"]], phone_hashes=[new["phone"]])
        refusal = None
        for kind in ("email", "phone"):
            if (kind, new[kind]) not in refused:
                continue
            hashed = email_hash if kind == "email" else phone_hash
            if customer is not None and hashed(customer[kind]) == new[kind]:
                continue
            refusal = (kind, refused[(kind, new[kind])])
            break
        if refusal is not None:
            refuse(line, refusal[0], f"this address {refusal[1]}")
            continue

        if customer is None:
            fresh = {f: Customer._meta.get_field(f).get_default() for f in CUSTOMER_VALUE_FIELDS}
            fresh.update(row.values)
            fresh.update(owner_id=owner_id, attributes=dict(row.attributes), tags=set(row.tags))
            people.append(fresh)
            tag_names.update(row.tags)
            counts["created"] += 1
            continue
        changed = any(customer[f] != v for f, v in row.values.items())
        customer.update(row.values)
        merged = {**customer["attributes"], **row.attributes}
        changed = changed or merged != customer["attributes"]
        customer["attributes"] = merged
        new_tags = set(row.tags) - customer["tags"]
        customer["tags"] |= new_tags
        tag_names |= new_tags
        counts["updated" if changed or new_tags else "unchanged"] += 1
    counts["failed"] = len(errors)
    return (
        counts,
        sorted(errors),
        sorted((_row(c) for c in people), key=repr),
        sorted(tag_names),
    )


class _Rollback(Exception):
    pass


def outcome(data: bytes, *, user, batch_size: int) -> tuple:
    """What the import reports and stores; rolled back afterwards."""
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
def test_the_customer_import_stores_what_the_rules_say_row_after_row(
    stored_customers, sales_user, rows, as_sales, batch_size
):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HEADER, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    data = out.getvalue().encode()
    user = sales_user if as_sales else None

    expected = reference(data, user=user)
    assert outcome(data, user=user, batch_size=batch_size) == expected


def test_two_rows_reaching_the_same_customer_are_applied_in_file_order(stored_customers):
    data = b"external_id,email,first_name,tags\nC1,,Anna,new\n,a@example.com,Annie,\n"

    expected = reference(data, user=None)
    imported = outcome(data, user=None, batch_size=1000)

    assert imported == expected
    assert imported[0]["updated"] == 2
    [ann] = [c for c in imported[2] if c[0] == "C1"]
    assert (ann[2], ann[-1]) == ("Annie", ("new", "vip"))
