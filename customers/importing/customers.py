"""Importing customers from CSV: upsert by external_id, else by email (case-insensitive).

Empty cells leave what is stored as it is; tags are added, custom attributes merged. The rows
parsed here are written set-based by customer_stage.py, which hands the rows it cannot settle
in SQL alone back to `_rows_write` here.
"""

import json
from dataclasses import dataclass, field
from typing import BinaryIO, TextIO

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models.functions import Lower

from crm.roles import user_sees_all_customers
from customers.contact_hashes import contact_hashes, email_hash, phone_hash
from customers.fields import CUSTOMER_VALUE_FIELDS, customer_field_clean, customer_fields
from customers.importing.batches import SeenKeys, copy_rows
from customers.importing.customer_stage import CustomerStage, customers_import_sql
from customers.importing.reading import (
    Columns,
    CsvSource,
    ErrorCallback,
    ErrorLog,
    ImportFileError,
    ImportResult,
    ProgressCallback,
    RowError,
    row_nul_error,
)
from customers.importing.values import CellError, check_length
from customers.marks import customers_mark
from customers.models import Customer, Tag
from customers.registry import addresses_refused

# The model fields a file may set, in the order they are written (customers.fields lists them).
CUSTOMER_FIELDS = CUSTOMER_VALUE_FIELDS + ("tags",)
# What an import writes: the file's fields and the hashes derived from email and phone.
_WRITTEN_FIELDS = (*CUSTOMER_VALUE_FIELDS, "email_hash", "phone_hash")
_NULLABLE = {name for name, spec in customer_fields().items() if spec.blank is None}


@dataclass(slots=True)
class CustomerRow:
    line: int
    values: dict
    tags: list[str]
    attributes: dict[str, str]
    customer: Customer | None = None
    new_tags: list[str] = field(default_factory=list)


class _RowRejected(Exception):
    def __init__(self, error: RowError):
        self.error = error


def _cell_value(name: str, text: str, date_format: str | None):
    """A cell read with the field's one cleaner (customers.fields), as the form and the API
    read it; its message is the row's error."""
    try:
        return customer_field_clean(name, text, date_format=date_format)
    except ValidationError as exc:
        message = " ".join(exc.messages).rstrip(".")
        raise CellError(message[:1].lower() + message[1:]) from None


def _row_parse(
    line: int, fields: list[str] | RowError | None, columns: Columns, date_format: str | None
) -> CustomerRow:
    if fields is None:
        raise _RowRejected(RowError(line, "", "the line is not valid UTF-8"))
    if isinstance(fields, RowError):
        raise _RowRejected(fields)
    if len(fields) != len(columns.header):
        raise _RowRejected(
            RowError(
                line,
                "",
                f"expected {len(columns.header)} fields as in the header, found {len(fields)}",
            )
        )
    nul = row_nul_error(line, fields, columns)
    if nul is not None:
        raise _RowRejected(nul)
    values: dict = {}
    name = ""
    try:
        for name, i in columns.index.items():
            text = fields[i].strip()
            if text and name != "tags":
                values[name] = _cell_value(name, text, date_format)
        tags: list[str] = []
        if "tags" in columns.index:
            name = "tags"
            for tag in fields[columns.index["tags"]].split(";"):
                tag = tag.strip()
                if tag and tag not in tags:
                    tags.append(check_length(tag, max_length=64))
        attributes = {}
        for key, i in columns.attributes.items():
            name = f"attr.{key}"
            if fields[i].strip():
                attributes[key] = fields[i].strip()
    except CellError as exc:
        i = columns.index.get(
            name, columns.attributes.get(name[5:]) if name.startswith("attr.") else None
        )
        raise _RowRejected(
            RowError(
                line, columns.column.get(name, name), str(exc), fields[i] if i is not None else ""
            )
        ) from None
    if not values.get("external_id") and not values.get("email"):
        column = columns.column.get("external_id") or columns.column.get("email", "email")
        raise _RowRejected(
            RowError(line, column, "required: an external_id or an email to identify the customer")
        )
    return CustomerRow(line, values, tags, attributes)


