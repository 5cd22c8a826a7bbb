"""Real-time membership: the customers a write marked (customers.marks) are re-evaluated against
every rule segment in small set-based batches, and their joins and leaves are recorded as a full
refresh records them (membership rows, MembershipChange, a RefreshRun with trigger "realtime").

A batch, in one transaction:

1. takes the real-time advisory lock (batches run one at a time; a second worker waits) and
   locks the rule segments that no full refresh holds (FOR NO KEY UPDATE SKIP LOCKED);
2. claims the oldest marks, `DELETE ... RETURNING` over rows chosen `FOR UPDATE SKIP LOCKED`:
   a mark whose write has not committed is locked (customers.marks) and waits for a later
   batch; a batch that fails leaves its marks in place (rolled back), to be taken again;
3. for each segment, dependencies first, evaluates the compiled rule restricted to the claimed
   customers and compares it with their stored membership, both through the indexes, so the
   cost follows the batch and not the size of the data; a segment with changes gets a run and
   one statement that deletes the leavers (logging each leave with the join it ends) and
   inserts the joiners. A segment that depends on another is evaluated after it in the same
   transaction and sees its new membership;
4. a segment a full refresh holds is left for later: the batch marks its customers again, to be
   taken by the next run (the next write's, or beat's within 10 seconds).

Rules whose truth changes with time alone keep a scheduled full refresh, which stays the
reference (segments.services.segments_refresh_due).
"""

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import EmptyResultSet, ValidationError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from customers.marks import MARKS_TABLE, customers_mark
from segments.compiler import compile_rule
from segments.models import Membership, MembershipChange, RealtimeQueue, RefreshRun, Segment
from segments.services import segments_in_dependency_order

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock key: "segments realtime".
LOCK_KEY = 0x5E6_2EA1
# A queued task not started after this long counts as lost: the next write queues another
# (and beat runs the task every 10 seconds anyway).
QUEUED_EXPIRES = dt.timedelta(seconds=15)


# Who wants to hear, once a batch has committed, which segments gained members (journeys enrol
# their new members at once instead of at beat's next tick). A higher app registers here from
# its AppConfig.ready(); segments never imports it.
JoinsListener = Callable[[list[int]], None]
_joins_listeners: list[JoinsListener] = []


def joins_listener_register(listener: JoinsListener) -> None:
    if listener not in _joins_listeners:
        _joins_listeners.append(listener)


def _joins_announce(segment_ids: list[int]) -> None:
    for listener in list(_joins_listeners):
        try:
            listener(segment_ids)
        except Exception:  # a listener that fails (a broker away) must not fail the batch
            logger.warning("a joins listener failed", exc_info=True)


@dataclass
class RealtimeBatch:
    """What one batch did: the customers it took, joins and leaves, the runs it recorded, the
    oldest mark it took, and the segments a full refresh held (left for a later batch)."""

    customers: int = 0
    joined: int = 0
    left: int = 0
    runs: list[int] = field(default_factory=list)
    oldest_mark: dt.datetime | None = None
    deferred: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def _claim(cursor, limit: int) -> tuple[list[int], dt.datetime | None]:
    cursor.execute(
        f"DELETE FROM {MARKS_TABLE} WHERE customer_id IN ("
        f"  SELECT customer_id FROM {MARKS_TABLE} ORDER BY marked_at, customer_id LIMIT %s"
        "   FOR UPDATE SKIP LOCKED) "
        "RETURNING customer_id, marked_at",
        [limit],
    )
    rows = cursor.fetchall()
    return sorted(r[0] for r in rows), min((r[1] for r in rows), default=None)


def _differences(
    cursor, segment: Segment, ids: list[int], now: dt.datetime
) -> tuple[list[int], list[int]]:
    """(joiners, leavers) of a segment among the customers `ids`: its compiled rule restricted to
    them against their stored membership."""
    wanted = compile_rule(segment.rule, now=now).filter(pk__in=ids).values("pk")
    try:
        sql, params = wanted.query.sql_with_params()
    except EmptyResultSet:  # a rule that matches no one, such as {"any": []}
        sql, params = "SELECT NULL::bigint WHERE false", ()
    m = connection.ops.quote_name(Membership._meta.db_table)
    cursor.execute(
        f"WITH wanted (id) AS ({sql}), "
        f"stored AS (SELECT customer_id FROM {m} WHERE segment_id = %s "
        "AND customer_id = ANY(%s::bigint[])) "
        "SELECT ARRAY(SELECT id FROM wanted EXCEPT SELECT customer_id FROM stored ORDER BY 1), "
        "ARRAY(SELECT customer_id FROM stored EXCEPT SELECT id FROM wanted ORDER BY 1)",
        [*params, segment.pk, ids],
    )
    joiners, leavers = cursor.fetchone()
    return joiners, leavers


