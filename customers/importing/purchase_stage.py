"""Importing purchases on PostgreSQL, set-based: each chunk of the file is COPYed into a staging
table of text cells, then checked, resolved, deduplicated and upserted by a fixed number of SQL
statements, whatever the number of rows.

Python reads the CSV once (line numbers, field counts, UTF-8) and parses only what SQL cannot
reproduce exactly: dates (ISO 8601 as `datetime.fromisoformat` reads it, or the strptime format,
with naive values placed in the current time zone by the same rule as everywhere else) and
email addresses (Django's validator). Every other check, the customer and product look-ups, the
upsert key and the duplicate detection run in SQL, and give the same errors as the row-by-row
parser in purchases.py (tests/customers/test_import_sql.py compares them).
"""

import csv
import io
import queue
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from customers.contact_hashes import email_hash
from customers.importing.reading import (
    Columns,
    CsvSource,
    ErrorLog,
    ImportProgress,
    ImportResult,
    ProgressCallback,
    RowError,
)
from customers.importing.values import CellError, choice_lookup, parse_datetime, parse_email
from customers.models import Customer, Product, Purchase

STAGE = "import_purchase_stage"
VALID = "import_purchase_valid"
KEYED = "import_purchase_keyed"
ERRORS = "import_purchase_error"
SEEN = "import_purchase_seen"

# What str.strip() removes, so SQL trims cells exactly as the Python parser does.
_WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
_CHANNELS = choice_lookup(Purchase.Channel.choices)
# The columns an upsert writes and compares, besides the key.
_COMPARED = (
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
)
_LENGTHS = {
    "customer_external_id": 100,
    "external_id": 100,
    "product_sku": 64,
    "category": 100,
    "promotion_code": 64,
}
# Phases of an error within a chunk: the row-by-row parser reports cell errors as it reads,
# then, per batch, unknown customers and duplicates in line order. The same order is kept.
_CELLS, _RESOLVE = 0, 1

# The upsert key of purchase_dedup_key() in SQL; tests prove both give the same key.
DEDUP_KEY_SQL = """CASE WHEN {ext} IS NOT NULL THEN 'ext:' || {ext} ELSE 'row:' || left(encode(
  sha256(convert_to(concat_ws(E'\\x1f', {customer_id}::text,
    replace(to_char({moment} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '.000000', '')
      || '+00:00',
    {amount}::numeric(12, 2)::text, upper({currency}), {quantity}::text, {channel},
    coalesce({product_id}::text, ''), {category}, {promotion_code}), 'UTF8')), 'hex'), 48) END"""


def purchases_import_sql(
    *,
    source: CsvSource,
    columns: Columns,
    date_format: str | None,
    create_customers: bool,
    scope: QuerySet[Customer],
    owner: int | None,
    errors: ErrorLog,
    result: ImportResult,
    total_bytes: int,
    chunk_rows: int,
    on_progress: ProgressCallback | None,
) -> set[int]:
    """Import the rows of `source` chunk by chunk; returns the ids of customers whose figures
    changed. Counts go to `result`, bad rows to `errors`."""
    stage = _PurchaseStage(columns, date_format, create_customers, scope, owner)
    touched: set[int] = set()
    with stage:
        for chunk in _chunks_read(stage, source, chunk_rows):
            result.read += chunk.count
            stage.chunk_import(chunk, result, errors, touched)
            if on_progress is not None:
                result.failed = errors.count
                on_progress(
                    ImportProgress(chunk.bytes_done, max(total_bytes, chunk.bytes_done), result)
                )
    return touched


