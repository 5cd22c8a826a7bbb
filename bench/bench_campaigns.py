"""Campaign benchmark: the launch fan-out and delivery throughput, each against its anchor.

    DATABASE_URL=postgres://.../crm_bench python -m bench.bench_campaigns [--tier M|S|XS]
        [--reps 3] [--messages 2000]

- fan-out: `campaign_launch` of a broadcast to a segment holding every customer (two variants,
  a 10% holdout, an exclusion segment, email consent, a suppression list and a frequency cap
  fed by an earlier campaign's sends), against one hand-written `INSERT ... SELECT` writing the
  same send rows with the same exclusions, split and holdout; alternately, on the same campaign.
  The (customer, status, reason, variant, holdout) rows must be equal or the figure is void.
- delivery: the project's delivery path (dispatch, claim, consent and suppression re-check,
  render, then over SMTP in groups of CAMPAIGNS_GROUP_SIZE messages, one connection each kept
  for the batch: each message written up to the final dot, one statement re-checking and
  recording the group, then the dots) in this one process, against a plain `smtplib` loop sending the same rendered
  messages over one connection, both to an aiosmtpd server on loopback in another process. The
  server must receive exactly the expected messages from each side or the figure is void.

Objects the benchmark adds to the database (segments, campaigns, their sends, suppression
entries) are removed at the end. Writes bench/results/campaigns.json.
"""

import argparse
import datetime as dt
import json
import logging
import multiprocessing
import os
import resource
import smtplib
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from unittest import mock

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, reset_queries  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.generator import ensure_dataset  # noqa: E402
from campaigns.audience import BUCKETS  # noqa: E402
from campaigns.models import Campaign, Send, Variant  # noqa: E402
from campaigns.services import (  # noqa: E402
    campaign_create,
    campaign_dispatch,
    campaign_launch,
    promotion_set,
    variant_create,
)
from crm.celery import app as celery_app  # noqa: E402
from privacy.models import Purpose, Suppression  # noqa: E402
from privacy.selectors import customers_eligible_for  # noqa: E402
from segments.models import Segment  # noqa: E402
from segments.services import segment_add_members, segment_create, segment_refresh  # noqa: E402

TIERS = {"XS": (2_000, 40_000), "S": (100_000, 2_000_000), "M": (1_000_000, 10_000_000)}
RESULTS = Path(__file__).resolve().parent / "results"
PREFIX = "bench-campaigns"
HOLDOUT = Decimal("10")
CAP = (1, 7)  # at most 1 marketing message in 7 days
FANOUT_TARGET = 1.3
DELIVERY_TARGET = 0.5

# Setup (not timed): who is suppressed, who had a recent message, who is in the exclusion segment.
SUPPRESS_EMAIL = "c.id %% 97 = 5 AND c.email IS NOT NULL"
SUPPRESS_PHONE = "c.id %% 89 = 7 AND c.phone <> ''"
PRIOR_SENT = "c.id %% 10 = 3"  # within the cap's window
PRIOR_OLD = "c.id %% 10 = 4"  # sent before the window: does not count
PRIOR_PENDING = "c.id %% 40 = 9"  # still queued: counts
EXCLUSION_RULE = {"field": "age", "op": "lt", "value": 22}
SCENARIO_REASONS = ("exclusion_segment", "no_consent", "suppressed", "frequency_cap")
# Suppression rows the benchmark adds carry this creation time, so cleanup finds exactly them.
_SUPPRESSION_MARK = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

