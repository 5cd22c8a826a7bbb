"""Run by tests/integration/test_read_replica.py in a process of its own, with DATABASE_URL
naming a primary and DATABASE_REPLICA_URL its streaming replica: makes the two differ (replay
paused on the replica) and prints, as JSON, what each kind of read sees."""

import json
import os
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
django.setup()

from django.db import connections  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402

from crm.db_router import PIN_COOKIE, ReplicaPinMiddleware, heavy_read_connection  # noqa: E402
from customers.models import Customer  # noqa: E402
from segments.ml.features import frame_from_sql  # noqa: E402
from segments.selectors import segment_preview  # noqa: E402
from tests.customers.factories import CustomerFactory  # noqa: E402

RULE = {"all": [{"field": "country", "op": "eq", "value": "DE"}]}
TABLE = Customer._meta.db_table


def _replica(sql: str):
    with connections["replica"].cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def _replica_germans() -> int:
    return _replica(f"SELECT count(*) FROM {TABLE} WHERE country = 'DE'")


def _wait_for_replica(count: int) -> None:
    deadline = time.monotonic() + 30
    while _replica_germans() != count:
        if time.monotonic() > deadline:
            raise SystemExit(f"the replica never caught up to {count}")
        time.sleep(0.1)


def _preview(request) -> HttpResponse:
    return HttpResponse(str(segment_preview(rule=RULE).count))


def _write_then_preview(request) -> HttpResponse:
    CustomerFactory(country="DE")
    return _preview(request)


def main() -> None:
    seen = {"replica_in_recovery": _replica("SELECT pg_is_in_recovery()")}
    CustomerFactory.create_batch(2, country="DE")
    _wait_for_replica(2)
    _replica("SELECT pg_wal_replay_pause()::text")
    CustomerFactory.create_batch(3, country="DE")  # the primary has 5, the replica 2

    seen["ordinary_count"] = Customer.objects.filter(country="DE").count()
    seen["preview_count"] = segment_preview(rule=RULE).count
    seen["feature_rows"] = len(
        frame_from_sql(f"SELECT id FROM {TABLE} WHERE country = 'DE'", ["id"])
    )
    with heavy_read_connection().cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        seen["features_read_from_replica"] = cursor.fetchone()[0]

    requests = RequestFactory()
    wrote = ReplicaPinMiddleware(_write_then_preview)(requests.post("/"))
    seen["preview_after_a_write_in_the_request"] = int(wrote.content)
    follow = requests.get("/")
    follow.COOKIES[PIN_COOKIE] = wrote.cookies[PIN_COOKIE].value
    seen["preview_in_the_next_request_of_that_browser"] = int(
        ReplicaPinMiddleware(_preview)(follow).content
    )
    seen["preview_of_another_browser"] = int(
        ReplicaPinMiddleware(_preview)(requests.get("/")).content
    )

    _replica("SELECT pg_wal_replay_resume()::text")
    _wait_for_replica(6)
    seen["preview_after_the_replica_caught_up"] = segment_preview(rule=RULE).count
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
