"""Segment benchmark: full refresh of rules (a), (b), (c) against hand-written INSERT ... SELECT.

    DATABASE_URL=postgres://.../crm_bench python -m bench.bench_segments [--tier M|S|XS] [--reps 3]

(a) spend > 500 in the last 90 days AND country = DE AND email consent granted; (b) at least one
purchase in the last 365 days; (c) (a) minus the members of another segment (income band high).
Each full refresh (from an empty membership) is timed against one hand-written
`INSERT INTO segments_membership ... SELECT` building the same membership, alternately in the same
run; the member sets must be equal or the figure is void. The hand-written statements take the
fastest form measured: the spend of (a) and (c) a join grouped by customer, as the compiler
writes it, not a subquery per customer. Also: a refresh when nothing changed,
the preview count of (a), and a Mautic-style rebuild of (a) (the rule's query run again for every
batch of 300 new members, one INSERT and COMMIT per member, as Mautic's segment rebuild does; see
`mautic_style`) on the first 100k customers and, unless --baseline-100k-only, on all of them.
Writes bench/results/segments.json.

    python -m bench.bench_segments --forms [--tier M]

counts a few rules both ways the compiler can write a windowed total or count (one join grouped by
customer, or a subquery per customer) and writes bench/results/segments-forms.json.
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

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Count, Exists, Max, OuterRef, Q  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.generator import ensure_dataset  # noqa: E402
from customers.models import Customer, Purchase  # noqa: E402
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
    JOIN customers_purchase p ON p.customer_id = c.id
     AND p.purchased_at >= %(since90)s AND p.purchased_at <= %(now)s
    WHERE c.country = 'DE'
      AND EXISTS (SELECT 1 FROM privacy_consentstate s WHERE s.customer_id = c.id
                  AND s.purpose_id = 'email_marketing' AND s.state = 'granted')
      {extra}
    GROUP BY c.id HAVING sum(p.amount) > 500
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


def _scope_last_id() -> int:
    """The id of the last of the first BASELINE_CUSTOMERS customers: the baseline's scope."""
    ids = Customer.objects.order_by("id").values_list("id", flat=True)
    return ids[BASELINE_CUSTOMERS - 1] if ids.count() > BASELINE_CUSTOMERS else ids.last()


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


def mautic_style(now: dt.datetime, segment: Segment, scope_last_id: int) -> tuple[float, int, int]:
    """Rule (a) rebuilt the way Mautic rebuilds a segment; returns seconds, customers in scope
    and the number of batches.

    Mautic's `mautic:segments:update` (ListModel::rebuildListLeads, default --batch-limit 300)
    compiles all of a segment's filters into one SQL query (ContactSegmentQueryBuilder), counts
    the contacts that match and are not yet members (and the highest id, so later batches stay
    within it), then fetches them 300 at a time: each batch runs the whole filter query again
    with `NOT EXISTS` membership, `id <= maxId`, `date_added <= start` and `LIMIT 300`. Each
    contact of a batch is added on its own (ListModel::addLead with its own Doctrine flush, so
    one INSERT and one COMMIT per contact). Leavers go the same way: count the members that no
    longer match, fetch 300 at a time, remove each on its own. A final count updates the size.

    Here the filter query is the project's compiled rule (so both sides evaluate the rule with
    the same SQL), and each membership row carries the same join bookkeeping as the project's
    refresh (since and run; a leaver is logged with the join it ends). Left out, so that the
    baseline is if anything faster than Mautic: the pause before each batch (batchSleep,
    batch_sleep_time 1 s by default; the row reports the batches, so a reader can add it), the
    segment count cache updated per contact, the batch events, and the Doctrine/PHP overhead
    per entity.

    The batches run with `enable_material = off`. Otherwise PostgreSQL, whose statistics of the
    membership lag behind it as it grows, tests "not yet a member" by scanning a materialised
    copy of all members for every candidate, which made the baseline four times slower at 1M
    customers (99 s instead of 26 s): the baseline gets the plan MySQL would use for Mautic's
    NOT EXISTS, one index probe per candidate.
    """
    _clear(segment)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE segments_membership")
        cursor.execute("SET enable_material = off")
    try:
        return _mautic_style(now, segment, scope_last_id)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET enable_material")