def _apply(
    cursor, segment: Segment, run_id: int, at: dt.datetime, joiners: list[int], leavers: list[int]
) -> tuple[int, int]:
    """Delete the leavers (logging each leave with the join it ends) and insert the joiners."""
    m = connection.ops.quote_name(Membership._meta.db_table)
    c = connection.ops.quote_name(MembershipChange._meta.db_table)
    cursor.execute(
        f"WITH gone AS (DELETE FROM {m} AS old WHERE old.segment_id = %s "
        "AND old.customer_id = ANY(%s::bigint[]) RETURNING old.customer_id, old.since, old.run_id), "
        f"came AS (INSERT INTO {m} (segment_id, customer_id, since, run_id) "
        "SELECT %s, j.id, %s, %s FROM unnest(%s::bigint[]) AS j(id) ORDER BY j.id RETURNING 1), "
        f"logged AS (INSERT INTO {c} (segment_id, customer_id, run_id, change, at) "
        "SELECT %s, customer_id, run_id, 'joined', since FROM gone "
        "UNION ALL SELECT %s, customer_id, %s, 'left', %s FROM gone) "
        "SELECT (SELECT count(*) FROM came), (SELECT count(*) FROM gone)",
        [segment.pk, leavers, segment.pk, at, run_id, joiners, segment.pk, segment.pk, run_id, at],
    )
    return cursor.fetchone()


def memberships_update_marked(
    *, limit: int | None = None, now: dt.datetime | None = None
) -> RealtimeBatch:
    """Re-evaluate one batch of marked customers against every rule segment (see the module)."""
    limit = limit or settings.SEGMENTS_REALTIME_BATCH_SIZE
    batch = RealtimeBatch()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        rule_segments = Segment.objects.filter(kind=Segment.Kind.RULE)
        locked = list(rule_segments.select_for_update(no_key=True, skip_locked=True).order_by("pk"))
        ids, batch.oldest_mark = _claim(cursor, limit)
        if not ids:
            return batch
        batch.customers = len(ids)
        held = set(rule_segments.values_list("pk", flat=True)) - {s.pk for s in locked}
        batch.deferred = sorted(held)
        started = timezone.now()
        now = now or started
        gained: list[int] = []
        for segment in segments_in_dependency_order(locked):
            try:
                with transaction.atomic():
                    joiners, leavers = _differences(cursor, segment, ids, now)
            except (DatabaseError, ValidationError) as exc:
                # A rule that no longer compiles or runs (its full refresh fails too, and says
                # why on the segment's page) must not hold up every other segment.
                logger.warning("real-time update skipped segment %s: %s", segment.pk, exc)
                batch.failed.append(segment.pk)
                continue
            if not joiners and not leavers:
                continue
            at = timezone.now()
            run = RefreshRun.objects.create(
                segment=segment,
                trigger=RefreshRun.Trigger.REALTIME,
                status=RefreshRun.Status.RUNNING,
                started_at=at,
            )
            joined, left = _apply(cursor, segment, run.pk, at, joiners, leavers)
            size = max(segment.member_count + joined - left, 0)
            finished = timezone.now()
            RefreshRun.objects.filter(pk=run.pk).update(
                status=RefreshRun.Status.DONE,
                finished_at=finished,
                duration=finished - at,
                size=size,
                joined=joined,
                left=left,
            )
            Segment.objects.filter(pk=segment.pk).update(member_count=size)
            batch.joined += joined
            batch.left += left
            batch.runs.append(run.pk)
            if joined:
                gained.append(segment.pk)
        if gained and _joins_listeners:
            transaction.on_commit(lambda: _joins_announce(gained))
        if held:
            # A full refresh holds these segments; their customers are taken again by the next
            # run (the next write's, or beat's within 10 seconds), not at once, or the worker
            # would spin until the refresh is done.
            customers_mark(customer_ids=ids, notify=False)
    return batch


def memberships_update_queue() -> bool:
    """Queue the real-time task (after a marking transaction commits), unless one is queued and
    not yet started: the writes of a busy second queue one task, not one each. A task queued
    more than QUEUED_EXPIRES ago counts as lost. Returns whether it queued one."""
    from segments.tasks import segments_realtime_task

    table = connection.ops.quote_name(RealtimeQueue._meta.db_table)
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS q (id, queued_at) VALUES (1, %s) ON CONFLICT (id) DO UPDATE "
            "SET queued_at = EXCLUDED.queued_at "
            "WHERE q.queued_at IS NULL OR q.queued_at < %s RETURNING 1",
            [now, now - QUEUED_EXPIRES],
        )
        if cursor.fetchone() is None:
            return False
    try:
        segments_realtime_task.apply_async()
    except Exception:
        # Not queued after all (a broker that does not answer): the next write tries again.
        RealtimeQueue.objects.filter(pk=1, queued_at=now).update(queued_at=None)
        raise
    return True


def memberships_update_run(
    *, budget_seconds: float | None = None, limit: int | None = None
) -> RealtimeBatch:
    """Take batches until no mark is left, a segment is held by a full refresh, or the time
    budget is spent (then a fresh task is queued); returns the totals."""
    RealtimeQueue.objects.filter(pk=1).update(queued_at=None)
    budget = settings.SEGMENTS_REALTIME_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    deadline = time.monotonic() + budget
    total = RealtimeBatch()
    while True:
        batch = memberships_update_marked(limit=limit)
        total.customers += batch.customers
        total.joined += batch.joined
        total.left += batch.left
        total.runs += batch.runs
        total.deferred = batch.deferred
        if batch.oldest_mark and (
            total.oldest_mark is None or batch.oldest_mark < total.oldest_mark
        ):
            total.oldest_mark = batch.oldest_mark
        if not batch.customers or batch.deferred:
            return total
        if time.monotonic() > deadline:
            memberships_update_queue()
            return total