def _chunks_read(stage: "_PurchaseStage", source: CsvSource, chunk_rows: int) -> Iterator["_Chunk"]:
    """The chunks of the file, read by a thread while the database works on the previous one.

    Reading is Python and the database waits release the GIL, so on two cores both proceed at
    once. At most two chunks wait, so memory stays flat.
    """
    ready: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def hand_over(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            rows = _lookahead(source.rows())
            while True:
                chunk = stage.read(rows, chunk_rows)
                if chunk is not None:
                    chunk.bytes_done = source.bytes_read
                if not hand_over(chunk) or chunk is None:
                    return
        except BaseException as exc:  # re-raised in the importing thread
            hand_over(exc)

    reader = threading.Thread(target=produce, name="purchase-import-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = ready.get()
            if isinstance(item, BaseException):
                raise item
            if item is None:
                return
            yield item
    finally:
        stop.set()
        while reader.is_alive():
            try:
                ready.get(timeout=0.1)
            except queue.Empty:
                pass
        reader.join()


class _Chunk:
    """What Python keeps of one chunk: the errors found while reading, the lines staged."""

    def __init__(self) -> None:
        self.read_errors: list[RowError] = []
        self.lines: list[int] = []
        self.buffer = io.StringIO()
        self.last = False  # the file has no rows after this chunk
        self.count = 0  # rows read, good and bad
        self.bytes_done = 0


class _PurchaseStage:
    def __init__(
        self,
        columns: Columns,
        date_format: str | None,
        create_customers: bool,
        scope: QuerySet[Customer],
        owner: int | None,
    ):
        self.columns = columns
        self.date_format = date_format
        self.create_customers = create_customers
        self.scope = scope
        self.owner = owner
        self.tz = timezone.get_current_timezone()
        self.width = len(columns.header)
        self.scope_sql, self.scope_params = _scope_condition(scope)

    # -- tables --------------------------------------------------------------------------------

    def __enter__(self) -> "_PurchaseStage":
        cells = ", ".join(f"c{i} text NOT NULL" for i in range(self.width))
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {STAGE}, {VALID}, {KEYED}, {ERRORS}, {SEEN}")
            cursor.execute(
                f"CREATE TEMP TABLE {STAGE} (line integer NOT NULL, {cells}, "
                "purchased_at text, date_error text, email_error text)"
            )
            cursor.execute(
                f"CREATE TEMP TABLE {VALID} (line integer NOT NULL, customer_external_id text "
                "NOT NULL, customer_email text NOT NULL, customer_id bigint, external_id text, "
                "purchased_at timestamptz NOT NULL, amount numeric(12, 2) NOT NULL, "
                "currency text NOT NULL, quantity integer NOT NULL, channel text NOT NULL, "
                "product_sku text NOT NULL, category text NOT NULL, promotion_code text NOT NULL)"
            )
            cursor.execute(
                f"CREATE TEMP TABLE {KEYED} (line integer NOT NULL, first_line integer NOT NULL, "
                "customer_id bigint NOT NULL, external_id text, dedup_key text NOT NULL, "
                "purchased_at timestamptz NOT NULL, amount numeric(12, 2) NOT NULL, "
                "currency text NOT NULL, quantity integer NOT NULL, channel text NOT NULL, "
                "product_id bigint, category text NOT NULL, promotion_code text NOT NULL)"
            )
            cursor.execute(
                f"CREATE TEMP TABLE {ERRORS} (phase integer NOT NULL, line integer NOT NULL, "
                "col text NOT NULL, value text NOT NULL, reason text NOT NULL)"
            )
            cursor.execute(
                f"CREATE TEMP TABLE {SEEN} (key text PRIMARY KEY, line integer NOT NULL)"
            )
        return self

    def __exit__(self, *exc_info) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {STAGE}, {VALID}, {KEYED}, {ERRORS}, {SEEN}")

    # -- reading -------------------------------------------------------------------------------

    def read(
        self,
        rows: Iterator[tuple[tuple[int, list[str] | None], bool]],
        limit: int,
    ) -> _Chunk | None:
        """Read up to `limit` rows into a CSV buffer for COPY; None at the end of the file."""
        chunk = _Chunk()
        write = csv.writer(chunk.buffer, lineterminator="\n").writerow
        lines = chunk.lines
        width = self.width
        index = self.columns.index
        date_at = index["purchased_at"]
        email_at = index.get("customer_email")
        date_format = self.date_format
        tz = self.tz
        fromisoformat = _fromisoformat_utc if date_format is None else None
        count = 0
        for (line, fields), last in rows:
            count += 1
            chunk.last = last
            if fields is None:
                chunk.read_errors.append(RowError(line, "", "the line is not valid UTF-8"))
            elif len(fields) != width:
                chunk.read_errors.append(
                    RowError(
                        line, "", f"expected {width} fields as in the header, found {len(fields)}"
                    )
                )
            else:
                moment = date_error = email_error = None
                text = fields[date_at].strip()
                if not text:
                    date_error = "required"
                elif fromisoformat is not None and (moment := fromisoformat(text, tz)):
                    pass
                else:
                    try:
                        moment = (
                            parse_datetime(text, date_format=date_format, tz=tz)
                            .astimezone(UTC)
                            .isoformat()
                        )
                    except CellError as exc:
                        date_error = str(exc)
                    except OverflowError:
                        date_error = f"'{text}' is out of the range of dates"
                if email_at is not None:
                    text = fields[email_at].strip()
                    if text:
                        try:
                            parse_email(text)
                        except CellError as exc:
                            email_error = str(exc)
                lines.append(line)
                write((line, *fields, moment, date_error, email_error))
            if count >= limit:
                break
        chunk.count = count
        return chunk if count else None

    # -- one chunk -----------------------------------------------------------------------------

    def chunk_import(
        self, chunk: _Chunk, result: ImportResult, errors: ErrorLog, touched: set[int]
    ) -> None:
        """Check, resolve, deduplicate and upsert one chunk, all or nothing."""
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    # Sorting a chunk by its keys fits in memory instead of spilling to disk.
                    cursor.execute("SET LOCAL work_mem = '64MB'")
                    cursor.execute(f"TRUNCATE {STAGE}, {VALID}, {KEYED}, {ERRORS}")
                    if chunk.lines:
                        self._copy(cursor, chunk)
                        self._check(cursor)
                        result.customers_created += self._customers_create(cursor)
                        self._unknown_customers_reject(cursor)
                        self._products_create(cursor)
                        kept = self._key(cursor, remember=not chunk.last)
                        created, updated = self._write(cursor, touched)
                    else:
                        kept = created = updated = 0
                    cursor.execute(
                        f"SELECT phase, line, col, value, reason FROM {ERRORS} ORDER BY phase, line"
                    )
                    found = cursor.fetchall()
        except DatabaseError as exc:
            for error in chunk.read_errors:
                errors.add(error)
            for line in chunk.lines:
                errors.add(
                    RowError(line, "", f"the database refused the batch this row was in: {exc}")
                )
            return
        first = sorted(
            chunk.read_errors
            + [
                RowError(line, col, reason, value)
                for phase, line, col, value, reason in found
                if phase == _CELLS
            ],
            key=lambda e: e.line,
        )
        for error in first:
            errors.add(error)
        for phase, line, col, value, reason in found:
            if phase == _RESOLVE:
                errors.add(RowError(line, col, reason, value))
        result.created += created
        result.updated += updated
        result.unchanged += kept - created - updated

    def _copy(self, cursor, chunk: _Chunk) -> None:
        cells = ", ".join(f"c{i}" for i in range(self.width))
        with cursor.cursor.copy(
            f"COPY {STAGE} (line, {cells}, purchased_at, date_error, email_error) FROM STDIN "
            f"(FORMAT csv, FORCE_NOT_NULL ({cells}))"
        ) as copy:
            copy.write(chunk.buffer.getvalue())
        chunk.buffer = io.StringIO()

    def _raw(self, field: str) -> str:
        i = self.columns.index.get(field)
        return f"s.c{i}" if i is not None else "''"

    def _column(self, field: str) -> str:
        return self.columns.column.get(field, field)

    def _check(self, cursor) -> None:
        """Cell checks in SQL: bad rows into the error table, good ones typed into VALID with
        their customer when it is known and in reach."""
        fields = (
            "customer_external_id",
            "customer_email",
            "external_id",
            "amount",
            "currency",
            "quantity",
            "channel",
            "product_sku",
            "category",
            "promotion_code",
        )
        # btrim() with a set of characters is slow: only cells that start or end with
        # something other than printable ASCII need it.
        trimmed = ", ".join(
            f"CASE WHEN ascii({self._raw(f)}) BETWEEN 33 AND 126 AND ascii(right({self._raw(f)}, 1)) "
            f"BETWEEN 33 AND 126 THEN {self._raw(f)} ELSE btrim({self._raw(f)}, %(ws)s) END AS {f}"
            for f in fields
        )
        who = (
            "customer_external_id" if self.columns.has("customer_external_id") else "customer_email"
        )

        def too_long(field: str) -> str:
            n = _LENGTHS[field]
            return (
                f"WHEN char_length(v.{field}) > {n} THEN ARRAY['{field}', 'too long: ' || "
                f"char_length(v.{field}) || ' characters, at most {n}']"
            )

        params: dict = {"ws": _WHITESPACE}
        channel = (
            "CASE lower(v.channel) "
            + " ".join(f"WHEN %(ck{i})s THEN %(cv{i})s" for i in range(len(_CHANNELS)))
            + " END"
        )
        for i, (key, value) in enumerate(_CHANNELS.items()):
            params[f"ck{i}"], params[f"cv{i}"] = key, value
        params["channel_list"] = ", ".join(Purchase.Channel.values)
        columns_case = " ".join(
            f"WHEN %(f_{f})s THEN %(col_{f})s" for f in (*fields, "purchased_at")
        )
        values_case = " ".join(
            f"WHEN %(f_{f})s THEN {self._raw(f)}" for f in (*fields, "purchased_at")
        )
        for f in (*fields, "purchased_at"):
            params[f"f_{f}"] = f
            params[f"col_{f}"] = self._column(f)
        params.update(self.scope_params)
        cursor.execute(
            f"""
            WITH trimmed AS MATERIALIZED (
              SELECT s.line, s.purchased_at, s.date_error, s.email_error, {trimmed} FROM {STAGE} s
            ), checked AS MATERIALIZED (
              SELECT v.*, {channel} AS channel_value, CASE
                {too_long("customer_external_id")}
                WHEN v.email_error IS NOT NULL THEN ARRAY['customer_email', v.email_error]
                WHEN v.customer_external_id = '' AND v.customer_email = ''
                  THEN ARRAY['{who}', 'required: which customer made the purchase']
                {too_long("external_id")}
                WHEN v.date_error IS NOT NULL THEN ARRAY['purchased_at', v.date_error]
                WHEN v.amount = '' THEN ARRAY['amount', 'required']
                WHEN NOT CASE translate(v.amount, '0123456789', '')
                  WHEN '' THEN char_length(v.amount) <= 10
                  WHEN '.' THEN strpos(v.amount, '.') <= 11
                    AND char_length(v.amount) - strpos(v.amount, '.') BETWEEN 1 AND 2
                  ELSE false END THEN ARRAY['amount', CASE
                  WHEN left(v.amount, 1) = '-'
                  THEN '''' || v.amount || ''' is negative: amounts must be 0 or more'
                  ELSE '''' || v.amount || ''' is not an amount: use digits with ''.'' for '
                    'decimals, at most 2 decimals and 10 digits before the point (1234.50)' END]
                WHEN v.currency <> '' AND v.currency !~ '^[A-Za-z]{{3}}$'
                  THEN ARRAY['currency', '''' || v.currency
                    || ''' is not a currency: use a 3-letter ISO 4217 code (EUR)']
                WHEN v.quantity <> '' AND NOT CASE WHEN char_length(v.quantity) <= 9
                    AND translate(v.quantity, '0123456789', '') = ''
                  THEN v.quantity::integer >= 1 ELSE false END
                  THEN ARRAY['quantity', '''' || v.quantity
                    || ''' is not a quantity: use a whole number of 1 or more']
                WHEN v.channel <> '' AND {channel} IS NULL
                  THEN ARRAY['channel', '''' || v.channel
                    || ''' is not a channel: use one of ' || %(channel_list)s]
                {too_long("product_sku")}
                {too_long("category")}
                {too_long("promotion_code")}
              END AS bad
              FROM trimmed v
            ), rejected AS (
              INSERT INTO {ERRORS} (phase, line, col, value, reason)
              SELECT {_CELLS}, c.line, CASE c.bad[1] {columns_case} END,
                CASE c.bad[1] {values_case} ELSE '' END, c.bad[2]
              FROM checked c JOIN {STAGE} s USING (line) WHERE c.bad IS NOT NULL
            )
            INSERT INTO {VALID}
            SELECT c.line, c.customer_external_id, c.customer_email,
              CASE WHEN c.customer_external_id <> '' THEN by_id.id ELSE by_email.id END,
              nullif(c.external_id, ''), c.purchased_at::timestamptz, c.amount::numeric(12, 2),
              coalesce(upper(nullif(c.currency, '')), 'EUR'),
              coalesce(nullif(c.quantity, '')::integer, 1),
              coalesce(c.channel_value, '{Purchase.Channel.ONLINE}'),
              c.product_sku, c.category, c.promotion_code
            FROM checked c
            LEFT JOIN {Customer._meta.db_table} by_id
              ON c.customer_external_id <> '' AND by_id.external_id = c.customer_external_id
              AND {self.scope_sql.format(alias="by_id")}
            LEFT JOIN {Customer._meta.db_table} by_email
              ON c.customer_external_id = '' AND lower(by_email.email) = lower(c.customer_email)
              AND {self.scope_sql.format(alias="by_email")}
            WHERE c.bad IS NULL
            """,
            params,
        )

    def _customers_create(self, cursor) -> int:
        """With --create-customers: add the unknown customers of the chunk and resolve them."""
        if not self.create_customers:
            return 0
        cursor.execute(
            f"SELECT DISTINCT customer_external_id FROM {VALID} "
            "WHERE customer_id IS NULL AND customer_external_id <> '' ORDER BY 1"
        )
        missing_ids = [r[0] for r in cursor.fetchall()]
        cursor.execute(
            f"SELECT DISTINCT ON (lower(customer_email)) customer_email FROM {VALID} "
            "WHERE customer_id IS NULL AND customer_external_id = '' "
            "ORDER BY lower(customer_email), line"
        )
        missing_emails = sorted(r[0] for r in cursor.fetchall())
        if not missing_ids and not missing_emails:
            return 0
        new = [Customer(external_id=x, owner_id=self.owner, source="import") for x in missing_ids]
        new += [
            Customer(email=e, email_hash=email_hash(e), owner_id=self.owner, source="import")
            for e in missing_emails
        ]
        Customer.objects.bulk_create(new, batch_size=2000, ignore_conflicts=True)
        created = 0
        for start in range(0, len(missing_ids), 10_000):
            created += self.scope.filter(
                external_id__in=missing_ids[start : start + 10_000]
            ).count()
        lowered = [e.lower() for e in missing_emails]
        for start in range(0, len(lowered), 10_000):
            created += (
                self.scope.annotate(email_lower=Lower("email"))
                .filter(email_lower__in=lowered[start : start + 10_000])
                .count()
            )
        cursor.execute(
            f"""
            UPDATE {VALID} v SET customer_id = c.id FROM {Customer._meta.db_table} c
            WHERE v.customer_id IS NULL AND {self.scope_sql.format(alias="c")} AND (
              (v.customer_external_id <> '' AND c.external_id = v.customer_external_id)
              OR (v.customer_external_id = '' AND lower(c.email) = lower(v.customer_email)))
            """,
            self.scope_params,
        )
        return created

    def _unknown_customers_reject(self, cursor) -> None:
        hint = "" if self.create_customers else " (use --create-customers to create it)"
        cursor.execute(
            f"""
            INSERT INTO {ERRORS} (phase, line, col, value, reason)
            SELECT {_RESOLVE}, line,
              CASE WHEN customer_external_id <> '' THEN %(id_col)s ELSE %(email_col)s END,
              CASE WHEN customer_external_id <> '' THEN customer_external_id
                ELSE customer_email END,
              CASE WHEN customer_external_id <> ''
                THEN 'unknown customer: no customer with external_id ''' || customer_external_id
                  || '''' || %(hint)s
                ELSE 'unknown customer: no customer with email ''' || customer_email || '''' END
            FROM {VALID} WHERE customer_id IS NULL
            """,
            {
                "id_col": self.columns.column.get("customer_external_id", ""),
                "email_col": self.columns.column.get("customer_email", ""),
                "hint": hint,
            },
        )

    def _products_create(self, cursor) -> None:
        """An SKU not in the catalogue yet is added with the category of its last row."""
        cursor.execute(
            f"""
            SELECT DISTINCT ON (v.product_sku) v.product_sku, v.category FROM {VALID} v
            WHERE v.customer_id IS NOT NULL AND v.product_sku <> '' AND NOT EXISTS (
              SELECT 1 FROM {Product._meta.db_table} p WHERE p.sku = v.product_sku)
            ORDER BY v.product_sku, v.line DESC
            """
        )
        missing = cursor.fetchall()
        if missing:
            Product.objects.bulk_create(
                [Product(sku=sku, name=sku, category=category) for sku, category in missing],
                batch_size=2000,
                ignore_conflicts=True,
            )

    def _key(self, cursor, *, remember: bool) -> int:
        """Upsert keys in SQL, the first line of each key in the file; returns the rows kept.

        The keys are remembered for the chunks still to come unless this is the last one."""
        key = DEDUP_KEY_SQL.format(
            ext="v.external_id",
            customer_id="v.customer_id",
            moment="v.purchased_at",
            amount="v.amount",
            currency="v.currency",
            quantity="v.quantity",
            channel="v.channel",
            product_id="p.id",
            category="v.category",
            promotion_code="v.promotion_code",
        )
        cursor.execute(
            f"""
            INSERT INTO {KEYED}
            SELECT k.line, coalesce(seen.line, min(k.line) OVER (PARTITION BY k.dedup_key)),
              k.customer_id, k.external_id, k.dedup_key, k.purchased_at, k.amount, k.currency,
              k.quantity, k.channel, k.product_id, k.category, k.promotion_code
            FROM (
              SELECT v.*, p.id AS product_id, {key} AS dedup_key
              FROM {VALID} v
              LEFT JOIN {Product._meta.db_table} p ON v.product_sku <> '' AND p.sku = v.product_sku
              WHERE v.customer_id IS NOT NULL
            ) k
            LEFT JOIN {SEEN} seen ON seen.key = k.dedup_key
            """
        )
        keyed = cursor.rowcount
        cursor.execute(
            f"""
            INSERT INTO {ERRORS} (phase, line, col, value, reason)
            SELECT {_RESOLVE}, line,
              CASE WHEN external_id IS NOT NULL THEN %(ext_col)s ELSE '' END,
              coalesce(external_id, ''),
              'duplicate within the file: line ' || first_line || CASE
                WHEN external_id IS NOT NULL THEN ' has the same external_id'
                ELSE ' has the same purchase' END
            FROM {KEYED} WHERE line <> first_line
            """,
            {"ext_col": self.columns.column.get("external_id", "external_id")},
        )
        duplicates = cursor.rowcount
        if remember:
            cursor.execute(
                f"INSERT INTO {SEEN} (key, line) SELECT dedup_key, line FROM {KEYED} "
                "WHERE line = first_line"
            )
        return keyed - duplicates

    def _write(self, cursor, touched: set[int]) -> tuple[int, int]:
        """One INSERT ... ON CONFLICT for the chunk; returns (created, updated) and adds the
        customers whose figures change to `touched`."""
        table = Purchase._meta.db_table
        # An order moved to another customer: the old customer's figures change too.
        cursor.execute(
            f"SELECT DISTINCT p.customer_id FROM {table} p JOIN {KEYED} k USING (dedup_key) "
            "WHERE k.line = k.first_line AND k.external_id IS NOT NULL "
            "AND p.customer_id <> k.customer_id"
        )
        touched.update(r[0] for r in cursor.fetchall())
        columns = ", ".join(["dedup_key", *_COMPARED])
        cursor.execute(
            f"""
            WITH written AS (
              INSERT INTO {table} AS p ({columns}, created_at)
              SELECT {columns}, now() FROM {KEYED} WHERE line = first_line
              ON CONFLICT (dedup_key) DO UPDATE SET
                {", ".join(f"{c} = EXCLUDED.{c}" for c in _COMPARED)}
              WHERE ({", ".join("p." + c for c in _COMPARED)}) IS DISTINCT FROM
                ({", ".join("EXCLUDED." + c for c in _COMPARED)})
              RETURNING (xmax = 0) AS inserted, customer_id
            )
            SELECT count(*) FILTER (WHERE inserted), count(*),
              coalesce(array_agg(DISTINCT customer_id), '{{}}')
            FROM written
            """
        )
        created, written, customer_ids = cursor.fetchone()
        touched.update(customer_ids)
        return created, written - created


def _lookahead(rows: Iterator) -> Iterator[tuple[object, bool]]:
    """Each item with whether it is the last one."""
    previous = next(rows, None)
    if previous is None:
        return
    for item in rows:
        yield previous, False
        previous = item
    yield previous, True


def _fromisoformat_utc(text: str, tz) -> str | None:
    """The fast path of parse_datetime for ISO dates: the moment in UTC, None when not ISO."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    try:
        return value.astimezone(UTC).isoformat()
    except OverflowError:
        return None


def _scope_condition(scope: QuerySet[Customer]) -> tuple[str, dict]:
    """The customers in reach as a condition on a customer alias ({alias}.id IN (...))."""
    if not scope.query.where:
        return "true", {}
    if scope.query.is_empty():
        return "false", {}
    sql, params = scope.values("id").query.sql_with_params()
    named = {f"scope{i}": p for i, p in enumerate(params)}
    sql = sql.replace("{", "{{").replace("}", "}}")
    sql = sql % tuple(f"%(scope{i})s" for i in range(len(params)))
    return "{alias}.id IN (" + sql + ")", named


def customer_scope(user: AbstractBaseUser | None) -> tuple[QuerySet[Customer], int | None]:
    """The customers purchases may attach to, and the owner of customers created on the way."""
    from customers.selectors import customers_visible_to

    if user is None:
        return Customer.objects.all(), None
    owner = None if user.is_superuser else user.pk
    return customers_visible_to(user), owner
