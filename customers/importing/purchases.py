"""Importing purchases from CSV.

Every row is parsed and checked by purchase_rows.py. On PostgreSQL the good rows then go through
purchase_stage.py: chunks COPYed into a staging table, resolved, deduplicated and upserted in
SQL. Elsewhere (SQLite) each batch has its customers and products resolved here and is written
with bulk_create and bulk_update. Both give the same counts and the same errors."""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import BinaryIO, TextIO

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, transaction
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from customers.contact_hashes import email_hash
from customers.importing.batches import SeenKeys, is_postgres
from customers.importing.purchase_rows import PURCHASE_FIELDS, PurchaseParser, RowRejected
from customers.importing.purchase_stage import customer_scope, purchases_import_sql
from customers.importing.reading import (
    Columns,
    CsvSource,
    ErrorCallback,
    ErrorLog,
    ImportFileError,
    ImportProgress,
    ImportResult,
    ProgressCallback,
    RowError,
)
from customers.models import Customer, Product, Purchase
from customers.services import customer_stats_refresh

# Rows per chunk on PostgreSQL: the statements per chunk are fixed, so a chunk must be big
# enough for them to cost little, and small enough that reading the next chunk overlaps the
# database's work on this one.
_CHUNK_ROWS = 20_000


def purchase_dedup_key(
    *,
    customer_id: int,
    purchased_at: datetime,
    amount: Decimal | str,
    currency: str = "EUR",
    quantity: int = 1,
    channel: str = Purchase.Channel.ONLINE,
    product_id: int | None = None,
    category: str = "",
    promotion_code: str = "",
    external_id: str | None = None,
) -> str:
    """The upsert key of a purchase: its order number when it has one, else a hash of the row.

    Importers and the API both derive it here, so the same purchase is stored once whichever
    way it arrives, and importing the same file twice adds nothing.
    """
    if external_id:
        return f"ext:{external_id}"
    moment = purchased_at.astimezone(UTC).isoformat()
    money = Decimal(amount).quantize(Decimal("0.01"))
    parts = (
        str(customer_id),
        moment,
        str(money),
        currency.upper(),
        str(quantity),
        channel,
        "" if product_id is None else str(product_id),
        category,
        promotion_code,
    )
    return "row:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:48]


@dataclass(slots=True)
class PurchaseRow:
    line: int
    customer_external_id: str
    customer_email: str
    external_id: str | None
    purchased_at: datetime
    amount: Decimal
    currency: str
    quantity: int
    channel: str
    product_sku: str
    category: str
    promotion_code: str
    customer_id: int = 0
    product_id: int | None = None
    dedup_key: str = ""


class _PurchaseParser(PurchaseParser):
    def parse(self, line: int, fields: list[str] | None) -> PurchaseRow:
        return PurchaseRow(line, *self.values(line, fields))


def purchases_import(
    *,
    stream: BinaryIO,
    total_bytes: int = 0,
    column_map: dict[str, str] | None = None,
    date_format: str | None = None,
    create_customers: bool = False,
    user: AbstractBaseUser | None = None,
    report: TextIO | None = None,
    on_progress: ProgressCallback | None = None,
    on_error: ErrorCallback | None = None,
    batch_size: int | None = None,
) -> ImportResult:
    """Import purchases from a CSV stream; bad rows are reported, good ones upserted.

    `user` limits the customers purchases may attach to (and owns customers created on the
    way); without it (the command line) every customer is in reach.
    """
    source = CsvSource(stream)
    columns = Columns(header=source.header, fields=PURCHASE_FIELDS, column_map=column_map or {})
    columns.require_one_of("customer_external_id", "customer_email")
    columns.require_one_of("purchased_at")
    columns.require_one_of("amount")
    errors = ErrorLog(report=report, on_error=on_error)
    result = ImportResult()
    scope, owner = customer_scope(user)
    if is_postgres():
        touched = purchases_import_sql(
            source=source,
            columns=columns,
            date_format=date_format,
            create_customers=create_customers,
            scope=scope,
            owner=owner,
            errors=errors,
            result=result,
            total_bytes=total_bytes,
            chunk_rows=batch_size or max(settings.CRM_IMPORT_BATCH_SIZE, _CHUNK_ROWS),
            on_progress=on_progress,
        )
    else:
        touched = _purchases_import_orm(
            source=source,
            parser=_PurchaseParser(columns, date_format),
            columns=columns,
            create_customers=create_customers,
            scope=scope,
            owner=owner,
            errors=errors,
            result=result,
            total_bytes=total_bytes,
            batch_size=batch_size or settings.CRM_IMPORT_BATCH_SIZE,
            on_progress=on_progress,
        )
    customer_stats_refresh(customer_ids=touched)
    result.failed = errors.count
    result.errors = errors.first
    return result


