"""Database helpers shared by the importers: the keys already seen in this file, and COPY."""

import csv
import io
from collections.abc import Iterable

from django.db import DatabaseError, connection, transaction

SEEN_TABLE = "import_seen_key"
SEEN_PROBE = "import_seen_probe"


def temp_buffers_raise() -> None:
    """Let this connection keep more of its staging tables in memory.

    The default (8 MB) makes the tables of a large import spill to disk chunk after chunk.
    PostgreSQL takes the setting only before a session first touches a temporary table; after
    that the connection keeps what it has.
    """
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET temp_buffers = '128MB'")
    except DatabaseError:
        pass


def commits_flush() -> None:
    """Wait until every transaction this connection committed is on disk.

    Imports commit their chunks with synchronous_commit off; a transaction that takes an id
    and commits synchronously flushes the log up to its own commit, and so theirs too.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT txid_current()")


class SeenKeys:
    """The upsert keys of the rows accepted so far in this file, so duplicates are reported.

    They live in a temporary table of the connection, not in Python, so memory stays constant
    however long the file is. The keys travel by COPY (a chunk's keys as array
    parameters cost more to adapt in Python than the database spends on them) and compare
    byte by byte (COLLATE "C": equal is equal under any collation).
    """

    def __enter__(self) -> "SeenKeys":
        temp_buffers_raise()
        collate = ' COLLATE "C"'
        with connection.cursor() as cursor:
            for table in (SEEN_TABLE, SEEN_PROBE):
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
            cursor.execute(
                f"CREATE TEMP TABLE {SEEN_TABLE} "
                f"(key text{collate} PRIMARY KEY, line integer NOT NULL)"
            )
            # Emptied at each commit without the cost of a TRUNCATE.
            cursor.execute(
                f"CREATE TEMP TABLE {SEEN_PROBE} (key text{collate}) ON COMMIT DELETE ROWS"
            )
        return self

    def __exit__(self, *exc_info) -> None:
        with connection.cursor() as cursor:
            for table in (SEEN_TABLE, SEEN_PROBE):
                cursor.execute(f"DROP TABLE IF EXISTS {table}")

    def lookup(self, keys: Iterable[str]) -> dict[str, int]:
        """Of these keys, the ones already seen, with the line that had them first."""
        keys = list(set(keys))
        found: dict[str, int] = {}
        if not keys:
            return found
        with connection.cursor() as cursor:
            # In one transaction, so the probe keeps its rows until the look-up (a probe
            # left over from an earlier look-up of the same transaction only adds keys).
            with transaction.atomic():
                with cursor.cursor.copy(f"COPY {SEEN_PROBE} (key) FROM STDIN") as copy:
                    for key in keys:
                        copy.write_row((key,))
                # An array of the probe's keys: one index look-up each, whatever the
                # planner would guess of two tables without statistics.
                cursor.execute(
                    f"SELECT key, line FROM {SEEN_TABLE} "
                    f"WHERE key = ANY (ARRAY(SELECT key FROM {SEEN_PROBE}))"
                )
                found.update(cursor.fetchall())
        return found

    def add(self, lines_by_key: dict[str, int]) -> None:
        if not lines_by_key:
            return
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY {SEEN_TABLE} (key, line) FROM STDIN") as copy:
                for row in lines_by_key.items():
                    copy.write_row(row)


def copy_rows(
    *, table: str, columns: list[str], rows: Iterable[tuple], not_null: list[str]
) -> None:
    """COPY rows into a table in CSV form; '' is NULL except in the not_null columns."""
    buffer = io.StringIO()
    # With CRLF ending the lines the csv module quotes a value holding a lone CR too, which
    # COPY would otherwise take for the end of the line.
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    options = "FORMAT csv"
    if not_null:
        options += ", FORCE_NOT_NULL (" + ", ".join(not_null) + ")"
    with connection.cursor() as cursor:
        with cursor.cursor.copy(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN ({options})"
        ) as copy:
            copy.write(buffer.getvalue())