def _mautic_style(now: dt.datetime, segment: Segment, scope_last_id: int) -> tuple[float, int, int]:
    start = time.perf_counter()
    at = timezone.now()
    run = RefreshRun.objects.create(
        segment=segment, trigger=RefreshRun.Trigger.COMMAND, status=RefreshRun.Status.RUNNING
    )
    scope = compile_rule(RULE_A, now=now).filter(pk__lte=scope_last_id)
    is_member = Membership.objects.filter(segment=segment, customer_id=OuterRef("pk"))
    new = scope.filter(~Exists(is_member)).filter(Q(created_at__lte=at) | Q(created_at=None))
    todo = new.aggregate(count=Count("pk"), max_id=Max("pk"))
    joined = batches = 0
    while joined < todo["count"]:
        batch = list(
            new.filter(pk__lte=todo["max_id"]).order_by().values_list("pk", flat=True)[:BATCH]
        )
        batches += 1
        if not batch:
            break
        for customer_id in batch:
            Membership.objects.create(segment=segment, customer_id=customer_id, since=at, run=run)
        joined += len(batch)
    orphans = Membership.objects.filter(segment=segment).exclude(customer_id__in=scope.values("pk"))
    orphan_count = orphans.count()
    left = 0
    while left < orphan_count:
        batch = list(orphans.values_list("customer_id", "since", "run_id")[:BATCH])
        batches += 1
        if not batch:
            break
        for customer_id, since, joined_in in batch:
            with transaction.atomic():
                MembershipChange.objects.bulk_create(
                    [
                        MembershipChange(
                            segment=segment,
                            customer_id=customer_id,
                            run_id=joined_in,
                            change="joined",
                            at=since,
                        ),
                        MembershipChange(
                            segment=segment, customer_id=customer_id, run=run, change="left", at=at
                        ),
                    ]
                )
                Membership.objects.filter(segment=segment, customer_id=customer_id).delete()
        left += len(batch)
    size = Membership.objects.filter(segment=segment).count()
    RefreshRun.objects.filter(pk=run.pk).update(
        status=RefreshRun.Status.DONE, size=size, joined=joined, left=left
    )
    Segment.objects.filter(pk=segment.pk).update(member_count=size)
    elapsed = time.perf_counter() - start
    return elapsed, Customer.objects.filter(pk__lte=scope_last_id).count(), batches


def _baseline_rows(
    name: str,
    tier: str,
    ours: float,
    preview: float,
    now: dt.datetime,
    rule: dict,
    members: set[int],
    full: bool,
) -> list[dict]:
    """The batch-of-300 baseline on the first BASELINE_CUSTOMERS customers, as the issue asks,
    and (with `full`) on all of them: its cost grows faster than the number of customers (each
    batch runs the rule again over all of them), so a linear extrapolation from 100k understates
    it; the row at full size is measured, the other is scaled linearly and labelled so.

    Each row also gives the baseline against the preview count of the same rule on the same
    data (`count_speedup`): no refresh can be faster than counting its members, so that is the
    most any refresh could reach against this baseline."""
    segment = _segment("bench-mautic-style", rule)
    total = Customer.objects.count()
    scopes = [_scope_last_id()]
    if full and total > BASELINE_CUSTOMERS:
        scopes.append(Customer.objects.order_by("-id").values_list("id", flat=True).first())
    rows = []
    for scope_last_id in scopes:
        statements = [0]

        def counted(execute, sql, params, many, context, statements=statements):
            statements[0] += 1
            return execute(sql, params, many, context)

        with connection.execute_wrapper(counted):
            measured, evaluated, batches = mautic_style(now, segment, scope_last_id)
        if _members(segment) != {c for c in members if c <= scope_last_id}:
            raise SystemExit(f"VOID: {name}: the baseline built another membership")
        _clear(segment)
        scaled = evaluated < total
        estimated = measured / evaluated * total
        rows.append(
            _row(
                f"batch-of-300 baseline {name}",
                tier,
                ours,
                f"batches of {BATCH} at {evaluated:,} customers"
                + (", scaled linearly to all (understates it)" if scaled else ", measured"),
                estimated,
                "info" if scaled else ">= 50x faster",
                measured_s=round(measured, 2),
                customers=evaluated,
                baseline_sql_statements=statements[0],
                baseline_batches=batches,
                speedup=round(estimated / ours, 1),
                count_speedup=round(estimated / preview, 1),
                **({} if scaled else {"met": estimated / ours >= 50}),
            )
        )
    return rows


