"""Segment edit page benchmark: the live count (how many match, who would join, who would leave).

    DATABASE_URL=postgres://.../crm_bench python -m bench.bench_segment_edit [--tier M|S|XS]
        [--reps 5]

The edit page asks `POST /api/segments/preview/` with the rule being edited and the segment's
id each time the rule changes. Each case saves and refreshes a segment with one rule, then times
that request for an edited rule through Django's test Client, signed in as the demo marketer
(routing, middleware, session, permission, rule validation, the counts, the three samples of 10
customers, JSON), against the hand-written SQL that gives the same three numbers, alternately
(A B B A A B ...). The ratio is the median of the paired ratios, with their spread; the target is
the issue's: the answer in under 1 s at the median (a `met` column says whether it is). The three
numbers must equal the anchor's or the figure is void.

The anchor is the faster of two hand-written forms, picked on the warm-up round and named in the
row: one statement that evaluates the rule once and FULL JOINs it with the saved members, or the
rule evaluated into a temporary table, analysed, and three counts (the rule, the rule without
the members, the members without the rule). Rules are written by hand in the fastest form
`bench_segments` found: a windowed total as a join grouped by customer.

Cases: (a) spend > 500 in 90 days, DE, email consent, edited to spend > 400 in 60 days (members
join and leave); (b) a purchase in 365 days (most customers) edited to 180 days (many leave);
and the new-segment page's count of (a) (no saved members). Also reported: the SQL statements
of one request (they must not grow with the data), peak memory, and the 1-minute load average
at start and end. Writes bench/results/segment-edit.json.
"""

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
os.environ.setdefault("AXES_ENABLED", "false")
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.generator import ensure_dataset  # noqa: E402
from segments.models import Segment  # noqa: E402
from segments.services import segment_refresh  # noqa: E402

TIERS = {"XS": (2_000, 40_000), "S": (100_000, 2_000_000), "M": (1_000_000, 10_000_000)}
RESULTS = Path(__file__).resolve().parent / "results"
TARGET_S = 1.0


def _spend(days: int, amount: int) -> dict:
    return {
        "all": [
            {
                "metric": "purchase_total",
                "window": {"last_days": days},
                "op": "gt",
                "value": amount,
            },
            {"field": "country", "op": "eq", "value": "DE"},
            {"consent": "email_marketing", "state": "granted"},
        ]
    }


def _bought(days: int) -> dict:
    return {"metric": "purchase_count", "window": {"last_days": days}, "op": "gte", "value": 1}


SQL_SPEND = """
    SELECT c.id FROM customers_customer c
    JOIN customers_purchase p ON p.customer_id = c.id
     AND p.purchased_at >= %(since)s AND p.purchased_at <= %(now)s
    WHERE c.erased_at IS NULL AND c.country = 'DE'
      AND EXISTS (SELECT 1 FROM privacy_consentstate s WHERE s.customer_id = c.id
                  AND s.purpose_id = 'email_marketing' AND s.state = 'granted')
    GROUP BY c.id HAVING sum(p.amount) > %(amount)s
"""
SQL_BOUGHT = """
    SELECT c.id FROM customers_customer c
    WHERE c.erased_at IS NULL
      AND EXISTS (SELECT 1 FROM customers_purchase p WHERE p.customer_id = c.id
                  AND p.purchased_at >= %(since)s AND p.purchased_at <= %(now)s)
"""
FULL_JOIN = """
    SELECT count(w.id), count(*) FILTER (WHERE m.customer_id IS NULL),
           count(*) FILTER (WHERE w.id IS NULL)
    FROM ({rule}) w
    FULL JOIN (SELECT customer_id FROM segments_membership WHERE segment_id = %(segment)s) m
      ON m.customer_id = w.id
"""
TEMP_TABLE = [
    "CREATE TEMPORARY TABLE bench_wanted ON COMMIT DROP AS {rule}",
    "ANALYZE bench_wanted",
    "SELECT (SELECT count(*) FROM bench_wanted),"
    " (SELECT count(*) FROM bench_wanted w WHERE NOT EXISTS (SELECT 1 FROM segments_membership m"
    "   WHERE m.segment_id = %(segment)s AND m.customer_id = w.id)),"
    " (SELECT count(*) FROM segments_membership m WHERE m.segment_id = %(segment)s"
    "   AND NOT EXISTS (SELECT 1 FROM bench_wanted w WHERE w.id = m.customer_id))",
]
COUNT_ONLY = "SELECT count(*), NULL, NULL FROM ({rule}) w"


def _anchor_forms(rule_sql: str, with_segment: bool) -> dict[str, list[str]]:
    if not with_segment:
        return {"SELECT count(*) FROM (rule)": [COUNT_ONLY.format(rule=rule_sql)]}
    return {
        "one statement: rule FULL JOIN members": [FULL_JOIN.format(rule=rule_sql)],
        "temp table of the rule, ANALYZE, three counts": [
            s.format(rule=rule_sql) for s in TEMP_TABLE
        ],
    }


def _anchor(statements: list[str], params: dict) -> tuple:
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement, params)
        return tuple(cursor.fetchone())


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


class Case:
    def __init__(self, name, saved_rule, edited_rule, rule_sql, params, with_segment=True):
        self.name, self.saved_rule, self.edited_rule = name, saved_rule, edited_rule
        self.rule_sql, self.params, self.with_segment = rule_sql, params, with_segment