# The hand-written statement: the same rows as the launch, written without the ORM.
ANCHOR_SQL = """
INSERT INTO campaigns_send (campaign_id, customer_id, occurrence, variant_id, is_holdout, status,
                            reason, created_at, attempts, provider_message_id)
SELECT %(campaign)s, q.id, 0,
       CASE WHEN q.reason <> '' OR q.hb < %(cut)s THEN NULL
            WHEN q.vb < %(split)s THEN %(variant_a)s ELSE %(variant_b)s END,
       q.reason = '' AND q.hb < %(cut)s,
       CASE WHEN q.reason <> '' THEN 'excluded' WHEN q.hb < %(cut)s THEN 'holdout'
            ELSE 'pending' END,
       q.reason, %(now)s, 0, ''
FROM (
  SELECT c.id,
    CASE
      WHEN EXISTS (SELECT 1 FROM segments_membership m
                   WHERE m.customer_id = c.id AND m.segment_id = %(exclusion)s)
        THEN 'exclusion_segment'
      WHEN NOT EXISTS (SELECT 1 FROM privacy_consentstate s WHERE s.customer_id = c.id
                       AND s.purpose_id = 'email_marketing' AND s.state = 'granted')
        THEN 'no_consent'
      WHEN c.email_hash IN (SELECT value_hash FROM privacy_suppression WHERE kind = 'email')
        OR c.phone_hash IN (SELECT value_hash FROM privacy_suppression WHERE kind = 'phone')
        THEN 'suppressed'
      WHEN coalesce(r.n, 0) >= %(cap)s THEN 'frequency_cap'
      WHEN c.email IS NULL THEN 'no_address'
      ELSE ''
    END AS reason,
    ('x' || substr(md5('holdout:' || %(campaign)s || ':' || c.id), 1, 7))::bit(28)::int
      %% %(buckets)s AS hb,
    ('x' || substr(md5('variant:' || %(campaign)s || ':' || c.id), 1, 7))::bit(28)::int
      %% %(buckets)s AS vb
  FROM customers_customer c
  LEFT JOIN (SELECT customer_id, count(*) AS n FROM campaigns_send
             WHERE campaign_id <> %(campaign)s
               AND ((status = 'sent' AND sent_at >= %(since)s) OR status IN ('pending', 'claimed'))
             GROUP BY customer_id) r ON r.customer_id = c.id
  WHERE EXISTS (SELECT 1 FROM segments_membership m
                WHERE m.customer_id = c.id AND m.segment_id = %(target)s)
  OFFSET 0  -- computes the reason once, not again for each of its uses above
) q
"""
ROW_COLUMNS = "customer_id, status, reason, variant_id, is_holdout"

SUBJECT = "{{ customer.first_name }}, {{ promotion.discount }} off for you"
TEXT = """Hello {{ customer.first_name }} {{ customer.last_name }},

your code {{ promotion.code }} takes {{ promotion.discount }} off your next order{% if account.name %}
for {{ account.name }}{% endif %}. See you in {{ customer.city }}!

Unsubscribe: {{ links.unsubscribe }}
Preferences: {{ links.preferences }}
"""
HTML = """<html><body><h1>Hello {{ customer.first_name }}</h1>
<p>Your code <strong>{{ promotion.code }}</strong> takes {{ promotion.discount }} off.</p>
<p><a href="https://shop.example/sale?c={{ customer.country }}">Shop the sale</a></p>
<p><a href="{{ links.unsubscribe }}">Unsubscribe</a></p></body></html>"""


