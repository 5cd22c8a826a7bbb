"""Deals benchmark: the board, the deal list and a bulk action at tier M (1M customers, 200k deals).

    DATABASE_URL=postgres://.../crm_bench_deals python -m bench.bench_deals [--tier M|S|XS] [--reps 5]

Pages are rendered in-process through Django's test Client (routing, middleware, session, view,
queries and template), signed in as an administrator (who sees every deal) and as a demo
salesperson (who owns about a tenth of them). Each page is timed against its anchor, the
hand-written SQL that fetches what the page shows (the column totals and cards of the board; the
count, sums and first page of the list), alternately in the same run (A, B, B, A, ...); the deals
the page shows must be the anchor's, in the same order, or the figure is void.

The bulk action gives every deal of at least a median amount (about 100k deals) a new owner as a
BulkJob, from the request's checks and count to the task's last batch (the task runs eagerly in
this process), against one hand-written UPDATE of the same rows;
owners alternate so every run changes every row, and the numbers changed must agree.

Prints `case | tier | ours_s | anchor | anchor_s | ratio (spread) | target | met`, the SQL
statements per case, peak memory and the load average; writes bench/results/deals.json.
"""

import argparse
import json
import os
import re
import resource
import statistics
import sys
import time
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
os.environ.setdefault("AXES_ENABLED", "false")
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"  # the job's task runs in this process, timed
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, reset_queries  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from bench.generator import ensure_dataset  # noqa: E402

# customers, purchases, deals
TIERS = {
    "XS": (2_000, 20_000, 1_000),
    "S": (100_000, 2_000_000, 20_000),
    "M": (1_000_000, 10_000_000, 200_000),
}
RESULTS = Path(__file__).resolve().parent / "results"
PAGE_TARGET_S = 0.300
BULK_TARGET_RATIO = 3.0  # the job (checks, batches, progress) against one bare UPDATE
# The bulk case runs at most 3 paired repetitions: each reassigns 100k deals.
CARDS = 50
PAGE = 50


