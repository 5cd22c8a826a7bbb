"""Importing customers on PostgreSQL, set-based: each chunk of the file is parsed by Python
while the database works on the previous one, COPYed into a staging table, then matched,
inserted, updated and tagged by a fixed number of SQL statements, whatever the number of rows.

Python parses the rows and finds the duplicates within the file with the same functions as the
row-by-row import (customers.py), so both report the same errors. The rules of the match (by
external_id, else by email ignoring case; an email of another customer refused; a sales user
may only update their own customers) are written once more here in SQL;
tests/customers/test_import_customers_sql.py proves both agree. A chunk in which two rows reach
the same stored customer is rare and order-dependent: it goes through the row-by-row rules.
"""

import io
import json
from collections.abc import Callable, Iterator

from django.db import DatabaseError, connection, transaction

from customers.contact_hashes import email_hash, phone_hash
from customers.fields import customer_fields
from customers.importing.batches import SeenKeys, commits_flush
from customers.importing.purchase_stage import chunks_read
from customers.importing.reading import (
    Columns,
    CsvSource,
    ErrorLog,
    ImportProgress,
    ImportResult,
    ProgressCallback,
    RowError,
)
from customers.marks import customers_mark_where
from customers.models import Customer, Tag
from customers.registry import addresses_refused

STAGE = "import_customer_rows"
MATCH = "import_customer_match"

# The fields a file may set whose blank is "" (customers.fields), not NULL.
_TEXT_NOT_NULL = tuple(name for name, spec in customer_fields().items() if spec.blank == "")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
# What a created customer is found by again: its external_id, else its email.
_ROW_KEY = (
    "CASE WHEN {alias}.external_id IS NOT NULL THEN 'ext:' || {alias}.external_id "
    "ELSE 'email:' || lower({alias}.email) END"
)
_ANOTHER_USER = "this customer belongs to another user: only its owner may update it"
_CREATED_MEANWHILE = "another import or user created this customer meanwhile; import again"


class _Chunk:
    def __init__(self) -> None:
        self.read_errors: list[RowError] = []
        self.rows: list = []  # CustomerRow, as parsed
        self.buffer = io.StringIO()
        self.last = False
        self.count = 0
        self.bytes_done = 0
        self.email_hashes: set[str] = set()
        self.phone_hashes: set[str] = set()


