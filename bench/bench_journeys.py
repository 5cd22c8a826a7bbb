"""Journeys: how long after its trigger a journey's first step runs, and what one round costs.

    DATABASE_URL=postgres://.../crm_bench python -m bench.bench_journeys [--tier S|M|XS]
        [--rate 20] [--seconds 30] [--reps 3] [--redis redis://127.0.0.1:6379/13]

Delay: a journey "enters segment (a)" (spend > 500 in 90 days, DE, email consent; the segment of
bench_realtime) whose first step sends an email and whose second waits a day is active. A real
worker on the default queue (real-time membership, the journeys), one on the delivery queue and
one beat (the journeys every 2 seconds, as the migration schedules them) run, while this process
records purchases through `customers.services.purchase_create` at `--rate` per second for
`--seconds`, each making a different customer a member of (a). For each: the purchase's commit,
the join recorded by the real-time run (`Membership.since`, the trigger) and the send step run
for the enrolment (its "message queued" event, written in the round that writes the send row).
p50 and p95 of step - join (the journey's own delay) and of step - purchase (end to end).

Round cost: N enrolments due on the send step, moved on by one round of the engine (lock, exits
and goal, send rows through the campaign audience rules, move, history), against the
hand-written statements that do the same writes for the same ids (INSERT the send rows with the
consent and suppression check, UPDATE the enrolments, INSERT their history), alternately, for N
in 100, 1000; both must write the same number of send rows and move the same enrolments. The
statements of a round must not grow with N. Writes bench/results/journeys.json.
"""

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
os.environ.setdefault("AXES_ENABLED", "false")
django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.bench_realtime import (  # noqa: E402
    RULE_A,
    TIERS,
    _candidates,
    _load,
    _purchases_of_earlier_runs_remove,
    _row,
    _segment,
)
from bench.generator import ensure_dataset  # noqa: E402
from campaigns.models import Send  # noqa: E402
from customers.models import Customer, MembershipMark  # noqa: E402
from customers.services import purchase_create  # noqa: E402
from journeys.engine import _round  # noqa: E402
from journeys.models import Enrolment, EnrolmentEvent, Journey  # noqa: E402
from journeys.services import journey_activate, journey_create, step_add  # noqa: E402
from segments.models import Membership  # noqa: E402
from segments.services import segment_refresh  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]

# The same writes as one round on the send step, by hand: the send rows (pending for those with
# email consent, no suppression entry and an address, else excluded), the move to the wait step,
# and two history rows per enrolment.
ANCHOR = """
WITH e AS (SELECT id, customer_id, entry FROM journeys_enrolment WHERE id = ANY(%(ids)s)
           FOR UPDATE),
sends AS (
  INSERT INTO campaigns_send (campaign_id, customer_id, occurrence, variant_id, is_holdout, status,
                              reason, created_at, attempts, provider_message_id)
  SELECT %(campaign)s, e.customer_id, e.entry,
         CASE WHEN ok THEN %(variant)s END, false,
         CASE WHEN ok THEN 'pending' ELSE 'excluded' END,
         CASE WHEN ok THEN '' ELSE 'no_consent' END, %(now)s, 0, ''
  FROM e JOIN customers_customer c ON c.id = e.customer_id
  CROSS JOIN LATERAL (SELECT c.erased_at IS NULL AND c.email IS NOT NULL AND EXISTS (
      SELECT 1 FROM privacy_consentstate s WHERE s.customer_id = c.id
       AND s.purpose_id = 'email_marketing' AND s.state = 'granted') AND NOT EXISTS (
      SELECT 1 FROM privacy_suppression x WHERE x.kind = 'email'
       AND x.value_hash = c.email_hash AND c.email_hash <> '') AS ok) k
  ON CONFLICT DO NOTHING RETURNING 1),
moved AS (
  UPDATE journeys_enrolment SET step_id = %(next)s, step_since = %(now)s,
         due_at = %(now)s + interval '1 day'
  WHERE id IN (SELECT id FROM e) RETURNING id),
events AS (
  INSERT INTO journeys_enrolmentevent (enrolment_id, step_id, kind, at, detail)
  SELECT id, %(step)s, 'sent', %(now)s, '' FROM moved
  UNION ALL SELECT id, %(next)s, 'reached', %(now)s, '' FROM moved RETURNING 1)
SELECT (SELECT count(*) FROM sends), (SELECT count(*) FROM moved), (SELECT count(*) FROM events)
"""


def _journey() -> Journey:
    Journey.objects.filter(name="bench-journeys").update(status=Journey.Status.PAUSED)
    segment = _segment("bench-realtime-a", RULE_A)
    journey = journey_create(
        actor=None, name="bench-journeys", trigger=Journey.Trigger.SEGMENT,
        trigger_segment=segment,
    )  # fmt: skip
    step_add(journey=journey, actor=None, kind="send", subject="Welcome", body="Hello")
    step_add(journey=journey, actor=None, kind="wait", wait=dt.timedelta(days=1))
    return journey