def customers_import(
    *,
    stream: BinaryIO,
    total_bytes: int = 0,
    column_map: dict[str, str] | None = None,
    date_format: str | None = None,
    user: AbstractBaseUser | None = None,
    report: TextIO | None = None,
    on_progress: ProgressCallback | None = None,
    on_error: ErrorCallback | None = None,
    batch_size: int | None = None,
) -> ImportResult:
    """Import customers from a CSV stream; bad rows are reported, good ones upserted.

    With a `user` who sees only their own customers (sales), rows that match someone else's
    customer are refused, and the customers created are owned by that user.
    """
    source = CsvSource(stream)
    columns = Columns(
        header=source.header,
        fields=CUSTOMER_FIELDS,
        column_map=column_map or {},
        allow_attributes=True,
    )
    columns.require_one_of("external_id", "email")
    errors = ErrorLog(report=report, on_error=on_error)
    result = ImportResult()
    owner_id = None if user is None or user.is_superuser else user.pk
    restricted_to = None if user is None or user_sees_all_customers(user) else user.pk

    stage = CustomerStage(
        columns=columns,
        value_fields=CUSTOMER_VALUE_FIELDS,
        parse=lambda line, fields: _row_parse(line, fields, columns, date_format),
        rejection=_RowRejected,
        duplicates_drop=_duplicates_drop,
        rows_write=lambda rows, rejected, refused: _rows_write(
            rows, rejected, refused, columns, owner_id, restricted_to
        ),
        owner_id=owner_id,
        restricted_to=restricted_to,
    )
    customers_import_sql(
        stage=stage,
        source=source,
        errors=errors,
        result=result,
        total_bytes=total_bytes,
        chunk_rows=batch_size or settings.CRM_IMPORT_BATCH_SIZE,
        on_progress=on_progress,
    )
    result.failed = errors.count
    result.errors = errors.first
    return result


def _keys(row: CustomerRow) -> list[str]:
    keys = []
    if row.values.get("external_id"):
        keys.append("ext:" + row.values["external_id"])
    if row.values.get("email"):
        keys.append("email:" + row.values["email"].lower())
    return keys


def _duplicates_drop(
    batch: list[CustomerRow], seen: SeenKeys, rejected: list[RowError], columns: Columns
) -> list[CustomerRow]:
    keyed = [(row, _keys(row)) for row in batch]
    earlier = seen.lookup(k for _row, keys in keyed for k in keys)
    first_line: dict[str, int] = {}
    kept = []
    for row, keys in keyed:
        duplicate = next(
            (
                (k, earlier.get(k) or first_line.get(k))
                for k in keys
                if k in earlier or k in first_line
            ),
            None,
        )
        if duplicate is None:
            for k in keys:
                first_line[k] = row.line
            kept.append(row)
            continue
        key, line = duplicate
        name = "external_id" if key.startswith("ext:") else "email"
        rejected.append(
            RowError(
                row.line,
                columns.column.get(name, name),
                f"duplicate within the file: line {line} has the same {name}",
                row.values.get(name, ""),
            )
        )
    seen.add(first_line)
    return kept