def _cases(now: dt.datetime) -> list[Case]:
    def since(days: int) -> dt.datetime:
        return now - dt.timedelta(days=days)

    return [
        Case(
            "(a) spend>500/90d, DE, email consent -> spend>400/60d",
            _spend(90, 500),
            _spend(60, 400),
            SQL_SPEND,
            {"now": now, "since": since(60), "amount": 400},
        ),
        Case(
            "(b) a purchase in 365 days -> in 180 days",
            _bought(365),
            _bought(180),
            SQL_BOUGHT,
            {"now": now, "since": since(180)},
        ),
        Case(
            "new segment page: count of (a)",
            None,
            _spend(90, 500),
            SQL_SPEND,
            {"now": now, "since": since(90), "amount": 500},
            with_segment=False,
        ),
    ]


def _segment(slug: str, rule: dict, now: dt.datetime) -> Segment:
    segment, _ = Segment.objects.update_or_create(
        slug=slug, defaults={"name": slug, "kind": Segment.Kind.RULE, "rule": rule}
    )
    segment_refresh(segment=segment, now=now)
    return segment


def run_case(case: Case, client: Client, tier: str, reps: int, now: dt.datetime) -> dict:
    body: dict = {"rule": case.edited_rule}
    params = dict(case.params)
    if case.with_segment:
        segment = _segment(f"bench-edit-{case.name[:3].strip('() ')}", case.saved_rule, now)
        body["segment"] = segment.pk
        params["segment"] = segment.pk
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE segments_membership")
    payload = json.dumps(body)

    def ours():
        response = client.post(
            "/api/segments/preview/", data=payload, content_type="application/json"
        )
        if response.status_code != 200:
            raise SystemExit(f"{case.name}: the preview answered {response.status_code}")
        data = response.json()
        return data["count"], data["would_join"], data["would_leave"]

    # Warm-up: every form once; the faster hand-written form is the anchor.
    forms = _anchor_forms(case.rule_sql, case.with_segment)
    warm = {name: _timed(lambda s=form: _anchor(s, params)) for name, form in forms.items()}
    anchor_name = min(warm, key=lambda name: warm[name][0])
    statements = forms[anchor_name]
    statements_issued = [0]

    def counted(execute, sql, params, many, context):
        statements_issued[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counted):  # the test Client resets connection.queries
        _, answer = _timed(ours)
    expected = warm[anchor_name][1]
    ours_t, anchor_t = [], []
    for rep in range(reps):
        order = (True, False) if rep % 2 == 0 else (False, True)  # A B, B A, A B, ...
        for anchor_first in order:
            if anchor_first:
                seconds, got = _timed(lambda: _anchor(statements, params))
                anchor_t.append(seconds)
                expected = got
            else:
                seconds, answer = _timed(ours)
                ours_t.append(seconds)
        if tuple(answer) != tuple(expected):
            raise SystemExit(f"VOID: {case.name}: ours answered {answer}, the anchor {expected}")
    ratios = [o / a for o, a in zip(ours_t, anchor_t, strict=True)]
    median = statistics.median(ours_t)
    return {
        "case": case.name,
        "tier": tier,
        "ours_s": round(median, 4),
        "anchor": anchor_name,
        "anchor_s": round(statistics.median(anchor_t), 4),
        "ratio": round(statistics.median(ratios), 2),
        "spread": [round(min(ratios), 2), round(max(ratios), 2)],
        "target": "median < 1 s",
        "met": median < TARGET_S,
        "count": answer[0],
        "would_join": answer[1],
        "would_leave": answer[2],
        "sql_statements": statements_issued[0],
        "warm_up_anchor_forms_s": {name: round(t, 4) for name, (t, _) in warm.items()},
        "ours_runs": [round(t, 4) for t in ours_t],
        "anchor_runs": [round(t, 4) for t in anchor_t],
    }


def run(tier: str, reps: int, seed: int) -> list[dict]:
    customers, purchases = TIERS[tier]
    ensure_dataset(customers, purchases, seed)
    settings.DEBUG = False
    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    now = timezone.now()
    client = Client()
    client.force_login(get_user_model().objects.get(username="marketing"))
    # The rules' windows end "now": the page and the anchor count at the same moment, or a
    # purchase crossing a window's edge during the run would change one answer and not the other.
    with mock.patch("django.utils.timezone.now", return_value=now):
        rows = [run_case(case, client, tier, reps, now) for case in _cases(now)]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for row in rows:
        row["peak_rss_mb"] = round(peak_mb, 1)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", choices=sorted(TIERS), default="M")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.reps < 3:
        parser.error("--reps: at least 3 measured repetitions")
    load_start = os.getloadavg()[0]
    rows = run(args.tier, args.reps, args.seed)
    load_end = os.getloadavg()[0]
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    customers, purchases = TIERS[args.tier]
    print(
        f"machine: {os.cpu_count()} cores, {memory:.0f} GiB; {customers:,} customers / "
        f"{purchases:,} purchases; load average (1 min) {load_start:.2f} at start, "
        f"{load_end:.2f} at end"
    )
    print("case | tier | ours_s | anchor | anchor_s | ratio (spread) | target | met")
    for r in rows:
        low, high = r["spread"]
        print(
            f"{r['case']} | {r['tier']} | {r['ours_s']:.3f} | {r['anchor']} | "
            f"{r['anchor_s']:.3f} | {r['ratio']} ({low}-{high}) | {r['target']} | "
            f"{'yes' if r['met'] else 'NO'}"
        )
    for r in rows:
        print(
            f"  {r['case']}: {r['count']:,} match, would join {r['would_join']}, would leave "
            f"{r['would_leave']}; {r['sql_statements']} SQL statements per request; "
            f"anchor forms on the warm-up {r['warm_up_anchor_forms_s']}; "
            f"peak memory {r['peak_rss_mb']} MB"
        )
    for r in rows:
        r["load_average_1min"] = [round(load_start, 2), round(load_end, 2)]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "segment-edit.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
