"""Segment benchmark: full refresh of rules (a), (b), (c) against hand-written INSERT ... SELECT.

    DATABASE_URL=postgres://.../crm_bench python -m bench.bench_segments [--tier M|S|XS] [--reps 3]

(a) spend > 500 in the last 90 days AND country = DE AND email consent granted; (b) at least one
purchase in the last 365 days; (c) (a) minus the members of another segment (income band high).
Each full refresh (from an empty membership) is timed against one hand-written
`INSERT INTO segments_membership ... SELECT` building the same membership, alternately in the same
run; the member sets must be equal or the figure is void. Also: a refresh when nothing changed,
the preview count of (a), and a Mautic-style baseline (customers in batches of 300, ORM queries per
batch) on the first 100k customers. Writes bench/results/segments.json.
"""

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Sum  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.generator import ensure_dataset  # noqa: E402
from customers.models import Customer, Purchase  # noqa: E402
from privacy.models import ConsentState  # noqa: E402
from segments.compiler import compile_rule  # noqa: E402
from segments.models import Membership, MembershipChange, RefreshRun, Segment  # noqa: E402
from segments.services import segment_refresh  # noqa: E402

TIERS = {"XS": (2_000, 40_000), "S": (100_000, 2_000_000), "M": (1_000_000, 10_000_000)}
RESULTS = Path(__file__).resolve().parent / "results"
BASELINE_CUSTOMERS = 100_000
BATCH = 300

RULE_A = {
    "all": [
        {"metric": "purchase_total", "window": {"last_days": 90}, "op": "gt", "value": 500},
        {"field": "country", "op": "eq", "value": "DE"},
        {"consent": "email_marketing", "state": "granted"},
    ]
}
RULE_B = {"metric": "purchase_count", "window": {"last_days": 365}, "op": "gte", "value": 1}
RULE_OTHER = {"field": "income_band", "op": "eq", "value": "high"}

SQL_A = """
    INSERT INTO segments_membership (segment_id, customer_id, since)
    SELECT %(segment)s, c.id, %(now)s FROM customers_customer c
    WHERE c.country = 'DE'
      AND EXISTS (SELECT 1 FROM privacy_consentstate s WHERE s.customer_id = c.id
                  AND s.purpose_id = 'email_marketing' AND s.state = 'granted')
      AND (SELECT sum(p.amount) FROM customers_purchase p WHERE p.customer_id = c.id
           AND p.purchased_at >= %(since90)s AND p.purchased_at <= %(now)s) > 500
      {extra}
"""
SQL_B = """
    INSERT INTO segments_membership (segment_id, customer_id, since)
    SELECT %(segment)s, c.id, %(now)s FROM customers_customer c
    WHERE EXISTS (SELECT 1 FROM customers_purchase p WHERE p.customer_id = c.id
                  AND p.purchased_at >= %(since365)s AND p.purchased_at <= %(now)s)
"""
SQL_C_EXTRA = (
    "AND NOT EXISTS (SELECT 1 FROM segments_membership m WHERE m.segment_id = %(other)s "
    "AND m.customer_id = c.id)"
)


def _segment(slug: str, rule: dict) -> Segment:
    segment, _ = Segment.objects.update_or_create(
        slug=slug, defaults={"name": slug, "kind": Segment.Kind.RULE, "rule": rule}
    )
    return segment


def _clear(segment: Segment) -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM segments_membershipchange WHERE segment_id = %s", [segment.pk])
        cursor.execute("DELETE FROM segments_membership WHERE segment_id = %s", [segment.pk])
    RefreshRun.objects.filter(segment=segment).delete()


def _members(segment: Segment) -> set[int]:
    return set(Membership.objects.filter(segment=segment).values_list("customer_id", flat=True))


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _row(case, tier, ours, anchor_name, anchor, target, **extra) -> dict:
    return {
        "case": case,
        "tier": tier,
        "ours_s": round(ours, 4),
        "anchor": anchor_name,
        "anchor_s": round(anchor, 4) if anchor is not None else None,
        "ratio": round(ours / anchor, 2) if anchor else None,
        "target": target,
        **extra,
    }


def mautic_style(now: dt.datetime, segment: Segment) -> tuple[float, int]:
    """Rule (a) the way batch-evaluating tools do it: 300 customers at a time, ORM per batch."""
    _clear(segment)
    ids = list(Customer.objects.order_by("id").values_list("id", flat=True)[:BASELINE_CUSTOMERS])
    since = now - dt.timedelta(days=90)
    start = time.perf_counter()
    added = 0
    for i in range(0, len(ids), BATCH):
        batch = ids[i : i + BATCH]
        german = set(
            Customer.objects.filter(pk__in=batch, country="DE").values_list("pk", flat=True)
        )
        consenting = set(
            ConsentState.objects.filter(
                customer_id__in=german, purpose_id="email_marketing", state="granted"
            ).values_list("customer_id", flat=True)
        )
        spend = dict(
            Purchase.objects.filter(
                customer_id__in=consenting, purchased_at__gte=since, purchased_at__lte=now
            )
            .values("customer_id")
            .annotate(total=Sum("amount"))
            .values_list("customer_id", "total")
        )
        members = [c for c in consenting if spend.get(c, Decimal(0)) > 500]
        Membership.objects.bulk_create(
            [Membership(segment=segment, customer_id=c, since=now) for c in members]
        )
        added += len(members)
    return time.perf_counter() - start, len(ids)