def _match(
    rows: list[CustomerRow],
    rejected: list[RowError],
    columns: Columns,
    restricted_to: int | None,
    owner_id: int | None,
    refused: dict[tuple[str, str], str] | None = None,
) -> tuple[list[CustomerRow], list[CustomerRow]]:
    """Find each row's stored customer and decide: create, update, unchanged or refuse.

    `refused` is the answer of customers.registry.addresses_refused for the rows' addresses
    when the caller already asked; otherwise it is asked here, once for the batch."""
    external_ids = [r.values["external_id"] for r in rows if r.values.get("external_id")]
    emails = [r.values["email"].lower() for r in rows if r.values.get("email")]
    # Two lookups, each on its own index.
    by_key = Customer.objects.annotate(email_lower=Lower("email"))
    found = list(by_key.filter(external_id__in=external_ids))
    known = {c.pk for c in found}
    found += [c for c in by_key.filter(email_lower__in=emails) if c.pk not in known]
    by_external_id = {c.external_id: c for c in found if c.external_id}
    by_email = {c.email_lower: c for c in found if c.email}
    tags_of: dict[int, set[str]] = {}
    for customer_id, name in Customer.tags.through.objects.filter(
        customer_id__in=[c.pk for c in found]
    ).values_list("customer_id", "tag__name"):
        tags_of.setdefault(customer_id, set()).add(name)
    hashes = {
        row.line: (email_hash(row.values.get("email")), phone_hash(row.values.get("phone")))
        for row in rows
    }
    if refused is None:
        refused = addresses_refused(
            email_hashes=[e for e, _p in hashes.values()],
            phone_hashes=[p for _e, p in hashes.values()],
        )

    creates, updates = [], []
    for row in rows:
        external_id = row.values.get("external_id")
        email = row.values.get("email", "").lower()
        customer = by_external_id.get(external_id) if external_id else None
        other = by_email.get(email) if email else None
        problem = None
        if customer is None and other is not None:
            if external_id and other.external_id:
                problem = (
                    "email",
                    f"already used by the customer with external_id '{other.external_id}'",
                )
            else:
                customer = other
        elif customer is not None and other is not None and other.pk != customer.pk:
            problem = ("email", "already used by another customer")
        if problem is None and customer is not None and restricted_to is not None:
            if customer.owner_id != restricted_to:
                name = "external_id" if external_id else "email"
                problem = (
                    name,
                    "this customer belongs to another user: only its owner may update it",
                )
        if problem is not None:
            name, reason = problem
            rejected.append(
                RowError(row.line, columns.column.get(name, name), reason, row.values.get(name, ""))
            )
            continue
        refusal = _address_refusal(hashes[row.line], customer, refused)
        if refusal is not None:
            # The address is left out of the error, so the report does not keep it either.
            name, reason = refusal
            rejected.append(
                RowError(row.line, columns.column.get(name, name), f"this address {reason}")
            )
            continue
        if customer is None:
            creates.append(row)
            continue
        row.customer = customer
        old_email = (customer.email or "").lower()
        changed = False
        for name, value in row.values.items():
            if getattr(customer, name) != value:
                setattr(customer, name, value)
                changed = True
        # The later rows of the batch see this row's change, as they would one after the other:
        # a customer who moved to another email no longer owns the old one.
        new_email = (customer.email or "").lower()
        if new_email != old_email:
            if by_email.get(old_email) is customer:
                del by_email[old_email]
            if new_email:
                by_email[new_email] = customer
        if customer.external_id:
            by_external_id[customer.external_id] = customer
        if row.attributes:
            merged = {**(customer.attributes or {}), **row.attributes}
            if merged != customer.attributes:
                customer.attributes = merged
                changed = True
        row.new_tags = [t for t in row.tags if t not in tags_of.get(customer.pk, set())]
        if changed or row.new_tags:
            updates.append(row)
    _write(creates, updates, rejected, owner_id)
    failed = {e.line for e in rejected}
    return [r for r in creates if r.line not in failed], updates


def _address_refusal(
    hashes: tuple[str, str], customer: Customer | None, refused: dict[tuple[str, str], str]
) -> tuple[str, str] | None:
    """Why a row may not record its email or phone (an erased person's;
    customers.registry.addresses_refused), the email's reason first: a new customer with it, or
    a stored one moved to it. A stored customer who already has the address keeps it."""
    for kind, new in zip(("email", "phone"), hashes, strict=True):
        if (kind, new) not in refused:
            continue
        if customer is not None:
            current = customer.email if kind == "email" else customer.phone
            if new == (email_hash(current) if kind == "email" else phone_hash(current)):
                continue
        return kind, refused[(kind, new)]
    return None


def _rows_write(
    rows: list[CustomerRow],
    rejected: list[RowError],
    refused: dict[tuple[str, str], str],
    columns: Columns,
    owner_id: int | None,
    restricted_to: int | None,
) -> tuple[int, int]:
    """Match and write rows already free of duplicates, one after the other as the file has
    them, given the addresses among them that may not be recorded; returns (created, updated)."""
    creates, updates = _match(rows, rejected, columns, restricted_to, owner_id, refused)
    _tags_attach(creates, updates)
    customers_mark(customer_ids=[r.customer.pk for r in [*creates, *updates] if r.customer])
    return len(creates), len(updates)