def _sql(statement: str, params=None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def _scalar(statement: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone()[0]


def _log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _row(case, tier, ours, anchor_name, anchor, target, **extra) -> dict:
    return {
        "case": case,
        "tier": tier,
        "ours_s": round(ours, 4),
        "anchor": anchor_name,
        "anchor_s": round(anchor, 4),
        "ratio": round(ours / anchor, 2),
        "target": target,
        **extra,
    }


def cleanup() -> None:
    """Remove what an earlier (or this) run added."""
    campaigns = Campaign.objects.filter(name__startswith=PREFIX)
    _sql(
        "DELETE FROM campaigns_send WHERE campaign_id IN "
        "(SELECT id FROM campaigns_campaign WHERE name LIKE %s)",
        [f"{PREFIX}%"],
    )
    campaigns.delete()
    Suppression.objects.filter(created_at=_SUPPRESSION_MARK).delete()
    for segment in Segment.objects.filter(slug__startswith=PREFIX):
        _sql("DELETE FROM segments_membershipchange WHERE segment_id = %s", [segment.pk])
        _sql("DELETE FROM segments_membership WHERE segment_id = %s", [segment.pk])
        segment.delete()
    _sql("VACUUM ANALYZE campaigns_send")


def scenario_create(now: dt.datetime) -> dict:
    """Segments, suppression entries and an earlier campaign's sends (not timed)."""
    everyone = segment_create(name=f"{PREFIX} everyone", slug=f"{PREFIX}-everyone", owner=None,
                              rule={"all": []})  # fmt: skip
    young = segment_create(name=f"{PREFIX} young", slug=f"{PREFIX}-young", owner=None,
                           rule=EXCLUSION_RULE)  # fmt: skip
    segment_refresh(segment=everyone, now=now)
    segment_refresh(segment=young, now=now)
    salt = settings.PRIVACY_HASH_SALT
    for kind, condition, normalised in (
        ("email", SUPPRESS_EMAIL, "lower(trim(c.email))"),
        ("phone", SUPPRESS_PHONE, "translate(lower(trim(c.phone)), ' -().+/', '')"),
    ):
        _sql(
            "INSERT INTO privacy_suppression (kind, value_hash, reason, created_at) "
            f"SELECT %s, encode(sha256(convert_to(%s || {normalised}, 'UTF8')), 'hex'), "
            f"'retention', %s FROM customers_customer c WHERE {condition} ON CONFLICT DO NOTHING",
            [kind, salt, _SUPPRESSION_MARK],
        )
    prior = Campaign.objects.create(name=f"{PREFIX} earlier", status=Campaign.Status.SENT,
                                    consent_purpose_id="email_marketing")  # fmt: skip
    for condition, status, sent_at in (
        (PRIOR_SENT, "sent", now - dt.timedelta(days=2)),
        (PRIOR_OLD, "sent", now - dt.timedelta(days=30)),
        (PRIOR_PENDING, "pending", None),
    ):
        _sql(
            "INSERT INTO campaigns_send (campaign_id, customer_id, occurrence, is_holdout, status, "
            "reason, created_at, sent_at, attempts, provider_message_id) "
            f"SELECT %s, c.id, 0, false, %s, '', %s, %s, 0, '' FROM customers_customer c "
            f"WHERE {condition} ON CONFLICT DO NOTHING",
            [prior.pk, status, now, sent_at],
        )
    _sql("ANALYZE campaigns_send")
    _sql("ANALYZE privacy_suppression")
    _sql("ANALYZE segments_membership")
    return {"everyone": everyone, "young": young}


def _variants(campaign: Campaign) -> None:
    for name in ("A", "B"):
        variant_create(campaign=campaign, actor=None, name=name, subject=f"[{name}] {SUBJECT}",
                       text=TEXT, html=HTML)  # fmt: skip


# ---- fan-out ---------------------------------------------------------------------------------


def fanout(tier: str, reps: int, scenario: dict, now: dt.datetime) -> list[dict]:
    campaign = campaign_create(
        actor=None, name=f"{PREFIX} fan-out", holdout_percent=HOLDOUT,
        frequency_cap_count=CAP[0], frequency_cap_days=CAP[1],
        target_segments=[scenario["everyone"]], exclusion_segments=[scenario["young"]],
    )  # fmt: skip
    _variants(campaign)
    a, b = Variant.objects.filter(campaign=campaign).order_by("pk").values_list("pk", flat=True)

    def reset() -> None:
        _sql("DELETE FROM campaigns_send WHERE campaign_id = %s", [campaign.pk])
        _sql("VACUUM ANALYZE campaigns_send")
        Campaign.objects.filter(pk=campaign.pk).update(
            status=Campaign.Status.DRAFT, launched_at=None, exclusions={}
        )

    def anchor() -> int:
        return _sql(ANCHOR_SQL, {
            "campaign": campaign.pk, "now": timezone.now(), "target": scenario["everyone"].pk,
            "exclusion": scenario["young"].pk,
            "cap": CAP[0], "since": timezone.now() - dt.timedelta(days=CAP[1]),
            "cut": int(HOLDOUT * BUCKETS / 100), "split": BUCKETS // 2, "buckets": BUCKETS,
            "variant_a": a, "variant_b": b,
        })  # fmt: skip

    def ours() -> Campaign:
        # Delivery is measured on its own below: the launch queues nothing here.
        with mock.patch("campaigns.services.lifecycle.campaign_dispatch_queue"):
            return campaign_launch(campaign=campaign, actor=None)

    ours_t, anchor_t, statements = [], [], 0
    for rep in range(reps + 1):  # the first round warms caches and is not counted
        reset()
        a_s, written = _timed(anchor)
        _sql("DROP TABLE IF EXISTS bench_anchor_sends")
        _sql(
            f"CREATE TEMP TABLE bench_anchor_sends AS SELECT {ROW_COLUMNS} FROM campaigns_send "
            "WHERE campaign_id = %s",
            [campaign.pk],
        )
        reset()
        reset_queries()  # a full query log would capture nothing
        with CaptureQueriesContext(connection) as queries:
            o_s, launched = _timed(ours)
        statements = len(queries.captured_queries)
        different = _scalar(
            f"SELECT count(*) FROM ((SELECT {ROW_COLUMNS} FROM campaigns_send WHERE campaign_id = %s"
            f" EXCEPT ALL SELECT {ROW_COLUMNS} FROM bench_anchor_sends) UNION ALL"
            f" (SELECT {ROW_COLUMNS} FROM bench_anchor_sends EXCEPT ALL"
            f" SELECT {ROW_COLUMNS} FROM campaigns_send WHERE campaign_id = %s)) d",
            [campaign.pk, campaign.pk],
        )
        if different:
            raise SystemExit(
                f"VOID: fan-out: {different} send rows differ between the launch and the anchor"
            )
        _log(f"fan-out round {rep}: launch {o_s:.3f} s, INSERT ... SELECT {a_s:.3f} s")
        if rep:
            ours_t.append(o_s)
            anchor_t.append(a_s)
    by_status = dict(
        Send.objects.filter(campaign=campaign).order_by().values_list("status")
        .annotate(n=Count("pk"))
    )  # fmt: skip
    missing = set(SCENARIO_REASONS) - set(launched.exclusions)
    if missing:
        raise SystemExit(f"VOID: fan-out: nobody was excluded for {', '.join(sorted(missing))}")
    ours_s, anchor_s = statistics.median(ours_t), statistics.median(anchor_t)
    row = _row(
        "fan-out: launch a broadcast to every customer", tier, ours_s,
        "INSERT ... SELECT, same exclusions", anchor_s, f"<= {FANOUT_TARGET}x anchor",
        send_rows=written, by_status=by_status, excluded=launched.exclusions,
        sql_statements=statements, met=ours_s <= FANOUT_TARGET * anchor_s,
        ours_runs=[round(t, 3) for t in ours_t], anchor_runs=[round(t, 3) for t in anchor_t],
    )  # fmt: skip
    reset()
    return [row]


# ---- delivery --------------------------------------------------------------------------------


def _sink_serve(port_out, ready, stop, counter, received, capture) -> None:
    """An aiosmtpd server in its own process (its CPU does not slow the senders' process)."""
    import asyncio
    import socket

    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # one line per SMTP command

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            with counter.get_lock():
                counter.value += 1
            received.put((envelope.mail_from, list(envelope.rcpt_tos),
                          envelope.original_content if capture.value else None))  # fmt: skip
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    port_out.value = port
    ready.set()
    stop.wait()
    controller.stop()
    asyncio.set_event_loop(None)


class SmtpSink:
    """A loopback SMTP server in another process that counts and keeps what it receives."""

    def __init__(self):
        ctx = multiprocessing.get_context("fork")
        self.port_value = ctx.Value("i", 0)
        self.counter = ctx.Value("i", 0)
        self.capture = ctx.Value("b", 0)
        self.received = ctx.Queue()
        self.ready, self.stop_event = ctx.Event(), ctx.Event()
        self.process = ctx.Process(
            target=_sink_serve,
            args=(self.port_value, self.ready, self.stop_event, self.counter, self.received,
                  self.capture),
            daemon=True,
        )  # fmt: skip

    def start(self) -> int:
        self.process.start()
        if not self.ready.wait(30):
            raise SystemExit("the loopback SMTP server did not start")
        return self.port_value.value

    def stop(self) -> None:
        self.stop_event.set()
        self.process.join(10)

    def take(self, expected: int, timeout: float = 30) -> list:
        """The next `expected` messages (mail_from, rcpt_tos, content or None)."""
        return [self.received.get(timeout=timeout) for _ in range(expected)]

    def count(self) -> int:
        return self.counter.value


def delivery(tier: str, reps: int, messages: int, sink: SmtpSink, port: int) -> list[dict]:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.CAMPAIGNS_RATE_PER_SECOND = 0
    celery_app.conf.task_always_eager = True  # this process is the one worker
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)  # a line per batch
    eligible = _eligible_ids(messages)
    static = segment_create(name=f"{PREFIX} recipients", slug=f"{PREFIX}-recipients", owner=None,
                            kind=Segment.Kind.STATIC)  # fmt: skip
    segment_add_members(segment=static, customers=eligible)
    campaign = campaign_create(actor=None, name=f"{PREFIX} delivery", target_segments=[static])
    _variants(campaign)
    promotion_set(campaign=campaign, actor=None, discount="percent", value=Decimal("15"))
    with mock.patch("campaigns.services.lifecycle.campaign_dispatch_queue"):
        campaign_launch(campaign=campaign, actor=None)
    pending = Send.objects.filter(campaign=campaign, status=Send.Status.PENDING).count()
    if pending != messages:
        raise SystemExit(f"delivery: {pending} recipients pending, expected {messages}")

    def reset() -> None:
        Send.objects.filter(campaign=campaign).update(
            status=Send.Status.PENDING, claimed_at=None, sent_at=None, provider_message_id="",
            attempts=0, reason="",
        )  # fmt: skip
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)

    def ours() -> None:
        campaign_dispatch(campaign=Campaign.objects.get(pk=campaign.pk))

    def check(side: str, before: int, got: list, expected: list) -> None:
        if sink.count() - before != messages or sorted(r for _f, r, _c in got) != expected:
            raise SystemExit(f"VOID: delivery: the server got other messages from {side}")

    # Warm-up: the project's path once; what the server receives is what the anchor sends.
    reset()
    sink.capture.value = 1
    before = sink.count()
    ours()
    captured = sink.take(messages)
    sink.capture.value = 0
    expected = sorted(r for _f, r, _c in captured)
    check("the warm-up", before, captured, expected)
    wanted = sorted([e] for e in Send.objects.filter(campaign=campaign).values_list(
        "customer__email", flat=True))  # fmt: skip
    if expected != wanted:
        raise SystemExit("VOID: delivery: the recipients are not the campaign's")

    def anchor() -> None:
        smtp = smtplib.SMTP("127.0.0.1", port)
        for mail_from, rcpt_tos, content in captured:
            smtp.sendmail(mail_from, rcpt_tos, content)
        smtp.quit()

    ours_t, anchor_t, statements = [], [], 0
    for rep in range(reps):
        order = (
            (("anchor", anchor), ("ours", ours))
            if rep % 2
            else (("ours", ours), ("anchor", anchor))
        )
        for side, fn in order:
            if side == "ours":
                reset()
            before = sink.count()
            reset_queries()  # a full query log would capture nothing
            with CaptureQueriesContext(connection) as queries:
                seconds, _ = _timed(fn)
            check(side, before, sink.take(messages), expected)
            _log(f"delivery round {rep}: {side} {seconds:.3f} s")
            if side == "ours":
                statements = len(queries.captured_queries)
                sent = Send.objects.filter(campaign=campaign, status=Send.Status.SENT).count()
                if sent != messages:
                    raise SystemExit(f"VOID: delivery: {sent} rows recorded sent of {messages}")
                ours_t.append(seconds)
            else:
                anchor_t.append(seconds)
    ours_s, anchor_s = statistics.median(ours_t), statistics.median(anchor_t)
    ours_rate, anchor_rate = messages / ours_s, messages / anchor_s
    return [
        _row(
            f"delivery: {messages:,} emails, one worker process",
            tier,
            ours_s,
            "smtplib loop, same messages, one connection",
            anchor_s,
            f">= {DELIVERY_TARGET}x anchor msg/s",
            messages=messages,
            ours_msg_per_s=round(ours_rate, 1),
            anchor_msg_per_s=round(anchor_rate, 1),
            rate_ratio=round(ours_rate / anchor_rate, 2),
            sql_statements=statements,
            statements_per_message=round(statements / messages, 2),
            met=ours_rate >= DELIVERY_TARGET * anchor_rate,
            ours_runs=[round(t, 3) for t in ours_t],
            anchor_runs=[round(t, 3) for t in anchor_t],
        )  # fmt: skip
    ]


