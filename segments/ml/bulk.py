"""Bulk writes of per-customer results: COPY into a temporary table and one upsert. Never one
statement per customer.
"""

import datetime as dt
import io
import struct

import numpy as np
import pandas as pd
from django.db import connection, transaction

from segments.ml.models import ClusterAssignment, CustomerScore
from segments.models import Membership, RefreshRun, Segment
from segments.services import membership_stays_end

BATCH = 2000


def _copy_into_temp(cursor, name: str, columns: dict[str, str], frame: pd.DataFrame) -> None:
    cols = ", ".join(f"{c} {t}" for c, t in columns.items())
    cursor.execute(f"DROP TABLE IF EXISTS {name}")
    cursor.execute(f"CREATE TEMP TABLE {name} ({cols}) ON COMMIT DROP")
    buffer = io.StringIO()
    frame[list(columns)].to_csv(buffer, index=False, header=False, na_rep="")
    # Empty text stays empty text, not NULL.
    texts = [c for c, t in columns.items() if t.startswith("varchar")]
    force = f", FORCE_NOT_NULL ({', '.join(texts)})" if texts else ""
    with cursor.cursor.copy(
        f"COPY {name} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv{force})"
    ) as cp:
        cp.write(buffer.getvalue())


def _score_sql_type(column: str) -> str:
    field = CustomerScore._meta.get_field(column)
    return field.db_type(connection)


def scores_upsert(frame: pd.DataFrame, columns: list[str]) -> int:
    """Write `columns` of CustomerScore for each row of frame (customer_id + columns)."""
    if frame.empty:
        return 0
    table = CustomerScore._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        types = {"customer_id": "bigint"} | {c: _score_sql_type(c) for c in columns}
        frame = frame.copy()
        _copy_into_temp(cursor, "_ml_scores", types, frame)
        extra = {k: v for k, v in SCORE_ROW_DEFAULTS.items() if k not in columns}
        insert_cols = ["customer_id", *columns, *extra]
        select = ["customer_id", *columns, *extra.values()]
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns)
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(insert_cols)}) "
            f"SELECT {', '.join(select)} FROM _ml_scores "
            f"ON CONFLICT (customer_id) DO UPDATE SET {updates}"
        )
        return cursor.rowcount


BINARY_TYPES = {"int8": ">i8", "float8": ">f8", "int2": ">i2"}
COPY_CHUNK = 100_000  # rows per COPY write: the buffer stays a few tens of MB
# Columns of CustomerScore that are NOT NULL without a database default, for a new row.
SCORE_ROW_DEFAULTS = {
    "rfm_class": "''",
    "previous_rfm_class": "''",
    "reason_features": "'{}'",
    "reason_values": "'{}'",
    "reason_effects": "'{}'",
}


def _copy_binary_into_temp(cursor, name: str, columns: dict[str, tuple[str, np.ndarray]]) -> int:
    """COPY numeric columns ({name: (int8 | float8 | int2, array)}, no NULL) into a new
    temporary table in PostgreSQL's binary format, built by numpy without a loop over rows."""
    cursor.execute(f"DROP TABLE IF EXISTS {name}")
    cursor.execute(
        f"CREATE TEMP TABLE {name} ("
        + ", ".join(f"{c} {t}" for c, (t, _) in columns.items())
        + ") ON COMMIT DROP"
    )
    fields = [("count", ">i2")]
    for i, (sql_type, _) in enumerate(columns.values()):
        fields += [(f"len{i}", ">i4"), (f"val{i}", BINARY_TYPES[sql_type])]
    row = np.dtype(fields)
    n = len(next(iter(columns.values()))[1]) if columns else 0
    with cursor.cursor.copy(f"COPY {name} FROM STDIN WITH (FORMAT binary)") as cp:
        cp.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
        for start in range(0, n, COPY_CHUNK):
            stop = min(n, start + COPY_CHUNK)
            rows = np.empty(stop - start, dtype=row)
            rows["count"] = len(columns)
            for i, (sql_type, values) in enumerate(columns.values()):
                rows[f"len{i}"] = np.dtype(BINARY_TYPES[sql_type]).itemsize
                rows[f"val{i}"] = values[start:stop]
            cp.write(rows.tobytes())
        cp.write(struct.pack(">h", -1))
    cursor.execute(f"ANALYZE {name}")  # a hash join against the scores, not a nested loop
    return n