def _sql(query: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def _load() -> float:
    return os.getloadavg()[0]


def _deal_ids(response) -> list[int]:
    return [int(pk) for pk in re.findall(rb'data-deal="(\d+)"', response.content)]


class PageCase:
    def __init__(self, name: str, client: Client, url: str, anchor) -> None:
        self.name, self.client, self.url, self.anchor = name, client, url, anchor

    def ours(self) -> list[int]:
        response = self.client.get(self.url)
        if response.status_code != 200:
            raise RuntimeError(f"{self.name}: {self.url} answered {response.status_code}")
        return _deal_ids(response)


def _board_anchor(pipeline_id: int, owner_id: int | None):
    """The column totals (one grouped statement) and each column's first cards (one LATERAL
    statement), the fastest form found: a scan of the pipeline's deals grouped by stage, then an
    index range per stage on (stage, expected_close_date)."""
    owner = "AND d.owner_id = %s" if owner_id else ""
    extra = [owner_id] if owner_id else []

    def anchor() -> list[int]:
        _sql(
            "SELECT d.stage_id, count(*), sum(d.amount), "
            "sum(d.amount * coalesce(d.probability, s.probability) / 100.0) "
            "FROM deals_deal d JOIN deals_stage s ON s.id = d.stage_id "
            f"WHERE d.pipeline_id = %s {owner} GROUP BY d.stage_id",
            [pipeline_id, *extra],
        )
        rows = _sql(
            "SELECT c.id FROM deals_stage s CROSS JOIN LATERAL ("
            "  SELECT d.id FROM deals_deal d WHERE d.stage_id = s.id AND d.pipeline_id = %s "
            f"  {owner} ORDER BY d.expected_close_date NULLS LAST, d.id LIMIT {CARDS}) c "
            "WHERE s.pipeline_id = %s ORDER BY s.position, s.id",
            [pipeline_id, *extra, pipeline_id],
        )
        return [r[0] for r in rows]

    return anchor


def _list_anchor(owner_id: int | None, order: str):
    """The count, the sums and the first page: two statements (an aggregate over the visible
    deals, and the page in index order)."""
    where = "WHERE d.owner_id = %s" if owner_id else ""
    params = [owner_id] if owner_id else []

    def anchor() -> list[int]:
        _sql(
            "SELECT count(*), sum(d.amount), "
            "sum(d.amount * coalesce(d.probability, s.probability) / 100.0) "
            f"FROM deals_deal d JOIN deals_stage s ON s.id = d.stage_id {where}",
            params,
        )
        rows = _sql(
            f"SELECT d.id FROM deals_deal d {where} ORDER BY {order} LIMIT {PAGE}",
            params,
        )
        return [r[0] for r in rows]

    return anchor


def build_cases(sales, admin, pipeline_id: int) -> list[PageCase]:
    sales_client, admin_client = Client(), Client()
    sales_client.force_login(sales)
    admin_client.force_login(admin)
    return [
        PageCase("board, admin (every deal)", admin_client, "/deals/board/", _board_anchor(pipeline_id, None)),
        PageCase("board, salesperson", sales_client, "/deals/board/", _board_anchor(pipeline_id, sales.pk)),
        PageCase(
            "deal list, admin, newest first",
            admin_client,
            "/deals/",
            _list_anchor(None, "d.created_at DESC, d.id DESC"),
        ),
        PageCase(
            "deal list, admin, by amount (header click)",
            admin_client,
            "/deals/?sort=-amount",
            _list_anchor(None, "d.amount DESC, d.id DESC"),
        ),
        PageCase(
            "deal list, salesperson, newest first",
            sales_client,
            "/deals/",
            _list_anchor(sales.pk, "d.created_at DESC, d.id DESC"),
        ),
    ]  # fmt: skip


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _paired(ours, anchor, reps: int) -> tuple[list[float], list[float], object, object]:
    """Alternate A, B, B, A, A, B, ...; returns both timings and the last results."""
    ours_t, anchor_t = [], []
    shown = expected = None
    for rep in range(reps):
        order = (anchor, ours) if rep % 2 == 0 else (ours, anchor)
        for fn in order:
            t, result = _timed(fn)
            if fn is ours:
                ours_t.append(t)
                shown = result
            else:
                anchor_t.append(t)
                expected = result
    return ours_t, anchor_t, shown, expected


def _row(name, tier, ours_t, anchor_t, anchor, target, met, **extra) -> dict:
    ratios = [o / a for o, a in zip(ours_t, anchor_t, strict=True) if a]
    return {
        "case": name,
        "tier": tier,
        "ours_s": round(statistics.median(ours_t), 4),
        "anchor": anchor,
        "anchor_s": round(statistics.median(anchor_t), 4),
        "ratio": round(statistics.median(ratios), 2),
        "spread": [round(min(ratios), 2), round(max(ratios), 2)],
        "target": target,
        "met": met,
        **extra,
    }


def run_pages(tier: str, reps: int, sales, admin, pipeline_id: int) -> list[dict]:
    rows = []
    for case in build_cases(sales, admin, pipeline_id):
        case.ours()  # warm-up: caches, connection, templates
        case.anchor()
        with CaptureQueriesContext(connection) as queries:
            case.ours()
        statements = len(queries.captured_queries)
        ours_t, anchor_t, shown, expected = _paired(case.ours, case.anchor, reps)
        reset_queries()
        if shown != expected:
            raise SystemExit(f"VOID: {case.name}: the page showed other deals than the anchor")
        median = statistics.median(ours_t)
        rows.append(
            _row(
                case.name,
                tier,
                ours_t,
                anchor_t,
                "hand-written SQL, same deals",
                f"median < {PAGE_TARGET_S:.3f} s",
                median < PAGE_TARGET_S,
                sql_statements=statements,
                deals_shown=len(shown),
            )
        )
    return rows


def run_bulk(tier: str, reps: int, admin, owners: list) -> dict:
    from crm.bulk import bulk_job_create
    from crm.models import BulkJob
    from deals.models import Deal

    median_amount = _sql(
        "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY amount) FROM deals_deal", []
    )[0][0]
    query = {"min_amount": str(median_amount)}
    matched = Deal.objects.filter(amount__gte=median_amount).count()
    turn = {"n": 0}
    progress_seen: list[list[int]] = []

    def next_owner():
        turn["n"] += 1
        return owners[turn["n"] % len(owners)]

    def ours() -> int:
        owner = next_owner()
        job = bulk_job_create(
            actor=admin,
            list_name="deals",
            action="assign_owner",
            query=query,
            params={"owner": owner.pk},
        )
        job.refresh_from_db()  # its task ran once the creation committed
        if job.status != BulkJob.Status.DONE:
            raise SystemExit(f"VOID: bulk job {job.pk} ended {job.status}: {job.message}")
        progress_seen.append([job.progress_done, job.progress_total])
        return job.changed

    def anchor() -> int:
        owner = next_owner()
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE deals_deal SET owner_id = %s, updated_at = now() "
                "WHERE amount >= %s AND owner_id IS DISTINCT FROM %s",
                [owner.pk, median_amount, owner.pk],
            )
            return cursor.rowcount

    with CaptureQueriesContext(connection) as queries:
        ours()
    statements = len(queries.captured_queries)
    anchor()
    ours_t, anchor_t, changed, expected = _paired(ours, anchor, reps)
    if changed != expected or changed != matched:
        raise SystemExit(f"VOID: bulk: ours changed {changed}, the anchor {expected} of {matched}")
    ratios = [o / a for o, a in zip(ours_t, anchor_t, strict=True)]
    return _row(
        f"bulk new owner, {matched:,} deals (job)",
        tier,
        ours_t,
        anchor_t,
        "one UPDATE ... WHERE amount >= median",
        f"ratio < {BULK_TARGET_RATIO}",
        statistics.median(ratios) < BULK_TARGET_RATIO,
        sql_statements=statements,
        deals_changed=changed,
        progress=progress_seen[-1],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", choices=sorted(TIERS), default="M")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-bulk", action="store_true", help="the pages only")
    args = parser.parse_args(argv)
    if args.reps < 3:
        parser.error("--reps: at least 3 measured repetitions")
    customers, purchases, deals = TIERS[args.tier]
    ensure_dataset(customers, purchases, args.seed, deals=deals)
    settings.DEBUG = False
    # A previous run's reassignments leave dead row versions behind (autovacuum clears them in
    # production, in its own time): every run starts from a vacuumed table.
    with connection.cursor() as cursor:
        for table in ("deals_deal", "deals_stagechange", "crm_bulkjob"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    load_start = _load()
    users = get_user_model().objects
    sales = users.get(username="sales")
    admin = users.filter(is_superuser=True).order_by("pk").first()
    owners = list(users.filter(username__in=["sales2", "sales3"]).order_by("username"))
    from deals.selectors import default_pipeline

    pipeline_id = default_pipeline().pk
    rows = run_pages(args.tier, args.reps, sales, admin, pipeline_id)
    if not args.no_bulk:
        rows.append(run_bulk(args.tier, min(args.reps, 3), admin, owners))
    load_end = _load()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for row in rows:
        row["peak_rss_mb"] = round(peak_mb, 1)
        row["load_1min"] = [load_start, load_end]
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(
        f"machine: {os.cpu_count()} cores, {memory:.0f} GiB; {customers:,} customers / "
        f"{purchases:,} purchases / {deals:,} deals; load average (1 min) {load_start:.2f} at "
        f"start, {load_end:.2f} at end; {args.reps} paired repetitions"
    )
    print(
        "case | tier | ours_s | anchor | anchor_s | ratio (spread) | target | met | SQL statements"
    )
    for r in rows:
        print(
            f"{r['case']} | {r['tier']} | {r['ours_s']:.4f} | {r['anchor']} | {r['anchor_s']:.4f} | "
            f"{r['ratio']} ({r['spread'][0]}-{r['spread'][1]}) | {r['target']} | "
            f"{'yes' if r['met'] else 'no'} | {r['sql_statements']}"
        )
    print(f"peak memory: {peak_mb:.0f} MB")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "deals.json").write_text(json.dumps(rows, indent=2, default=str))
    return 0 if all(r["met"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
