"""Importing purchases from CSV.

Every row is parsed and checked by purchase_rows.py; the good rows then go through
purchase_stage.py: chunks COPYed into a staging table, resolved, deduplicated and upserted in
SQL."""

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import BinaryIO, TextIO

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from customers.importing.purchase_rows import PURCHASE_FIELDS
from customers.importing.purchase_stage import customer_scope, purchases_import_sql
from customers.importing.reading import (
    Columns,
    CsvSource,
    ErrorCallback,
    ErrorLog,
    ImportFileError,
    ImportResult,
    ProgressCallback,
)
from customers.models import Purchase
from customers.services import customer_stats_refresh

# Rows per chunk: the statements per chunk are fixed, so a chunk must be big
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
    occurrence: int = 1,
) -> str:
    """The upsert key of a purchase: its order number when it has one, else a hash of the row
    and, from the second on, which identical line of the customer it is.

    A file without order numbers may hold the same line twice for two purchases (the same item
    bought twice on one day): the first is keyed "row:<hash>", the second "row:<hash>:2", the
    third "row:<hash>:3", so each is a purchase and the same file imported again finds the same
    keys (docs/import.md). The first key is the one imports always gave, so files imported
    before match what they stored. Importers and the API both derive it here, so the same
    purchase is stored once whichever way it arrives.
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
    key = "row:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:48]
    return key if occurrence == 1 else f"{key}:{occurrence}"


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
    strict_duplicates: bool = False,
) -> ImportResult:
    """Import purchases from a CSV stream; bad rows are reported, good ones upserted.

    `user` limits the customers purchases may attach to (and owns customers created on the
    way); without it (the command line) every customer is in reach. Identical lines without an
    order number are purchases of their own (purchase_dedup_key), or with `strict_duplicates`
    refused after the first. The figures of every customer the file names are refreshed.
    """
    source = CsvSource(stream)
    columns = Columns(header=source.header, fields=PURCHASE_FIELDS, column_map=column_map or {})
    columns.require_one_of("customer_external_id", "customer_email")
    columns.require_one_of("purchased_at")
    columns.require_one_of("amount")
    errors = ErrorLog(report=report, on_error=on_error)
    result = ImportResult()
    scope, owner = customer_scope(user)
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
        strict_duplicates=strict_duplicates,
    )
    customer_stats_refresh(customer_ids=touched)
    result.failed = errors.count
    result.errors = errors.first
    return result


__all__ = ["ImportFileError", "purchase_dedup_key", "purchases_import", "PURCHASE_FIELDS"]