class CustomerStage:
    """The staging tables of one import and the statements that work on them."""

    def __init__(
        self,
        *,
        columns: Columns,
        value_fields: tuple[str, ...],
        parse: Callable,
        rejection: type[Exception],
        duplicates_drop: Callable,
        rows_write: Callable,
        owner_id: int | None,
        restricted_to: int | None,
    ):
        self.columns = columns
        self.fields = value_fields
        self.parse = parse
        self.rejection = rejection
        self.duplicates_drop = duplicates_drop
        self.rows_write = rows_write
        self.owner_id = owner_id
        self.restricted_to = restricted_to
        self.seen = SeenKeys()

    def __enter__(self) -> "CustomerStage":
        self.seen.__enter__()
        typed = ", ".join(f"{f} {'date' if f == 'birth_date' else 'text'}" for f in self.fields)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {STAGE}, {MATCH}")
            # NULL is a cell the file leaves empty: the stored value stays.
            cursor.execute(
                f"CREATE TEMP TABLE {STAGE} (line integer NOT NULL, {typed}, email_lower text, "
                "attributes jsonb, tags jsonb, email_hash text NOT NULL, phone_hash text NOT NULL)"
            )
            cursor.execute(
                f"CREATE TEMP TABLE {MATCH} (line integer NOT NULL, customer_id bigint, "
                "action text, col text, value text, reason text)"
            )
        return self

    def __exit__(self, *exc_info) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {STAGE}, {MATCH}")
        self.seen.__exit__(*exc_info)

    # -- reading -------------------------------------------------------------------------------

    def read(self, rows: Iterator, limit: int) -> _Chunk | None:
        """Parse up to `limit` rows into a COPY buffer; None at the end of the file."""
        chunk = _Chunk()
        write = chunk.buffer.write
        escapes = _COPY_ESCAPES
        fields = self.fields
        birth_date_at = fields.index("birth_date")
        count = 0
        for (line, raw), last in rows:
            count += 1
            chunk.last = last
            try:
                row = self.parse(line, raw)
            except self.rejection as rejected:
                chunk.read_errors.append(rejected.error)
            else:
                chunk.rows.append(row)
                values = row.values
                cells = [values.get(f) for f in fields]
                if cells[birth_date_at] is not None:
                    cells[birth_date_at] = cells[birth_date_at].isoformat()
                email = values.get("email")
                cells.append(email.lower() if email else None)
                cells.append(
                    json.dumps(row.attributes, ensure_ascii=False) if row.attributes else None
                )
                cells.append(json.dumps(row.tags, ensure_ascii=False) if row.tags else None)
                hashes = (email_hash(email), phone_hash(values.get("phone")))
                cells += hashes
                chunk.email_hashes.add(hashes[0])
                chunk.phone_hashes.add(hashes[1])
                probe = "".join(c for c in cells if c is not None)
                if "\\" in probe or "\t" in probe or "\n" in probe or "\r" in probe:
                    cells = [c if c is None else c.translate(escapes) for c in cells]
                write(f"{line}\t")
                write("\t".join("\\N" if c is None else c for c in cells))
                write("\n")
            if count >= limit:
                break
        chunk.count = count
        return chunk if count else None

    # -- one chunk -----------------------------------------------------------------------------

    def chunk_import(self, chunk: _Chunk, result: ImportResult, errors: ErrorLog) -> None:
        """Match, create, update and tag the rows of one chunk, all or nothing."""
        rejected: list[RowError] = []
        try:
            with transaction.atomic():
                kept = self.duplicates_drop(chunk.rows, self.seen, rejected, self.columns)
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL jit = off")
                    # As for purchases: one wait for the disk at the end (commits_flush).
                    cursor.execute("SET LOCAL synchronous_commit = off")
                    if len(kept) == len(chunk.rows) or not kept:
                        skipped: list[int] = []
                    else:
                        kept_lines = {r.line for r in kept}
                        skipped = [r.line for r in chunk.rows if r.line not in kept_lines]
                    if kept:
                        created, updated = self._write(cursor, chunk, kept, skipped, rejected)
                    else:
                        created = updated = 0
        except DatabaseError as exc:
            reason = f"the database refused the batch this row was in: {exc}"
            rejected = [RowError(row.line, "", reason) for row in chunk.rows]
            created = updated = 0
        # The errors of a chunk in the order of the file.
        for error in sorted(chunk.read_errors + rejected, key=lambda e: e.line):
            errors.add(error)
        result.created += created
        result.updated += updated
        result.unchanged += len(chunk.rows) - created - updated - len(rejected)

    def _write(
        self, cursor, chunk: _Chunk, kept: list, skipped: list[int], rejected: list[RowError]
    ) -> tuple[int, int]:
        cursor.execute(f"TRUNCATE {STAGE}, {MATCH}")
        columns = ", ".join(self.fields)
        with cursor.cursor.copy(
            f"COPY {STAGE} (line, {columns}, email_lower, attributes, tags, email_hash, "
            "phone_hash) FROM STDIN"
        ) as copy:
            copy.write(chunk.buffer.getvalue())
        # Temporary tables have no statistics otherwise; the statements join on these columns.
        cursor.execute(f"ANALYZE {STAGE} (line, external_id, email_lower)")
        self._match(cursor, skipped)
        refused = addresses_refused(
            email_hashes=chunk.email_hashes, phone_hashes=chunk.phone_hashes
        )
        if refused:
            self._refuse(cursor, refused)
        # Rows that depend on each other go through the row-by-row rules, in file order: two
        # rows reaching the same customer, or a row moving a customer to another email while
        # another row of the chunk carries the email it gives up.
        table = Customer._meta.db_table
        cursor.execute(
            f"SELECT EXISTS (SELECT FROM {MATCH} WHERE customer_id IS NOT NULL AND col IS NULL "
            "GROUP BY customer_id HAVING count(*) > 1) "
            f"OR EXISTS (SELECT FROM {MATCH} m JOIN {STAGE} s USING (line) "
            f"JOIN {table} c ON c.id = m.customer_id "
            f"JOIN {STAGE} other ON other.email_lower = lower(c.email) AND other.line <> s.line "
            "WHERE m.action = 'existing' AND s.email_lower <> lower(c.email))"
        )
        if cursor.fetchone()[0]:
            return self.rows_write(kept, rejected, refused)
        created = self._create(cursor)
        updated = self._update(cursor)
        self._tag(cursor)
        # In the chunk's transaction: segments re-evaluate these customers once it commits.
        customers_mark_where(
            select_ids=f"SELECT customer_id FROM {MATCH} "
            "WHERE action IN ('create', 'update') AND customer_id IS NOT NULL"
        )
        cursor.execute(
            f"SELECT line, col, value, reason FROM {MATCH} WHERE col IS NOT NULL "
            "UNION ALL "
            f"SELECT line, '', '', %s FROM {MATCH} WHERE action = 'create' AND customer_id IS NULL",
            [_CREATED_MEANWHILE],
        )
        rejected.extend(RowError(line, col, reason, value) for line, col, value, reason in cursor)
        return created, updated

    def _match(self, cursor, skipped: list[int]) -> None:
        """Each row's stored customer, or why it may not be written, or that it is new."""
        table = Customer._meta.db_table
        email_col = self.columns.column.get("email", "email")
        id_col = self.columns.column.get("external_id", "external_id")
        restricted = self.restricted_to is not None
        cursor.execute(
            f"""
            INSERT INTO {MATCH} (line, customer_id, action, col, value, reason)
            SELECT s.line, m.customer_id, CASE
                WHEN m.reason IS NOT NULL THEN NULL
                WHEN m.customer_id IS NULL THEN 'create' ELSE 'existing' END,
              CASE WHEN m.reason IS NOT NULL THEN m.col END,
              CASE WHEN m.reason IS NOT NULL THEN m.value END, m.reason
            FROM {STAGE} s
            LEFT JOIN {table} by_id ON s.external_id IS NOT NULL
              AND by_id.external_id = s.external_id
            LEFT JOIN {table} by_email ON s.email_lower IS NOT NULL
              AND lower(by_email.email) = s.email_lower
            CROSS JOIN LATERAL (
              SELECT c.customer_id, CASE
                  WHEN c.problem = 'email' THEN %(email_col)s
                  WHEN s.external_id IS NOT NULL THEN %(id_col)s ELSE %(email_col)s END AS col,
                CASE
                  WHEN c.problem = 'email' THEN coalesce(s.email, '')
                  WHEN s.external_id IS NOT NULL THEN s.external_id
                  ELSE coalesce(s.email, '') END AS value,
                c.reason
              FROM (
                SELECT coalesce(by_id.id, by_email.id) AS customer_id, CASE
                    WHEN by_id.id IS NULL AND by_email.id IS NOT NULL
                      AND s.external_id IS NOT NULL AND coalesce(by_email.external_id, '') <> ''
                    THEN 'email'
                    WHEN by_email.id <> by_id.id THEN 'email'
                    WHEN %(restricted)s AND coalesce(by_id.id, by_email.id) IS NOT NULL
                      AND CASE WHEN by_id.id IS NOT NULL THEN by_id.owner_id
                        ELSE by_email.owner_id END IS DISTINCT FROM %(restricted_to)s
                    THEN 'owner' END AS problem,
                  CASE
                    WHEN by_id.id IS NULL AND by_email.id IS NOT NULL
                      AND s.external_id IS NOT NULL AND coalesce(by_email.external_id, '') <> ''
                    THEN 'already used by the customer with external_id '''
                      || by_email.external_id || ''''
                    WHEN by_email.id <> by_id.id THEN 'already used by another customer'
                    WHEN %(restricted)s AND coalesce(by_id.id, by_email.id) IS NOT NULL
                      AND CASE WHEN by_id.id IS NOT NULL THEN by_id.owner_id
                        ELSE by_email.owner_id END IS DISTINCT FROM %(restricted_to)s
                    THEN %(another_user)s END AS reason
              ) c
            ) m
            WHERE s.line <> ALL(%(skipped)s)
            """,
            {
                "email_col": email_col,
                "id_col": id_col,
                "restricted": restricted,
                "restricted_to": self.restricted_to,
                "another_user": _ANOTHER_USER,
                "skipped": skipped,
            },
        )

    def _refuse(self, cursor, refused: dict[tuple[str, str], str]) -> None:
        """Refuse the rows that would record an email or phone that may not be recorded, as
        the row-by-row import does (customers._address_refusal): a new customer with it or a
        stored one moved to it (one who already has it keeps it), the email's reason first, no
        address kept."""
        (kinds, hashes), reasons = zip(*refused, strict=True), list(refused.values())
        table = Customer._meta.db_table
        cursor.execute(
            f"""
            UPDATE {MATCH} m SET action = NULL, value = '',
              col = CASE x.kind WHEN 'email' THEN %(email_col)s ELSE %(phone_col)s END,
              reason = 'this address ' || x.reason
            FROM (
              SELECT DISTINCT ON (s.line) s.line, r.kind, r.reason
              FROM {STAGE} s JOIN {MATCH} row_match USING (line)
              LEFT JOIN {table} c ON row_match.action = 'existing'
                AND c.id = row_match.customer_id
              JOIN unnest(%(kinds)s::text[], %(hashes)s::text[], %(reasons)s::text[])
                AS r (kind, hash, reason)
                ON r.hash = CASE r.kind WHEN 'email' THEN s.email_hash ELSE s.phone_hash END
                AND r.hash IS DISTINCT FROM
                  CASE r.kind WHEN 'email' THEN c.email_hash ELSE c.phone_hash END
              WHERE row_match.action IN ('create', 'existing')
              ORDER BY s.line, r.kind
            ) x
            WHERE m.line = x.line
            """,
            {
                "email_col": self.columns.column.get("email", "email"),
                "phone_col": self.columns.column.get("phone", "phone"),
                "kinds": list(kinds),
                "hashes": list(hashes),
                "reasons": reasons,
            },
        )

    def _create(self, cursor) -> int:
        table = Customer._meta.db_table
        nullable = [f for f in self.fields if f not in _TEXT_NOT_NULL]
        values = ", ".join(
            f"s.{f}" if f in nullable else f"coalesce(s.{f}, '')" for f in self.fields
        )
        cursor.execute(
            f"""
            WITH created AS (
              INSERT INTO {table} ({", ".join(self.fields)}, email_hash, phone_hash, attributes,
                owner_id, created_at, updated_at, lifetime_value, purchase_count,
                average_order_value)
              SELECT {values}, s.email_hash, s.phone_hash, coalesce(s.attributes, '{{}}'),
                %(owner)s, now(), now(), 0, 0, 0
              FROM {STAGE} s JOIN {MATCH} m USING (line)
              WHERE m.action = 'create' ORDER BY s.line
              ON CONFLICT DO NOTHING
              RETURNING id, {_ROW_KEY.format(alias=table)} AS key
            ), resolved AS (
              UPDATE {MATCH} m SET customer_id = c.id FROM {STAGE} s, created c
              WHERE m.action = 'create' AND s.line = m.line AND c.key = {_ROW_KEY.format(alias="s")}
              RETURNING 1
            )
            SELECT count(*) FROM resolved
            """,
            {"owner": self.owner_id},
        )
        return cursor.fetchone()[0]

    def _update(self, cursor) -> int:
        """Stored customers the file changes: the cells it gives, attributes merged, and those
        that only get new tags (their update time tells)."""
        table = Customer._meta.db_table
        tags = Customer.tags.through._meta.db_table
        given = " OR ".join(
            f"(s.{f} IS NOT NULL AND s.{f} IS DISTINCT FROM c.{f})" for f in self.fields
        )
        cursor.execute(
            f"""
            WITH updated AS (
              UPDATE {table} c SET
                {", ".join(f"{f} = coalesce(s.{f}, c.{f})" for f in self.fields)},
                attributes = CASE WHEN s.attributes IS NULL THEN c.attributes
                  ELSE c.attributes || s.attributes END,
                email_hash = CASE WHEN s.email IS NULL THEN c.email_hash ELSE s.email_hash END,
                phone_hash = CASE WHEN s.phone IS NULL THEN c.phone_hash ELSE s.phone_hash END,
                updated_at = now()
              FROM {STAGE} s JOIN {MATCH} m USING (line)
              WHERE m.action = 'existing' AND c.id = m.customer_id AND (
                {given}
                OR (s.attributes IS NOT NULL AND c.attributes || s.attributes
                  IS DISTINCT FROM c.attributes)
                OR EXISTS (
                  SELECT FROM jsonb_array_elements_text(s.tags) t(name)
                  WHERE NOT EXISTS (
                    SELECT FROM {tags} ct JOIN {Tag._meta.db_table} tag ON tag.id = ct.tag_id
                    WHERE ct.customer_id = c.id AND tag.name = t.name)))
              RETURNING m.line
            ), marked AS (
              UPDATE {MATCH} m SET action = 'update' FROM updated u WHERE m.line = u.line
              RETURNING 1
            )
            SELECT count(*) FROM marked
            """
        )
        return cursor.fetchone()[0]

    def _tag(self, cursor) -> None:
        """The tags of created rows and the new tags of updated ones."""
        tags = Tag._meta.db_table
        through = Customer.tags.through._meta.db_table
        rows = (
            f"FROM {MATCH} m JOIN {STAGE} s USING (line), jsonb_array_elements_text(s.tags) t(name)"
        )
        wanted = "m.action IN ('create', 'update') AND m.customer_id IS NOT NULL"
        cursor.execute(
            f"INSERT INTO {tags} (name) SELECT DISTINCT t.name {rows} WHERE {wanted} ORDER BY 1 "
            "ON CONFLICT DO NOTHING"
        )
        cursor.execute(
            f"INSERT INTO {through} (customer_id, tag_id) SELECT DISTINCT m.customer_id, tag.id "
            f"{rows} JOIN {tags} tag ON tag.name = t.name WHERE {wanted} ON CONFLICT DO NOTHING"
        )


def customers_import_sql(
    *,
    stage: CustomerStage,
    source: CsvSource,
    errors: ErrorLog,
    result: ImportResult,
    total_bytes: int,
    chunk_rows: int,
    on_progress: ProgressCallback | None,
) -> None:
    """Import the rows of `source` chunk by chunk; counts go to `result`, bad rows to `errors`."""
    with stage:
        for chunk in chunks_read(stage, source, chunk_rows):
            result.read += chunk.count
            stage.chunk_import(chunk, result, errors)
            if on_progress is not None:
                result.failed = errors.count
                on_progress(
                    ImportProgress(chunk.bytes_done, max(total_bytes, chunk.bytes_done), result)
                )
    commits_flush()