def run(tier: str, reps: int, seed: int) -> list[dict]:
    customers, purchases = TIERS[tier]
    ensure_dataset(customers, purchases, seed)
    settings.DEBUG = False
    now = timezone.now()
    params = {
        "now": now,
        "since90": now - dt.timedelta(days=90),
        "since365": now - dt.timedelta(days=365),
    }
    other = _segment("bench-other-high-income", RULE_OTHER)
    segment_refresh(segment=other, now=now)
    rule_c = {"all": [RULE_A, {"not": {"segment": other.pk}}]}
    cases = [
        ("(a) spend>500/90d, DE, email consent", RULE_A, SQL_A.format(extra="")),
        ("(b) a purchase in 365 days", RULE_B, SQL_B),
        ("(c) (a) minus another segment", rule_c, SQL_A.format(extra=SQL_C_EXTRA)),
    ]
    rows = []
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE segments_membership")
    for name, rule, sql in cases:
        ours_seg = _segment(f"bench-ours-{len(rows)}", rule)
        anchor_seg = _segment(f"bench-anchor-{len(rows)}", rule)
        args = {**params, "segment": anchor_seg.pk, "other": other.pk}

        def anchor(args=args, sql=sql):
            with connection.cursor() as cursor:
                cursor.execute(sql, args)

        def ours(seg=ours_seg):
            segment_refresh(segment=seg, now=now)

        ours_t, anchor_t = [], []
        for rep in range(reps + 1):  # the first round warms caches and is not counted
            _clear(anchor_seg)
            a = _timed(anchor)
            _clear(ours_seg)
            with CaptureQueriesContext(connection) as queries:
                o = _timed(ours)
            if rep:
                anchor_t.append(a)
                ours_t.append(o)
        if _members(ours_seg) != _members(anchor_seg):
            raise SystemExit(f"VOID: {name}: the refresh built another membership than the anchor")
        size = Membership.objects.filter(segment=ours_seg).count()
        statements = len(queries.captured_queries)
        full_ours, full_anchor = statistics.median(ours_t), statistics.median(anchor_t)
        rows.append(
            _row(
                f"full refresh {name}",
                tier,
                full_ours,
                "INSERT ... SELECT",
                full_anchor,
                "<= 1.5x anchor",
                members=size,
                sql_statements=statements,
                met=full_ours <= 1.5 * full_anchor,
            )
        )
        nochange = statistics.median(_timed(ours) for _ in range(reps))
        run_ = RefreshRun.objects.filter(segment=ours_seg).order_by("-id").first()
        assert run_.joined == 0 and run_.left == 0
        rows.append(
            _row(
                f"no-change refresh {name}",
                tier,
                nochange,
                "INSERT ... SELECT",
                full_anchor,
                "reported",
                members=size,
            )
        )
        if rule is RULE_A:
            count_t = []
            for _ in range(reps + 1):
                start = time.perf_counter()
                counted = compile_rule(rule, now=now).count()
                count_t.append(time.perf_counter() - start)
            assert counted == size
            preview = statistics.median(count_t[1:])
            rows.append(
                _row(f"preview count {name}", tier, preview, "-", None, "< 1 s", met=preview < 1.0)
            )
            baseline_seg = _segment("bench-mautic-style", rule)
            baseline_t, evaluated = mautic_style(now, baseline_seg)
            per_customer = baseline_t / evaluated
            estimated = per_customer * Customer.objects.count()
            rows.append(
                _row(
                    f"batch-of-300 baseline {name}",
                    tier,
                    full_ours,
                    f"batches of {BATCH} at {evaluated:,} customers, scaled to all",
                    estimated,
                    ">= 50x faster",
                    measured_s=round(baseline_t, 2),
                    speedup=round(estimated / full_ours, 1),
                    met=estimated / full_ours >= 50,
                )
            )
            _clear(baseline_seg)
        _clear(anchor_seg)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for row in rows:
        row["peak_rss_mb"] = round(peak_mb, 1)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", choices=sorted(TIERS), default="M")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.reps < 3:
        parser.error("--reps: at least 3 measured repetitions")
    rows = run(args.tier, args.reps, args.seed)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(
        f"machine: {os.cpu_count()} cores, {memory:.0f} GiB; "
        f"{TIERS[args.tier][0]:,} customers / {TIERS[args.tier][1]:,} purchases"
    )
    print("case | tier | ours_s | anchor | anchor_s | ratio | target")
    for r in rows:
        ratio = r["ratio"] if r["ratio"] is not None else "-"
        if "speedup" in r:
            ratio = f"{r['speedup']}x faster"
        print(
            f"{r['case']} | {r['tier']} | {r['ours_s']:.3f} | {r['anchor']} | "
            f"{r['anchor_s'] if r['anchor_s'] is not None else '-'} | {ratio} | {r['target']}"
            f"{'' if r.get('met', True) else '  (NOT MET)'}"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "segments.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
