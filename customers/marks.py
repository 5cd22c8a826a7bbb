"""Marking customers whose segment membership a write may have changed.

customers sits below segments and never imports it: a write marks the customer here, in its own
transaction, and the app that re-evaluates memberships (segments.realtime) registers a listener
(customers.registry.marks_listener_register) that is told once the marking transaction commits.

A mark is one `INSERT ... ON CONFLICT` per write or per import chunk. A customer marked again
keeps one row; the conflict updates it (keeping the earliest time) rather than doing nothing,
so that the row is locked until the write commits: a worker that claims marks skips locked ones
(FOR UPDATE SKIP LOCKED) and never takes a mark whose write it cannot see yet. With DO NOTHING a
worker could claim the older mark of a customer being written, evaluate without the write, and
leave no mark behind.

Mark first in a transaction, before locking the customer row: a worker evaluating a claimed
customer may wait on that row's lock, and a writer waiting on the worker's claimed mark while
holding the row would deadlock with it.
"""

from collections.abc import Iterable

from django.db import connection, transaction

from customers.models import MembershipMark
from customers.registry import marks_listeners

MARKS_TABLE = MembershipMark._meta.db_table
_UPSERT = (
    f"INSERT INTO {MARKS_TABLE} AS m (customer_id, marked_at) {{select}} "
    "ON CONFLICT (customer_id) DO UPDATE SET marked_at = LEAST(m.marked_at, EXCLUDED.marked_at)"
)


def _notify() -> None:
    for listener in marks_listeners():
        listener()


def customers_marked_notify() -> None:
    """Tell the listeners once the transaction commits (once per transaction, however many
    marks it wrote); for statements that mark customers themselves (customer_stats_refresh)."""
    if not marks_listeners():
        return
    if connection.in_atomic_block and any(
        func is _notify for _, func, _ in connection.run_on_commit
    ):
        return
    transaction.on_commit(_notify, robust=True)


def customers_mark(*, customer_ids: Iterable[int], notify: bool = True) -> int:
    """Mark these customers (ids, in any order, repeats allowed); returns how many. With
    `notify=False` the listeners are not told (the marks wait for the next run)."""
    ids = sorted({int(pk) for pk in customer_ids if pk is not None})
    if not ids:
        return 0
    with connection.cursor() as cursor:
        # Sorted, so two writers marking overlapping customers lock the rows in the same order.
        cursor.execute(
            _UPSERT.format(
                select="SELECT id, clock_timestamp() FROM unnest(%s::bigint[]) AS t(id) ORDER BY id"
            ),
            [ids],
        )
    if notify:
        customers_marked_notify()
    return len(ids)


def customers_mark_where(*, select_ids: str, params: list | dict | None = None) -> int:
    """Mark the customers a query selects (`select_ids`: SQL selecting one column of customer
    ids, possibly with repeats), set-based; returns how many."""
    with connection.cursor() as cursor:
        cursor.execute(
            _UPSERT.format(
                select="SELECT d.id, clock_timestamp() FROM (SELECT DISTINCT ids.id "
                f"FROM ({select_ids}) AS ids(id) WHERE ids.id IS NOT NULL) AS d ORDER BY d.id"
            ),
            params or [],
        )
        count = cursor.rowcount
    if count:
        customers_marked_notify()
    return count
