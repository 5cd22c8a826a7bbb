"""Importing purchases on PostgreSQL, set-based: each chunk of the file is parsed by Python
while the database works on the previous one, COPYed into a staging table of typed values, then
resolved, keyed, deduplicated and upserted by a fixed number of SQL statements, whatever the
number of rows.

Python checks the cells with the same parser as the row-by-row import (purchase_rows.py), so
both report the same errors; it is also the one pass over the rows that the CSV reading needs
anyway. The customer and product look-ups, the upsert key (tests/customers/test_import_sql.py
proves it equal to purchase_dedup_key) and the duplicate detection run in SQL.
"""

import io
import queue
import sys
import threading
from collections.abc import Iterator

from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet
from django.db.models.functions import Lower

from customers.contact_hashes import email_hash
from customers.importing.batches import commits_flush, temp_buffers_raise
from customers.importing.purchase_rows import PURCHASE_FIELDS, PurchaseParser, RowRejected
from customers.importing.reading import (
    Columns,
    CsvSource,
    ErrorLog,
    ImportProgress,
    ImportResult,
    ProgressCallback,
    RowError,
)
from customers.marks import customers_mark
from customers.models import Customer, Product, Purchase

VALID = "import_purchase_valid"
KEYED = "import_purchase_keyed"
ERRORS = "import_purchase_error"
SEEN = "import_purchase_seen"

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
# The values of a row as parsed, in the order of PurchaseValues, COPYed after the line number.
_STAGED = PURCHASE_FIELDS
# COPY's text format: a tab between values, \N for NULL, these characters escaped in values.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

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
    strict_duplicates: bool = False,
) -> set[int]:
    """Import the rows of `source` chunk by chunk; returns the ids of the customers whose
    figures are to be refreshed: every customer the file names (also when a row of theirs
    changed nothing: an earlier attempt of the same import may have written it without
    refreshing them) and any an order moved away from. Counts go to `result`, bad rows to
    `errors`."""
    stage = _PurchaseStage(columns, date_format, create_customers, scope, owner, strict_duplicates)
    touched: set[int] = set()
    with stage:
        for chunk in chunks_read(stage, source, chunk_rows):
            result.read += chunk.count
            stage.chunk_import(chunk, result, errors, touched)
            if on_progress is not None:
                result.failed = errors.count
                on_progress(
                    ImportProgress(chunk.bytes_done, max(total_bytes, chunk.bytes_done), result)
                )
    commits_flush()
    return touched


READER_SWITCH_INTERVAL = 0.0005  # seconds


def chunks_read(stage, source: CsvSource, chunk_rows: int) -> Iterator:
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
    # When a reply of the database arrives, the importing thread needs the GIL back from the
    # reader, and Python hands it over only every switch interval (5 ms by default): a chunk's
    # dozen statements would each wait for it. A shorter interval keeps the database busy.
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(min(switch_interval, READER_SWITCH_INTERVAL))
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
        sys.setswitchinterval(switch_interval)