def _purchases_import_orm(
    *,
    source: CsvSource,
    parser: "_PurchaseParser",
    columns: Columns,
    create_customers: bool,
    scope: QuerySet[Customer],
    owner: int | None,
    errors: ErrorLog,
    result: ImportResult,
    total_bytes: int,
    batch_size: int,
    on_progress: ProgressCallback | None,
) -> set[int]:
    """Row by row parsing, then per batch: resolve, deduplicate and write with the ORM."""
    touched: set[int] = set()
    total = total_bytes
    with SeenKeys() as seen:
        batch: list[PurchaseRow] = []

        def flush() -> None:
            if batch:
                _batch_import(
                    batch, result, errors, seen, touched, scope, owner, create_customers, columns
                )
                batch.clear()
            if on_progress is not None:
                result.failed = errors.count
                on_progress(
                    ImportProgress(source.bytes_read, max(total, source.bytes_read), result)
                )

        for line, fields in source.rows():
            result.read += 1
            try:
                batch.append(parser.parse(line, fields))
            except RowRejected as rejected:
                errors.add(rejected.error)
            if len(batch) >= batch_size:
                flush()
        flush()
    return touched


def _batch_import(
    batch: list[PurchaseRow],
    result: ImportResult,
    errors: ErrorLog,
    seen: SeenKeys,
    touched: set[int],
    scope: QuerySet[Customer],
    owner: int | None,
    create_customers: bool,
    columns: Columns,
) -> None:
    """Resolve, deduplicate and write one batch, all or nothing."""
    rejected: list[RowError] = []
    try:
        with transaction.atomic():
            created_customers = _customers_resolve(
                batch, scope, owner, create_customers, rejected, columns
            )
            rows = [r for r in batch if r.customer_id]
            _products_resolve(rows)
            for row in rows:
                row.dedup_key = purchase_dedup_key(
                    customer_id=row.customer_id,
                    purchased_at=row.purchased_at,
                    amount=row.amount,
                    currency=row.currency,
                    quantity=row.quantity,
                    channel=row.channel,
                    product_id=row.product_id,
                    category=row.category,
                    promotion_code=row.promotion_code,
                    external_id=row.external_id,
                )
            rows = _duplicates_drop(rows, seen, rejected, columns)
            created, updated, changed_customers = _write_orm(rows)
    except DatabaseError as exc:
        for row in batch:
            errors.add(
                RowError(row.line, "", f"the database refused the batch this row was in: {exc}")
            )
        return
    for error in sorted(rejected, key=lambda e: e.line):
        errors.add(error)
    result.customers_created += created_customers
    result.created += created
    result.updated += updated
    result.unchanged += len(rows) - created - updated
    touched.update(changed_customers)


def _customers_resolve(
    batch: list[PurchaseRow],
    scope: QuerySet[Customer],
    owner: int | None,
    create: bool,
    rejected: list[RowError],
    columns: Columns,
) -> int:
    external_ids = {r.customer_external_id for r in batch if r.customer_external_id}
    emails = {r.customer_email.lower() for r in batch if not r.customer_external_id}
    by_external_id = dict(
        scope.filter(external_id__in=external_ids).values_list("external_id", "id")
    )
    by_email = dict(
        scope.annotate(email_lower=Lower("email"))
        .filter(email_lower__in=emails)
        .values_list("email_lower", "id")
    )
    created = 0
    if create:
        missing_ids = external_ids - by_external_id.keys()
        missing_emails = {}
        for r in batch:
            if not r.customer_external_id and r.customer_email.lower() not in by_email:
                missing_emails.setdefault(r.customer_email.lower(), r.customer_email)
        new = [
            Customer(external_id=x, owner_id=owner, source="import") for x in sorted(missing_ids)
        ]
        new += [
            Customer(email=e, email_hash=email_hash(e), owner_id=owner, source="import")
            for e in sorted(missing_emails.values())
        ]
        if new:
            Customer.objects.bulk_create(new, ignore_conflicts=True)
            found_ids = dict(
                scope.filter(external_id__in=missing_ids).values_list("external_id", "id")
            )
            found_emails = dict(
                scope.annotate(email_lower=Lower("email"))
                .filter(email_lower__in=list(missing_emails))
                .values_list("email_lower", "id")
            )
            created = len(found_ids) + len(found_emails)
            by_external_id.update(found_ids)
            by_email.update(found_emails)
    for row in batch:
        if row.customer_external_id:
            row.customer_id = by_external_id.get(row.customer_external_id, 0)
            if not row.customer_id:
                rejected.append(
                    RowError(
                        row.line,
                        columns.column["customer_external_id"],
                        f"unknown customer: no customer with external_id '{row.customer_external_id}'"
                        + ("" if create else " (use --create-customers to create it)"),
                        row.customer_external_id,
                    )
                )
        else:
            row.customer_id = by_email.get(row.customer_email.lower(), 0)
            if not row.customer_id:
                rejected.append(
                    RowError(
                        row.line,
                        columns.column["customer_email"],
                        f"unknown customer: no customer with email '{row.customer_email}'",
                        row.customer_email,
                    )
                )
    return created


