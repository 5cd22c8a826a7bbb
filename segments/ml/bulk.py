"""Bulk writes of per-customer results: COPY into a temporary table and one upsert. Never one
statement per customer.
"""

import datetime as dt
import io
import json

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
        if "reasons" in frame:
            frame["reasons"] = frame["reasons"].map(json.dumps)
        _copy_into_temp(cursor, "_ml_scores", types, frame)
        defaults = {"rfm_class": "''", "previous_rfm_class": "''", "reasons": "'{}'::jsonb"}
        extra = {k: v for k, v in defaults.items() if k not in columns}
        insert_cols = ["customer_id", *columns, *extra]
        select = ["customer_id", *columns, *extra.values()]
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns)
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(insert_cols)}) "
            f"SELECT {', '.join(select)} FROM _ml_scores "
            f"ON CONFLICT (customer_id) DO UPDATE SET {updates}"
        )
        return cursor.rowcount


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