def scores_write(
    *,
    customer_ids: np.ndarray,
    columns: dict[str, tuple[str, np.ndarray]],
    assignments: dict[str, str],
    params: dict | None = None,
) -> int:
    """Write scores of many customers in two statements whatever their number: the numbers
    COPYed (binary) into a temporary table `t`, then one UPDATE ... FROM of the customers who
    have a score row and one INSERT of those who have none.

    columns: the temporary table's columns besides customer_id, {name: (type, array)};
    assignments: {CustomerScore column: SQL expression over t's columns and %(name)s params}."""
    if not len(customer_ids):
        return 0
    table = CustomerScore._meta.db_table
    sets = ", ".join(f"{c} = {e}" for c, e in assignments.items())
    extra = {k: v for k, v in SCORE_ROW_DEFAULTS.items() if k not in assignments}
    insert_cols = ["customer_id", *assignments, *extra]
    select = ["t.customer_id", *assignments.values(), *extra.values()]
    with transaction.atomic(), connection.cursor() as cursor:
        _copy_binary_into_temp(
            cursor,
            "_ml_scores",
            {"customer_id": ("int8", np.asarray(customer_ids, dtype=np.int64)), **columns},
        )
        cursor.execute(
            f"UPDATE {table} s SET {sets} FROM _ml_scores t WHERE s.customer_id = t.customer_id",
            params or {},
        )
        written = cursor.rowcount
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(insert_cols)}) "
            f"SELECT {', '.join(select)} FROM _ml_scores t WHERE NOT EXISTS "
            f"(SELECT 1 FROM {table} s WHERE s.customer_id = t.customer_id)",
            params or {},
        )
        return written + cursor.rowcount


def assignments_write(*, ml_segment_id: int, frame: pd.DataFrame, at: dt.datetime) -> int:
    """Replace an ML segment's cluster labels with frame (customer_id, label); rows written."""
    table = ClusterAssignment._meta.db_table
    with transaction.atomic():
        with connection.cursor() as cursor:
            _copy_into_temp(
                cursor, "_ml_labels", {"customer_id": "bigint", "label": "smallint"}, frame
            )
            cursor.execute(
                f"DELETE FROM {table} a WHERE a.ml_segment_id = %s AND NOT EXISTS "
                "(SELECT 1 FROM _ml_labels t WHERE t.customer_id = a.customer_id)",
                [ml_segment_id],
            )
            cursor.execute(
                f"INSERT INTO {table} (ml_segment_id, customer_id, label, assigned_at) "
                "SELECT %s, customer_id, label, %s FROM _ml_labels "
                "ON CONFLICT (ml_segment_id, customer_id) DO UPDATE "
                "SET label = EXCLUDED.label, assigned_at = EXCLUDED.assigned_at "
                f"WHERE {table}.label <> EXCLUDED.label",
                [ml_segment_id, at],
            )
            return len(frame)


def cluster_members_sync(
    *, segment: Segment, ml_segment_id: int, label: int | None, at: dt.datetime
) -> RefreshRun:
    """Make a cluster's static segment hold exactly the customers with that label, set-based,
    recording who joined and left like any refresh (label None empties the segment)."""
    membership = Membership._meta.db_table
    assignment = ClusterAssignment._meta.db_table
    run = RefreshRun.objects.create(
        segment=segment,
        trigger=RefreshRun.Trigger.MEMBERS,
        status=RefreshRun.Status.RUNNING,
        started_at=at,
    )
    in_cluster, params = "1 = 0", []
    if label is not None:
        in_cluster = (
            f"EXISTS (SELECT 1 FROM {assignment} a WHERE a.ml_segment_id = %s "
            "AND a.customer_id = old.customer_id AND a.label = %s)"
        )
        params = [ml_segment_id, label]
    with transaction.atomic(), connection.cursor() as cursor:
        Segment.objects.select_for_update().filter(pk=segment.pk).first()
        # The labels were just written and have no statistics yet: a nested loop over them and
        # the membership would be quadratic; hashed (anti-)joins are linear.
        cursor.execute("SET LOCAL enable_nestloop = off")
        left = membership_stays_end(
            cursor=cursor,
            segment_id=segment.pk,
            run_id=run.pk,
            at=at,
            leaving=f"NOT ({in_cluster})",
            params=params,
        )
        joined = 0
        if label is not None:
            not_member = (
                f"NOT EXISTS (SELECT 1 FROM {membership} m WHERE m.segment_id = %s "
                "AND m.customer_id = a.customer_id)"
            )
            cursor.execute(
                f"INSERT INTO {membership} (segment_id, customer_id, since, run_id) "
                f"SELECT %s, a.customer_id, %s, %s FROM {assignment} a "
                f"WHERE a.ml_segment_id = %s AND a.label = %s AND {not_member}",
                [segment.pk, at, run.pk, ml_segment_id, label, segment.pk],
            )
            joined = cursor.rowcount
        cursor.execute("SET LOCAL enable_nestloop = on")
        size = Membership.objects.filter(segment=segment).count()
        finished = dt.datetime.now(dt.UTC)
        RefreshRun.objects.filter(pk=run.pk).update(
            status=RefreshRun.Status.DONE,
            finished_at=finished,
            duration=finished - at,
            size=size,
            joined=joined,
            left=left,
        )
        Segment.objects.filter(pk=segment.pk).update(
            member_count=size, last_refreshed_at=finished, last_refresh_duration=finished - at
        )
    run.refresh_from_db()
    return run