def _products_resolve(rows: list[PurchaseRow]) -> None:
    """Find products by SKU; an SKU not in the catalogue yet is added with the row's category."""
    categories = {r.product_sku: r.category for r in rows if r.product_sku}
    if not categories:
        return
    by_sku = dict(Product.objects.filter(sku__in=categories).values_list("sku", "id"))
    missing = categories.keys() - by_sku.keys()
    if missing:
        Product.objects.bulk_create(
            [Product(sku=s, name=s, category=categories[s]) for s in sorted(missing)],
            ignore_conflicts=True,
        )
        by_sku.update(Product.objects.filter(sku__in=missing).values_list("sku", "id"))
    for row in rows:
        if row.product_sku:
            row.product_id = by_sku[row.product_sku]


def _duplicates_drop(
    rows: list[PurchaseRow], seen: SeenKeys, rejected: list[RowError], columns: Columns
) -> list[PurchaseRow]:
    earlier = seen.lookup(r.dedup_key for r in rows)
    first_line: dict[str, int] = {}
    kept = []
    for row in rows:
        line = earlier.get(row.dedup_key) or first_line.get(row.dedup_key)
        if line is None:
            first_line[row.dedup_key] = row.line
            kept.append(row)
            continue
        if row.external_id:
            column = columns.column["external_id"]
            reason = f"duplicate within the file: line {line} has the same external_id"
        else:
            column = ""
            reason = f"duplicate within the file: line {line} has the same purchase"
        rejected.append(RowError(row.line, column, reason, row.external_id or ""))
    seen.add(first_line)
    return kept


_COMPARED = [
    "customer_id",
    "external_id",
    "purchased_at",
    "amount",
    "currency",
    "quantity",
    "channel",
    "product_id",
    "category",
    "promotion_code",
]


def _write_orm(rows: list[PurchaseRow]) -> tuple[int, int, set[int]]:
    existing = {
        p.dedup_key: p for p in Purchase.objects.filter(dedup_key__in=[r.dedup_key for r in rows])
    }
    new: list[Purchase] = []
    updated: list[Purchase] = []
    changed: set[int] = set()
    now = timezone.now()
    for r in rows:
        values = {
            "customer_id": r.customer_id,
            "external_id": r.external_id,
            "purchased_at": r.purchased_at,
            "amount": r.amount,
            "currency": r.currency,
            "quantity": r.quantity,
            "channel": r.channel,
            "product_id": r.product_id,
            "category": r.category,
            "promotion_code": r.promotion_code,
        }
        purchase = existing.get(r.dedup_key)
        if purchase is None:
            new.append(Purchase(dedup_key=r.dedup_key, created_at=now, **values))
            changed.add(r.customer_id)
            continue
        if any(getattr(purchase, k) != v for k, v in values.items()):
            changed.update({purchase.customer_id, r.customer_id})
            for k, v in values.items():
                setattr(purchase, k, v)
            updated.append(purchase)
    Purchase.objects.bulk_create(new, batch_size=500)
    if updated:
        Purchase.objects.bulk_update(updated, _COMPARED, batch_size=500)
    return len(new), len(updated), changed


__all__ = ["ImportFileError", "purchase_dedup_key", "purchases_import", "PURCHASE_FIELDS"]