def _eligible_ids(n: int) -> list[int]:
    """The first n customers who may get a marketing email (setup)."""
    eligible = customers_eligible_for(Purpose.EMAIL_MARKETING).filter(email__isnull=False)
    return list(eligible.order_by("pk").values_list("pk", flat=True)[:n])


def run(tier: str, reps: int, seed: int, messages: int, only: str | None) -> list[dict]:
    customers, purchases = TIERS[tier]
    sink = SmtpSink()  # forked before this process opens database connections
    port = sink.start()
    try:
        ensure_dataset(customers, purchases, seed)
        settings.DEBUG = False
        now = timezone.now()
        cleanup()
        rows: list[dict] = []
        try:
            scenario = scenario_create(now)
            _log("scenario ready")
            if only in (None, "fanout"):
                rows += fanout(tier, reps, scenario, now)
            if only in (None, "delivery"):
                rows += delivery(tier, reps, min(messages, customers // 3), sink, port)
        finally:
            cleanup()
    finally:
        sink.stop()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for row in rows:
        row["peak_rss_mb"] = round(peak_mb, 1)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", choices=sorted(TIERS), default="M")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--messages", type=int, default=2000, help="emails in the delivery case")
    parser.add_argument("--only", choices=["fanout", "delivery"], help="run one case")
    args = parser.parse_args(argv)
    if args.reps < 3:
        parser.error("--reps: at least 3 measured repetitions")
    if args.messages < 1:
        parser.error("--messages: at least 1")
    rows = run(args.tier, args.reps, args.seed, args.messages, args.only)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(
        f"machine: {os.cpu_count()} cores, {memory:.0f} GiB; "
        f"{TIERS[args.tier][0]:,} customers / {TIERS[args.tier][1]:,} purchases"
    )
    print("case | tier | ours_s | anchor | anchor_s | ratio | target")
    for r in rows:
        print(
            f"{r['case']} | {r['tier']} | {r['ours_s']:.3f} | {r['anchor']} | {r['anchor_s']:.3f} "
            f"| {r['ratio']} | {r['target']}{'' if r['met'] else '  (NOT MET)'}"
        )
    for r in rows:
        if "send_rows" in r:
            print(f"fan-out: {r['send_rows']:,} send rows {r['by_status']}; excluded "
                  f"{r['excluded']}; {r['sql_statements']} SQL statements")  # fmt: skip
        if "messages" in r:
            print(f"delivery: ours {r['ours_msg_per_s']} msg/s, smtplib {r['anchor_msg_per_s']} "
                  f"msg/s ({r['rate_ratio']}x); {r['statements_per_message']} SQL statements "
                  "per message")  # fmt: skip
    print(f"peak memory: {rows[0]['peak_rss_mb'] if rows else 0} MB")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "campaigns.json"
    written = rows
    if args.only and path.exists():  # keep the other case's latest figures
        case = {"fanout": "fan-out", "delivery": "delivery"}[args.only]
        written = [r for r in json.loads(path.read_text()) if not r["case"].startswith(case)]
        written += rows
    path.write_text(json.dumps(written, indent=2, default=str))
    return 0 if all(r["met"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