def _celery_point(*, redis_url: str, queue: str, routes: dict) -> None:
    """Send this process's tasks to `queue` on Redis from now on (Celery builds its pools and
    routing once, on first use: they are dropped so the new settings apply)."""
    from kombu import pools

    from crm.celery import app as celery_app

    celery_app.conf.update(
        broker_url=redis_url, result_backend=redis_url, task_always_eager=False,
        task_default_queue=queue, task_routes=routes,
    )  # fmt: skip
    pools.reset()
    celery_app._pool = None
    celery_app.__dict__.pop("amqp", None)
    celery_app._backend_cache = None
    celery_app._local.__dict__.pop("backend", None)


def _process(args: list[str], env: dict) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "crm", *args], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
    return process


def delay(tier: str, rate: int, seconds: int, redis_url: str) -> list[dict]:
    segment = _segment("bench-realtime-a", RULE_A)
    segment_refresh(segment=segment)
    MembershipMark.objects.all().delete()
    journey = _journey()
    total = rate * seconds
    customers = _candidates(segment, total)
    queue = f"bench-journeys-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_RESULT_BACKEND": redis_url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "CRM_QUEUE_DELIVERY": f"{queue}-delivery",
        # Nightly and per-minute heavy jobs wait: they are not what is measured.
        "CRM_QUEUE_HEAVY": f"{queue}-heavy",
        "EMAIL_URL": "dummymail://",
        "PYTHONUNBUFFERED": "1",
    }
    from crm.queues import task_routes

    _celery_point(
        redis_url=redis_url,
        queue=queue,
        routes=task_routes(delivery=f"{queue}-delivery", heavy=f"{queue}-heavy"),
    )
    quiet = ["--loglevel=WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    schedule = Path(tempfile.mkdtemp()) / "beat-schedule"
    processes = [
        _process(["worker", "--pool=solo", "-Q", queue, *quiet, "-n", f"{queue}@%h"], env),
        _process(
            ["worker", "--pool=solo", "-Q", f"{queue}-delivery", *quiet, "-n", f"{queue}-d@%h"], env
        ),  # fmt: skip
    ]
    time.sleep(8)  # the workers start
    journey_activate(journey=journey, actor=None)
    processes.append(_process(["beat", "--loglevel=WARNING", "-s", str(schedule)], env))
    time.sleep(4)
    posted: dict[int, dt.datetime] = {}
    started = time.monotonic()
    try:
        for i, customer_id in enumerate(customers):
            wait = started + i / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            purchase_create(
                customer=Customer(pk=customer_id),
                purchased_at=timezone.now(),
                amount=Decimal("600.00"),
                external_id=f"bench-rt-{uuid.uuid4().hex}",
            )
            posted[customer_id] = timezone.now()
        achieved = len(posted) / (time.monotonic() - started)
        deadline = time.monotonic() + 90
        sent = EnrolmentEvent.objects.filter(
            enrolment__journey=journey, kind__in=["sent", "not_sent"]
        )
        while time.monotonic() < deadline and sent.count() < len(posted):
            time.sleep(0.5)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
    joined = dict(
        Membership.objects.filter(segment=segment, customer_id__in=list(posted)).values_list(
            "customer_id", "since"
        )
    )
    stepped = dict(
        EnrolmentEvent.objects.filter(
            enrolment__journey=journey, kind__in=["sent", "not_sent"]
        ).values_list("enrolment__customer_id", "at")
    )
    after_join = sorted((stepped[c] - joined[c]).total_seconds() for c in stepped if c in joined)
    after_purchase = sorted(
        (stepped[c] - posted[c]).total_seconds() for c in stepped if c in posted
    )
    missed = len(posted) - len(stepped)
    queued = Send.objects.filter(campaign__journey_step__journey=journey).count()

    def pct(values, q):
        return values[int(q * (len(values) - 1))] if values else None

    note = (f"{len(posted)} purchases at {achieved:.1f}/s for {seconds} s; {len(stepped)} send "
            f"steps run ({queued} send rows), {missed} missed")  # fmt: skip
    rows = []
    for label, values in (("after the join (trigger)", after_join),
                          ("after the purchase (end to end)", after_purchase)):  # fmt: skip
        for q, target in ((0.5, 3), (0.95, 5)):
            value = statistics.median(values) if q == 0.5 and values else pct(values, q)
            rows.append(_row(
                f"send step {label}, p{int(q * 100)}", tier, value, "-", None, None, None,
                f"p{int(q * 100)} < {target} s",
                "yes" if value is not None and value < target and not missed else "no", note=note,
            ))  # fmt: skip
    Journey.objects.filter(pk=journey.pk).update(status=Journey.Status.PAUSED)
    return rows


def round_cost(tier: str, reps: int, redis_url: str) -> list[dict]:
    """One round of N enrolments on the send step against the same writes by hand."""
    # The delivery the round queues after its commit goes to a queue nobody reads (and is
    # dropped at the end): it is not part of the round, and this process must not deliver.
    dropped = f"bench-journeys-dropped-{uuid.uuid4().hex[:8]}"
    _celery_point(redis_url=redis_url, queue=dropped, routes={})
    journey = _journey()
    send, wait = list(journey.steps.order_by("position"))
    variant = send.campaign.variants.get()
    rows = []
    for n in (100, 1000):
        # Customers no exit takes out (erased, consent withdrawn): both sides write for all.
        ids_customers = list(
            Customer.objects.filter(erased_at__isnull=True)
            .exclude(
                consent_states__purpose_id="email_marketing", consent_states__state="withdrawn"
            )
            .order_by("?")
            .values_list("pk", flat=True)[: n * 2 * (reps + 1)]
        )
        pairs, ours_t, anchor_t, statements = [], [], [], 0
        for rep in range(reps + 1):
            # Each repetition starts from a journey nobody is in (not measured).
            Enrolment.objects.filter(journey=journey).delete()
            Send.objects.filter(campaign=send.campaign).delete()
            now = timezone.now()
            chunk = ids_customers[rep * 2 * n : (rep + 1) * 2 * n]
            mine, theirs = chunk[:n], chunk[n:]
            made = Enrolment.objects.bulk_create(
                [
                    Enrolment(
                        journey=journey,
                        customer_id=c,
                        entry=1000 + rep,
                        step=send,
                        step_since=now,
                        due_at=now,
                        entered_at=now,
                    )  # fmt: skip
                    for c in chunk
                ]
            )
            their_ids = [e.pk for e in made if e.customer_id in set(theirs)]
            # Only `mine` is due for the engine; `theirs` waits for the hand-written statements.
            Enrolment.objects.filter(pk__in=their_ids).update(due_at=now + dt.timedelta(days=9))
            Journey.objects.filter(pk=journey.pk).update(status=Journey.Status.ACTIVE)

            def ours(now=now, n=n):
                start = time.perf_counter()
                with CaptureQueriesContext(connection) as queries:
                    moved, _campaigns = _round(now=now, batch_size=n)
                return time.perf_counter() - start, moved, len(queries)

            def anchor(ids=their_ids, now=now):
                start = time.perf_counter()
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(ANCHOR, {"ids": ids, "campaign": send.campaign_id,
                                            "variant": variant.pk, "now": now, "step": send.pk,
                                            "next": wait.pk})  # fmt: skip
                    result = cursor.fetchone()
                return time.perf_counter() - start, result

            times = {}
            for which in ["anchor", "ours"] if rep % 2 == 0 else ["ours", "anchor"]:
                if which == "ours":
                    times["ours"], moved, statements = ours()
                else:
                    times["anchor"], result = anchor()
            Journey.objects.filter(pk=journey.pk).update(status=Journey.Status.PAUSED)
            ours_sends = Send.objects.filter(campaign=send.campaign, customer_id__in=mine,
                                             occurrence=1000 + rep).count()  # fmt: skip
            if (moved, ours_sends) != (n, result[0]) or result[1] != n:
                raise SystemExit(f"round of {n}: ours moved {moved}, {ours_sends} sends; "
                                 f"by hand {result}")  # fmt: skip
            if rep == 0:
                continue
            ours_t.append(times["ours"])
            anchor_t.append(times["anchor"])
            pairs.append(times["ours"] / times["anchor"])
        rows.append(
            _row(
                f"one round of {n} enrolments on the send step",
                tier,
                statistics.median(ours_t),
                "the same writes by hand (one CTE statement)",
                statistics.median(anchor_t),
                round(statistics.median(pairs), 2),
                f"{min(pairs):.2f}-{max(pairs):.2f}",
                "statements do not grow with N",
                "see statements",
                statements=statements,
            )  # fmt: skip
        )
    Enrolment.objects.filter(journey=journey).delete()
    Send.objects.filter(campaign=send.campaign).delete()
    import redis

    redis.Redis.from_url(redis_url).delete(dropped)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", choices=sorted(TIERS), default="S")
    parser.add_argument("--rate", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    )
    args = parser.parse_args(argv)
    customers, purchases = TIERS[args.tier]
    ensure_dataset(customers, purchases, args.seed)
    _purchases_of_earlier_runs_remove()
    load_start = _load()
    rows = round_cost(args.tier, args.reps, args.redis)
    rows += delay(args.tier, args.rate, args.seconds, args.redis)
    load_end = _load()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"tier {args.tier}: {customers:,} customers, {purchases:,} purchases; nproc "
          f"{os.cpu_count()}; load {load_start:.2f} -> {load_end:.2f}; peak memory {peak_mb:.0f} MB")  # fmt: skip
    print("case | tier | ours_s | anchor | anchor_s | ratio (spread) | target | met")
    for r in rows:
        ratio = "" if r["ratio"] is None else f"{r['ratio']} ({r['spread']})"
        extra = r.get("note") or f"{r.get('statements')} statements"
        print(f"{r['case']} | {r['tier']} | {r['ours_s']} | {r['anchor']} | {r['anchor_s']} | "
              f"{ratio} | {r['target']} | {r['met']}  [{extra}]")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "journeys.json").write_text(
        json.dumps({"rows": rows, "load": [load_start, load_end], "peak_mb": peak_mb}, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