def run(tier: str, reps: int, seed: int, full: bool = True) -> list[dict]:
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
                ours_runs=[round(t, 3) for t in ours_t],
                anchor_runs=[round(t, 3) for t in anchor_t],
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
            rows += _baseline_rows(
                name, tier, full_ours, preview, now, rule, _members(anchor_seg), full
            )
        _clear(anchor_seg)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for row in rows:
        row["peak_rss_mb"] = round(peak_mb, 1)
    return rows


def _forms_rules(category: str) -> dict[str, dict]:
    germans = {"field": "country", "op": "eq", "value": "DE"}
    return {
        "(a) spend>500/90d, DE, email consent": RULE_A,
        "spend>2000/365d": {
            "metric": "purchase_total",
            "window": {"last_days": 365},
            "op": "gt",
            "value": 2000,
        },
        "spend 100..200/90d in the top category": {
            "metric": "purchase_total",
            "window": {"last_days": 90},
            "filter": {"category": category},
            "op": "between",
            "value": [100, 200],
        },
        ">=3 purchases/30d, FR": {
            "all": [
                {"metric": "purchase_count", "window": {"last_days": 30}, "op": "gte", "value": 3},
                {"field": "country", "op": "eq", "value": "FR"},
            ]
        },
        ">=2 events/30d": {
            "metric": "event_count",
            "window": {"last_days": 30},
            "op": "gte",
            "value": 2,
        },
        "spend>300/730d, DE": {
            "all": [
                {
                    "metric": "purchase_total",
                    "window": {"last_days": 730},
                    "op": "gt",
                    "value": 300,
                },
                germans,
            ]
        },
    }


def forms(tier: str, reps: int, seed: int) -> list[dict]:
    """Counts of rules whose total or count the compiler evaluates as one join grouped by
    customer, against the same rules with every condition a subquery per customer
    (`compile_rule(joins=False)`): same customers, medians of `reps` after a warm-up."""
    customers, purchases = TIERS[tier]
    ensure_dataset(customers, purchases, seed)
    settings.DEBUG = False
    now = timezone.now()
    top = Purchase.objects.values("category").annotate(n=Count("pk")).order_by("-n").first()
    rows = []
    for name, rule in _forms_rules(top["category"] if top else "").items():
        times = {}
        for joins in (True, False):
            queryset = compile_rule(rule, now=now, joins=joins)
            runs = []
            for _ in range(reps + 1):
                start = time.perf_counter()
                counted = queryset.count()
                runs.append(time.perf_counter() - start)
            times[joins] = (statistics.median(runs[1:]), counted)
        (joined, n), (subqueries, m) = times[True], times[False]
        if n != m:
            raise SystemExit(f"VOID: {name}: the two forms select {n:,} and {m:,} customers")
        rows.append(
            _row(
                f"count {name}",
                tier,
                joined,
                "subquery per customer",
                subqueries,
                "reported",
                members=n,
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", choices=sorted(TIERS), default="M")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--baseline-100k-only",
        action="store_true",
        help="run the batch-of-300 baseline on the first 100k customers only (faster)",
    )
    parser.add_argument(
        "--forms",
        action="store_true",
        help="instead: count rules compiled with a join against subqueries per customer",
    )
    args = parser.parse_args(argv)
    if args.reps < 3:
        parser.error("--reps: at least 3 measured repetitions")
    if args.forms:
        rows = forms(args.tier, args.reps, args.seed)
    else:
        rows = run(args.tier, args.reps, args.seed, full=not args.baseline_100k_only)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(
        f"machine: {os.cpu_count()} cores, {memory:.0f} GiB; "
        f"{TIERS[args.tier][0]:,} customers / {TIERS[args.tier][1]:,} purchases"
    )
    print("case | tier | ours_s | anchor | anchor_s | ratio | target")
    for r in rows:
        ratio = r["ratio"] if r["ratio"] is not None else "-"
        if "speedup" in r:
            ratio = f"{r['speedup']}x faster (the bare count: {r['count_speedup']}x)"
        print(
            f"{r['case']} | {r['tier']} | {r['ours_s']:.3f} | {r['anchor']} | "
            f"{r['anchor_s'] if r['anchor_s'] is not None else '-'} | {ratio} | {r['target']}"
            f"{'' if r.get('met', True) else '  (NOT MET)'}"
        )
    RESULTS.mkdir(exist_ok=True)
    name = "segments-forms.json" if args.forms else "segments.json"
    (RESULTS / name).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
