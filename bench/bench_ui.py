"""UI benchmark: render times of the customer list and the customer page at tier M.

    DATABASE_URL=postgres://.../crm_bench python -m bench.bench_ui [--tier M|S|XS] [--reps 5]

Pages are rendered in-process through Django's test Client (URL routing, middleware, session,
view, queries and template), signed in as a demo salesperson (who owns a tenth of the customers)
and as an admin (who sees all of them). Each case is timed against its anchor, the hand-written
SQL statement that fetches the same rows, alternately in the same run; the rows shown must equal
the anchor's or the figure is void. Also reports the SQL statements per page and peak memory.
Writes bench/results/ui.json.
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
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, reset_queries  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from bench.generator import ensure_dataset  # noqa: E402
from customers.views.pagination import cursor_encode  # noqa: E402

TIERS = {"XS": (2_000, 40_000), "S": (100_000, 2_000_000), "M": (1_000_000, 10_000_000)}
RESULTS = Path(__file__).resolve().parent / "results"
TARGET_S = 0.300
DEEP_OFFSET = 20_000  # rows before the admin's deep page: page 401 of 50
SALES_DEEP_OFFSET = 5_000  # a salesperson has ~10k customers in one country: page 101


def _sql(query: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


class Case:
    """A page and its anchor query; `rows` gives the ids the page showed, for the check."""

    def __init__(self, name: str, client: Client, url: str, anchor_sql: str, params: list, rows):
        self.name, self.client, self.url = name, client, url
        self.anchor_sql, self.params, self.rows = anchor_sql, params, rows

    def ours(self):
        response = self.client.get(self.url)
        if response.status_code != 200:
            raise RuntimeError(f"{self.name}: {self.url} answered {response.status_code}")
        return self.rows(response)

    def anchor(self):
        return [r[0] for r in _sql(self.anchor_sql, self.params)]


def _list_rows(response) -> list[int]:
    return [int(pk) for pk in re.findall(rb'<tr data-customer="(\d+)"', response.content)]


def _purchase_rows(response) -> list[int]:
    return [int(pk) for pk in re.findall(rb'<tr data-purchase="(\d+)"', response.content)]


def build_cases(sales, admin) -> list[Case]:
    sales_client, admin_client = Client(), Client()
    sales_client.force_login(sales)
    admin_client.force_login(admin)
    cases = []

    # A salesperson's customers in one country by lifetime value: first page and 400 pages in.
    base = (
        "SELECT id, lifetime_value FROM customers_customer WHERE owner_id = %s AND country = %s "
        "ORDER BY lifetime_value DESC, id DESC"
    )
    cases.append(
        Case(
            "list sales DE by LTV, first page",
            sales_client,
            "/customers/?country=DE&sort=-lifetime_value",
            base + " LIMIT 50",
            [sales.pk, "DE"],
            _list_rows,
        )
    )
    cid, ltv = _sql(base + " OFFSET %s LIMIT 1", [sales.pk, "DE", SALES_DEEP_OFFSET - 1])[0]
    cursor = cursor_encode([ltv, cid])
    cases.append(
        Case(
            "list sales DE by LTV, page 101",
            sales_client,
            f"/customers/?country=DE&sort=-lifetime_value&after={cursor}",
            "SELECT id FROM customers_customer WHERE owner_id = %s AND country = %s "
            "AND (lifetime_value, id) < (%s, %s) ORDER BY lifetime_value DESC, id DESC LIMIT 50",
            [sales.pk, "DE", ltv, cid],
            _list_rows,
        )
    )

    # Everyone's customers with email consent, by last purchase (admin view): first and deep page.
    base = (
        "SELECT c.id, c.last_purchase_at FROM customers_customer c JOIN privacy_consentstate s "
        "ON s.customer_id = c.id AND s.purpose_id = 'email_marketing' AND s.state = 'granted' "
        "WHERE c.last_purchase_at IS NOT NULL ORDER BY c.last_purchase_at DESC, c.id DESC"
    )
    cases.append(
        Case(
            "list all, email consent, by last purchase, first page",
            admin_client,
            "/customers/?consent=email_marketing&sort=-last_purchase_at",
            base + " LIMIT 50",
            [],
            _list_rows,
        )
    )
    cid, at = _sql(base + " OFFSET %s LIMIT 1", [DEEP_OFFSET - 1])[0]
    cursor = cursor_encode([at, cid])
    cases.append(
        Case(
            "list all, email consent, by last purchase, page 401",
            admin_client,
            f"/customers/?consent=email_marketing&sort=-last_purchase_at&after={cursor}",
            "SELECT c.id FROM customers_customer c JOIN privacy_consentstate s "
            "ON s.customer_id = c.id AND s.purpose_id = 'email_marketing' AND s.state = 'granted' "
            "WHERE (c.last_purchase_at, c.id) < (%s, %s) "
            "ORDER BY c.last_purchase_at DESC, c.id DESC LIMIT 50",
            [at, cid],
            _list_rows,
        )
    )
    # A search as typed, sorted by name (admin sees all): the same prefix conditions in SQL, each
    # read in name order up to a page and merged.
    cases.append(
        Case(
            "list all, search 'Schm', by name",
            admin_client,
            "/customers/?q=Schm&sort=name",
            "SELECT id FROM customers_customer WHERE id IN ("
            + " UNION ".join(
                f"(SELECT id FROM customers_customer WHERE {cond} "
                "ORDER BY last_name, first_name, id LIMIT 50)"
                for cond in (
                    "last_name >= 'Schm' AND last_name < 'Schn' AND last_name LIKE 'Schm%%'",
                    "last_name >= 'schm' AND last_name < 'schn' AND last_name LIKE 'schm%%'",
                    "last_name >= 'SCHM' AND last_name < 'SCHN' AND last_name LIKE 'SCHM%%'",
                    "lower(email) >= 'schm' AND lower(email) < 'schn' "
                    "AND lower(email) LIKE 'schm%%'",
                    "external_id = 'Schm'",
                )
            )
            + ") ORDER BY last_name, first_name, id LIMIT 50",
            [],
            _list_rows,
        )
    )

    # The customer page of the salesperson's customer with the most purchases.
    busiest = _sql(
        "SELECT id, purchase_count FROM customers_customer WHERE owner_id = %s "
        "ORDER BY purchase_count DESC, id LIMIT 1",
        [sales.pk],
    )[0]
    cases.append(
        Case(
            f"customer page ({busiest[1]} purchases)",
            sales_client,
            f"/customers/{busiest[0]}/",
            "SELECT id FROM customers_purchase WHERE customer_id = %s "
            "ORDER BY purchased_at DESC, id DESC LIMIT 10",
            [busiest[0]],
            _purchase_rows,
        )
    )
    return cases


def run(tier: str, reps: int, seed: int) -> list[dict]:
    customers, purchases = TIERS[tier]
    ensure_dataset(customers, purchases, seed)
    settings.DEBUG = False
    users = get_user_model().objects
    sales = users.get(username="sales")
    admin = users.filter(is_superuser=True).order_by("pk").first()
    rows = []
    for case in build_cases(sales, admin):
        case.ours()  # warm-up: caches, connection, templates
        case.anchor()
        ours_t, anchor_t = [], []
        with CaptureQueriesContext(connection) as queries:
            shown = case.ours()
        statements = len(queries.captured_queries)
        for _ in range(reps):
            t, shown = _timed(case.ours)
            ours_t.append(t)
            t, expected = _timed(case.anchor)
            anchor_t.append(t)
        reset_queries()
        if shown != expected:
            raise SystemExit(f"VOID: {case.name}: the page showed other rows than the anchor")
        ours, anchor = statistics.median(ours_t), statistics.median(anchor_t)
        rows.append(
            {
                "case": case.name,
                "tier": tier,
                "ours_s": round(ours, 4),
                "anchor": "hand-written SQL, same rows",
                "anchor_s": round(anchor, 4),
                "ratio": round(ours / anchor, 1) if anchor else None,
                "target": f"< {TARGET_S:.3f} s",
                "met": ours < TARGET_S,
                "sql_statements": statements,
                "rows": len(shown),
                "reps": reps,
            }
        )
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
    rows = run(args.tier, args.reps, args.seed)
    print(
        f"machine: {os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB; "
        f"{TIERS[args.tier][0]:,} customers / {TIERS[args.tier][1]:,} purchases"
    )
    print("case | tier | ours_s | anchor | anchor_s | ratio | target | SQL statements")
    for r in rows:
        print(
            f"{r['case']} | {r['tier']} | {r['ours_s']:.4f} | {r['anchor']} | {r['anchor_s']:.4f} | "
            f"{r['ratio']} | {r['target']}{'' if r['met'] else ' MISSED'} | {r['sql_statements']}"
        )
    print(f"peak memory: {rows[0]['peak_rss_mb']} MB")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ui.json").write_text(json.dumps(rows, indent=2))
    return 0 if all(r["met"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