class _Chunk:
    """What Python keeps of one chunk: the errors found while reading, the rows to COPY."""

    def __init__(self) -> None:
        self.read_errors: list[RowError] = []
        self.staged = 0  # rows in the buffer
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
        strict_duplicates: bool = False,
    ):
        self.columns = columns
        self.strict_duplicates = strict_duplicates
        self.parser = PurchaseParser(columns, date_format)
        self.create_customers = create_customers
        self.scope = scope
        self.owner = owner
        self.scope_sql, self.scope_params = _scope_condition(scope)

    # -- tables --------------------------------------------------------------------------------

    def __enter__(self) -> "_PurchaseStage":
        values = (
            "customer_external_id text NOT NULL, customer_email text NOT NULL, external_id text, "
            "purchased_at timestamptz NOT NULL, amount numeric(12, 2) NOT NULL, "
            "currency text NOT NULL, quantity integer NOT NULL, channel text NOT NULL, "
            "product_sku text NOT NULL, category text NOT NULL, promotion_code text NOT NULL"
        )
        temp_buffers_raise()
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {VALID}, {KEYED}, {ERRORS}, {SEEN}")
            cursor.execute(f"CREATE TEMP TABLE {VALID} (line integer NOT NULL, {values})")
            cursor.execute(
                f"CREATE TEMP TABLE {KEYED} (line integer NOT NULL, customer_id bigint, "
                f"product_id bigint, {values})"
            )
            cursor.execute(
                f"CREATE TEMP TABLE {ERRORS} (phase integer NOT NULL, line integer NOT NULL, "
                "col text NOT NULL, value text NOT NULL, reason text NOT NULL)"
            )
            # The keys of the file so far with the line that had them first; for a purchase
            # without an order number its content key, with how many identical lines so far.
            cursor.execute(
                f"CREATE TEMP TABLE {SEEN} (key text PRIMARY KEY, line integer NOT NULL, "
                "n integer NOT NULL DEFAULT 1)"
            )
        return self

    def __exit__(self, *exc_info) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {VALID}, {KEYED}, {ERRORS}, {SEEN}")

    # -- reading -------------------------------------------------------------------------------

    def read(
        self,
        rows: Iterator[tuple[tuple[int, list[str] | None], bool]],
        limit: int,
    ) -> _Chunk | None:
        """Parse up to `limit` rows into a COPY buffer; None at the end of the file."""
        chunk = _Chunk()
        write = chunk.buffer.write
        parse = self.parser.values
        read_errors = chunk.read_errors
        escapes = _COPY_ESCAPES
        count = staged = 0
        for (line, fields), last in rows:
            count += 1
            chunk.last = last
            try:
                (
                    customer_external_id,
                    customer_email,
                    external_id,
                    purchased_at,
                    amount,
                    currency,
                    quantity,
                    channel,
                    product_sku,
                    category,
                    promotion_code,
                ) = parse(line, fields)
            except RowRejected as rejected:
                read_errors.append(rejected.error)
            else:
                values = (
                    customer_external_id,
                    customer_email,
                    external_id or "",  # no order number: NULL once resolved
                    purchased_at.isoformat(),
                    str(amount),
                    currency,
                    str(quantity),
                    channel,
                    product_sku,
                    category,
                    promotion_code,
                )
                text = "\t".join(values)
                if "\\" in text or "\n" in text or "\r" in text or text.count("\t") != 10:
                    text = "\t".join(v.translate(escapes) for v in values)
                write(f"{line}\t{text}\n")
                staged += 1
            if count >= limit:
                break
        chunk.count = count
        chunk.staged = staged
        return chunk if count else None

    # -- one chunk -----------------------------------------------------------------------------

    def chunk_import(
        self, chunk: _Chunk, result: ImportResult, errors: ErrorLog, touched: set[int]
    ) -> None:
        """Resolve, key, deduplicate and upsert one chunk, all or nothing."""
        identical: tuple[int, list[int]] = (0, [])
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    # Sorting a chunk by its keys fits in memory instead of spilling to disk.
                    cursor.execute("SET LOCAL work_mem = '64MB'")
                    # The row estimates of a chunk's statements pass the threshold of JIT
                    # compilation, which then costs more than the few thousand rows it speeds up.
                    cursor.execute("SET LOCAL jit = off")
                    # The commits wait for the disk once, at the end (commits_flush): when the
                    # import says it is done, all of it is.
                    cursor.execute("SET LOCAL synchronous_commit = off")
                    cursor.execute(f"TRUNCATE {VALID}, {KEYED}, {ERRORS}")
                    if chunk.staged:
                        self._copy(cursor, chunk)
                        result.customers_created += self._resolve(cursor)
                        kept, created, updated, identical = self._write(
                            cursor, touched, remember=not chunk.last
                        )
                        cursor.execute(
                            f"SELECT line, col, value, reason FROM {ERRORS} ORDER BY line"
                        )
                        found = cursor.fetchall()
                    else:
                        kept = created = updated = 0
                        found = []
        except DatabaseError as exc:
            reason = f"the database refused the batch this row was in: {exc}"
            found = [(line, "", "", reason) for line in _staged_lines(chunk)]
            kept = created = updated = 0
        # The errors of a chunk in the order of the file.
        for error in sorted(
            chunk.read_errors
            + [RowError(line, col, reason, value) for line, col, value, reason in found],
            key=lambda e: e.line,
        ):
            errors.add(error)
        result.created += created
        result.updated += updated
        result.unchanged += kept - created - updated
        result.identical_lines += identical[0]
        result.identical_examples = (result.identical_examples + identical[1])[:5]

    def _copy(self, cursor, chunk: _Chunk) -> None:
        with cursor.cursor.copy(f"COPY {VALID} (line, {', '.join(_STAGED)}) FROM STDIN") as copy:
            copy.write(chunk.buffer.getvalue())

    def _resolve(self, cursor) -> int:
        """Each row's customer and product into KEYED; creates what is missing and may be
        created. Returns the customers created."""
        customers = Customer._meta.db_table
        cursor.execute(
            f"""
            WITH resolved AS (
              INSERT INTO {KEYED} (line, customer_id, product_id, {", ".join(_STAGED)})
              SELECT v.line,
                CASE WHEN v.customer_external_id <> '' THEN by_id.id ELSE by_email.id END, p.id,
                {", ".join("nullif(v.external_id, '')" if f == "external_id" else "v." + f for f in _STAGED)}
              FROM {VALID} v
              LEFT JOIN {customers} by_id
                ON v.customer_external_id <> '' AND by_id.external_id = v.customer_external_id
                AND {self.scope_sql.format(alias="by_id")}
              LEFT JOIN {customers} by_email
                ON v.customer_external_id = '' AND lower(by_email.email) = lower(v.customer_email)
                AND {self.scope_sql.format(alias="by_email")}
              LEFT JOIN {Product._meta.db_table} p ON v.product_sku <> '' AND p.sku = v.product_sku
              RETURNING customer_id, product_id, product_sku
            )
            SELECT count(*) FILTER (WHERE customer_id IS NULL),
              count(*) FILTER (WHERE customer_id IS NOT NULL AND product_sku <> ''
                AND product_id IS NULL)
            FROM resolved
            """,
            self.scope_params,
        )
        unknown_customers, unknown_products = cursor.fetchone()
        created = 0
        if unknown_customers and self.create_customers:
            created = self._customers_create(cursor)
            cursor.execute(
                f"SELECT count(*) FROM {KEYED} "
                "WHERE customer_id IS NOT NULL AND product_sku <> '' AND product_id IS NULL"
            )
            [unknown_products] = cursor.fetchone()
        if unknown_products:
            self._products_create(cursor)
        return created

    def _customers_create(self, cursor) -> int:
        """With --create-customers: add the unknown customers of the chunk and resolve them."""
        cursor.execute(
            f"SELECT DISTINCT customer_external_id FROM {KEYED} "
            "WHERE customer_id IS NULL AND customer_external_id <> '' ORDER BY 1"
        )
        missing_ids = [r[0] for r in cursor.fetchall()]
        cursor.execute(
            f"SELECT DISTINCT ON (lower(customer_email)) customer_email FROM {KEYED} "
            "WHERE customer_id IS NULL AND customer_external_id = '' "
            "ORDER BY lower(customer_email), line"
        )
        missing_emails = sorted(r[0] for r in cursor.fetchall())
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
            UPDATE {KEYED} k SET customer_id = c.id FROM {Customer._meta.db_table} c
            WHERE k.customer_id IS NULL AND {self.scope_sql.format(alias="c")} AND (
              (k.customer_external_id <> '' AND c.external_id = k.customer_external_id)
              OR (k.customer_external_id = '' AND lower(c.email) = lower(k.customer_email)))
            """,
            self.scope_params,
        )
        return created

    def _products_create(self, cursor) -> None:
        """An SKU not in the catalogue yet is added with the category of its last row."""
        products = Product._meta.db_table
        cursor.execute(
            f"""
            SELECT DISTINCT ON (product_sku) product_sku, category FROM {KEYED}
            WHERE customer_id IS NOT NULL AND product_sku <> '' AND product_id IS NULL
            ORDER BY product_sku, line DESC
            """
        )
        missing = cursor.fetchall()
        Product.objects.bulk_create(
            [Product(sku=sku, name=sku, category=category) for sku, category in missing],
            batch_size=2000,
            ignore_conflicts=True,
        )
        cursor.execute(
            f"UPDATE {KEYED} k SET product_id = p.id FROM {products} p "
            "WHERE k.product_id IS NULL AND k.product_sku <> '' AND p.sku = k.product_sku"
        )

    def _write(
        self, cursor, touched: set[int], *, remember: bool
    ) -> tuple[int, int, int, tuple[int, list[int]]]:
        """One statement for the rest of the chunk: the upsert key of each row, the unknown
        customers and the duplicates reported, one INSERT ... ON CONFLICT for the others.

        A purchase without an order number is keyed on its content and its occurrence among the
        identical lines of the file (purchase_dedup_key): the n-th identical line gets the
        content key with ":n" from the second on, counting the lines of earlier chunks kept in
        SEEN. With `strict_duplicates` every identical line after the first is refused instead.

        Returns (rows kept, created, updated, (identical lines, the first of their line
        numbers)) and adds the customers whose figures change to `touched`. The keys are
        remembered for the chunks still to come unless `remember` is false (the last chunk)."""
        table = Purchase._meta.db_table
        key = DEDUP_KEY_SQL.format(
            ext="external_id",
            customer_id="customer_id",
            moment="purchased_at",
            amount="amount",
            currency="currency",
            quantity="quantity",
            channel="channel",
            product_id="product_id",
            category="category",
            promotion_code="promotion_code",
        )
        hint = "" if self.create_customers else " (use --create-customers to create it)"
        columns = ", ".join(["dedup_key", *_COMPARED])
        remembered = (
            f"""remembered AS (
              INSERT INTO {SEEN} (key, line, n)
              SELECT CASE WHEN counted THEN base_key ELSE dedup_key END, min(line),
                max(occurrence)
              FROM f WHERE line = first_line GROUP BY 1
              ON CONFLICT (key) DO UPDATE SET n = EXCLUDED.n
            ),"""
            if remember
            else ""
        )
        cursor.execute(
            f"""
            WITH k0 AS (
              SELECT *, {key} AS base_key,
                external_id IS NULL AND NOT %(strict)s AS counted
              FROM {KEYED} WHERE customer_id IS NOT NULL
            ), b AS MATERIALIZED (
              -- The purchase stored under the content key, looked up one index probe a row,
              -- and the rank of the row among the identical lines of the chunk.
              SELECT k0.*, stored.customer_id AS base_stored_customer_id,
                CASE WHEN k0.counted
                  THEN row_number() OVER (PARTITION BY k0.base_key ORDER BY k0.line)
                  ELSE 1 END AS chunk_rank
              FROM k0 LEFT JOIN LATERAL (
                SELECT p.customer_id FROM {table} p WHERE p.dedup_key = k0.base_key OFFSET 0
              ) stored ON true
            ), k AS MATERIALIZED (
              -- Identical lines of earlier chunks are stored by now: only then is SEEN read.
              SELECT b.*, o.occurrence, CASE WHEN o.occurrence > 1
                THEN b.base_key || ':' || o.occurrence ELSE b.base_key END AS dedup_key
              FROM b CROSS JOIN LATERAL (
                SELECT b.chunk_rank + CASE
                  WHEN b.counted AND b.base_stored_customer_id IS NOT NULL
                  THEN coalesce((SELECT s.n FROM {SEEN} s WHERE s.key = b.base_key), 0)
                  ELSE 0 END AS occurrence
              ) o
            ), d AS MATERIALIZED (
              SELECT k.*, min(k.line) OVER (PARTITION BY k.dedup_key) AS chunk_first,
                CASE WHEN k.occurrence = 1 THEN k.base_stored_customer_id
                  ELSE stored.customer_id END AS stored_customer_id
              FROM k LEFT JOIN LATERAL (
                SELECT p.customer_id FROM {table} p
                WHERE k.occurrence > 1 AND p.dedup_key = k.dedup_key OFFSET 0
              ) stored ON true
            ), f AS MATERIALIZED (
              -- A key of an earlier chunk is stored by now: only those are looked for there.
              SELECT d.*, coalesce(CASE WHEN d.stored_customer_id IS NOT NULL THEN (
                SELECT s.line FROM {SEEN} s WHERE s.key = d.dedup_key) END, d.chunk_first)
                AS first_line
              FROM d
            ), unknown AS (
              INSERT INTO {ERRORS} (phase, line, col, value, reason)
              SELECT 0, line,
                CASE WHEN customer_external_id <> '' THEN %(id_col)s ELSE %(email_col)s END,
                CASE WHEN customer_external_id <> '' THEN customer_external_id
                  ELSE customer_email END,
                CASE WHEN customer_external_id <> ''
                  THEN 'unknown customer: no customer with external_id ''' || customer_external_id
                    || '''' || %(hint)s
                  ELSE 'unknown customer: no customer with email ''' || customer_email || ''''
                END
              FROM {KEYED} WHERE customer_id IS NULL
            ), duplicates AS (
              INSERT INTO {ERRORS} (phase, line, col, value, reason)
              SELECT 0, line,
                CASE WHEN external_id IS NOT NULL THEN %(ext_col)s ELSE '' END,
                coalesce(external_id, ''),
                'duplicate within the file: line ' || first_line || CASE
                  WHEN external_id IS NOT NULL THEN ' has the same external_id'
                  ELSE ' has the same purchase' END
              FROM f WHERE line <> first_line
            ), {remembered} written AS (
              INSERT INTO {table} AS p ({columns}, created_at)
              SELECT {columns}, now() FROM f WHERE line = first_line
              ON CONFLICT (dedup_key) DO UPDATE SET
                {", ".join(f"{c} = EXCLUDED.{c}" for c in _COMPARED)}
              WHERE ({", ".join("p." + c for c in _COMPARED)}) IS DISTINCT FROM
                ({", ".join("EXCLUDED." + c for c in _COMPARED)})
              RETURNING (xmax = 0) AS inserted, customer_id
            )
            SELECT
              (SELECT count(*) FROM f WHERE line = first_line),
              count(*) FILTER (WHERE inserted), count(*),
              -- Every customer the chunk names (a retried import may have written their
              -- purchases in an attempt that never refreshed their figures), and the one an
              -- order moved away from.
              ARRAY(SELECT customer_id FROM b UNION SELECT stored_customer_id FROM f
                WHERE line = first_line AND stored_customer_id <> customer_id),
              (SELECT count(*) FROM k WHERE occurrence > 1),
              ARRAY(SELECT line FROM k WHERE occurrence > 1 ORDER BY line LIMIT 5)
            FROM written
            """,
            {
                "id_col": self.columns.column.get("customer_external_id", ""),
                "email_col": self.columns.column.get("customer_email", ""),
                "ext_col": self.columns.column.get("external_id", "external_id"),
                "hint": hint,
                "strict": self.strict_duplicates,
            },
        )
        kept, created, written, customer_ids, identical, examples = cursor.fetchone()
        touched.update(customer_ids)
        # In the chunk's transaction: segments re-evaluate these customers once it commits.
        customers_mark(customer_ids=customer_ids)
        return kept, created, written - created, (identical, examples)


def _staged_lines(chunk: _Chunk) -> Iterator[int]:
    """The line numbers of the rows in a chunk's COPY buffer."""
    for text in chunk.buffer.getvalue().splitlines():
        yield int(text.partition("\t")[0])


def _lookahead(rows: Iterator) -> Iterator[tuple[object, bool]]:
    """Each item with whether it is the last one."""
    previous = next(rows, None)
    if previous is None:
        return
    for item in rows:
        yield previous, False
        previous = item
    yield previous, True


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