def _tags_attach(creates: list[CustomerRow], updates: list[CustomerRow]) -> None:
    pairs = [(r.customer.pk, t) for r in creates if r.customer for t in r.tags]
    pairs += [(r.customer.pk, t) for r in updates for t in r.new_tags]
    if not pairs:
        return
    names = {t for _, t in pairs}
    Tag.objects.bulk_create([Tag(name=n) for n in sorted(names)], ignore_conflicts=True)
    tag_ids = dict(Tag.objects.filter(name__in=names).values_list("name", "id"))
    Through = Customer.tags.through
    Through.objects.bulk_create(
        [Through(customer_id=c, tag_id=tag_ids[t]) for c, t in pairs],
        ignore_conflicts=True,
        batch_size=1000,
    )


_STAGE = "import_customer_stage"
_STAGE_COLUMNS = ["line", "id", *_WRITTEN_FIELDS, "attributes", "owner_id"]
_TEXT_NOT_NULL = [f for f in _WRITTEN_FIELDS if f not in _NULLABLE]


def _write(
    creates: list[CustomerRow],
    updates: list[CustomerRow],
    rejected: list[RowError],
    owner_id: int | None,
) -> None:
    """COPY the batch into a staging table, then one INSERT for the new and one UPDATE for the rest."""
    table = Customer._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (line integer, id bigint, "
            + ", ".join(f"{f} {'date' if f == 'birth_date' else 'text'}" for f in _WRITTEN_FIELDS)
            + ", attributes jsonb, owner_id bigint)"
        )
        cursor.execute(f"TRUNCATE {_STAGE}")
    rows = []
    for row in creates:
        values = {
            **row.values,
            **contact_hashes(email=row.values.get("email"), phone=row.values.get("phone")),
        }
        rows.append(_stage_row(row.line, None, values, row.attributes, owner_id))
    for row in updates:
        c = row.customer
        values = {f: getattr(c, f) for f in CUSTOMER_VALUE_FIELDS}
        values.update(contact_hashes(email=c.email, phone=c.phone))
        rows.append(_stage_row(row.line, c.pk, values, c.attributes, c.owner_id))
    copy_rows(table=_STAGE, columns=_STAGE_COLUMNS, rows=rows, not_null=_TEXT_NOT_NULL)
    fields = ", ".join(_WRITTEN_FIELDS)
    with connection.cursor() as cursor:
        # Updates first: a row may take over the email a customer updated before it gave up.
        if updates:
            cursor.execute(
                f"UPDATE {table} c SET "
                + ", ".join(f"{f} = s.{f}" for f in _WRITTEN_FIELDS)
                + f", attributes = s.attributes, updated_at = now() FROM {_STAGE} s WHERE c.id = s.id"
            )
        if creates:
            cursor.execute(
                f"INSERT INTO {table} ({fields}, attributes, owner_id, created_at, updated_at, "
                "lifetime_value, purchase_count, average_order_value) "
                f"SELECT {fields}, attributes, owner_id, now(), now(), 0, 0, 0 FROM {_STAGE} "
                "WHERE id IS NULL ORDER BY line ON CONFLICT DO NOTHING "
                "RETURNING id, external_id, lower(email)"
            )
            by_external_id, by_email = {}, {}
            for pk, external_id, email in cursor.fetchall():
                if external_id:
                    by_external_id[external_id] = pk
                if email:
                    by_email[email] = pk
            for row in creates:
                external_id, email = (
                    row.values.get("external_id"),
                    row.values.get("email", "").lower(),
                )
                pk = by_external_id.get(external_id) if external_id else by_email.get(email)
                if pk is None:
                    rejected.append(
                        RowError(
                            row.line,
                            "",
                            "another import or user created this customer meanwhile; import again",
                        )
                    )
                else:
                    row.customer = Customer(pk=pk)


def _stage_row(
    line: int, pk: int | None, values: dict, attributes: dict, owner_id: int | None
) -> tuple:
    out = [line, pk]
    for f in _WRITTEN_FIELDS:
        v = values.get(f)
        out.append("" if v is None else (v.isoformat() if f == "birth_date" else v))
    out.append(json.dumps(attributes or {}))
    out.append(owner_id)
    return tuple(out)


__all__ = ["CUSTOMER_FIELDS", "ImportFileError", "customers_import"]
