"""Import benchmark: our CSV import against PostgreSQL COPY and Django bulk_create, same files.

    DATABASE_URL=postgres://.../crm_bench_import python -m bench.bench_import [--tier S|XS] [--reps 3]

For each case (customers, then purchases) it times, alternately and in the same process: our
import (customers_import / purchases_import on the file), COPY of the same file into an
unindexed table with typed columns (the limit), and Django bulk_create in batches of 2,000 of
the same rows (customers with their tags, as the import writes them). The median of the repetitions is reported; row counts must match or the figure
is void. Writes bench/results/import.json.

One more row per case is for orientation: right after our import, the rows it stored are copied
aside, the table emptied, and the same rows written back with one plain `INSERT INTO <table>
SELECT * FROM <copy>` (its indexes, constraints and foreign keys checked as always; for
customers, their tag links with a second statement). No import
into that table can be faster than that statement, whatever it does before it.
"""

import argparse
import csv
import datetime as dt
import json
import os
import statistics
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
# As deployed: the import queues the real-time membership task on the broker (a worker takes it);
# it does not run inside the import. Its catch-up is timed after each import, as its own row.
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from bench.csvdata import (  # noqa: E402
    customers_csv_write,
    purchases_csv_write,
)
from bench.generator import database_ensure  # noqa: E402
from crm.celery import app as celery_app  # noqa: E402
from customers.importing import customers_import, purchases_import  # noqa: E402
from customers.models import Customer, Purchase, Tag  # noqa: E402
from segments.realtime import memberships_update_run  # noqa: E402

TIERS = {"XS": (2_000, 40_000), "S": (100_000, 2_000_000), "M": (1_000_000, 10_000_000)}
DATA = Path(__file__).resolve().parent / "data"
ANCHOR_NAMES = {
    "copy": "COPY unindexed",
    "bulk_create": "bulk_create(2000)",
    "insert": "INSERT..SELECT indexed",
}
RESULTS = Path(__file__).resolve().parent / "results"


class PeakRss:
    """The peak resident memory of this process while a block runs (sampled every 20 ms)."""

    def __enter__(self) -> "PeakRss":
        self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._rss())

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


class StatementCount:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def tables_reset() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"TRUNCATE {Purchase._meta.db_table}, {Customer._meta.db_table}, "
            f"{Customer.tags.through._meta.db_table} RESTART IDENTITY CASCADE"
        )
        cursor.execute("DROP TABLE IF EXISTS bench_copy_customer, bench_copy_purchase")
        cursor.execute(
            "CREATE TABLE bench_copy_customer (external_id text, email text, first_name text, "
            "last_name text, gender text, birth_date date, country text, city text, language text, "
            "income_band text, tags text, segment text)"
        )
        cursor.execute(
            "CREATE TABLE bench_copy_purchase (customer_external_id text, external_id text, "
            "purchased_at timestamptz, amount numeric(12, 2), currency text, quantity integer, "
            "channel text, product_sku text, category text, promotion_code text)"
        )


def count(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        return cursor.fetchone()[0]


def ours(kind: str, path: Path) -> tuple[float, int, int, int]:
    """Seconds, peak RSS, statements, failed rows of our import of the file."""
    counter = StatementCount()
    with open(path, "rb") as stream, PeakRss() as rss, connection.execute_wrapper(counter):
        started = time.perf_counter()
        importer = customers_import if kind == "customers" else purchases_import
        result = importer(stream=stream, total_bytes=path.stat().st_size)
        seconds = time.perf_counter() - started
    return seconds, rss.peak, counter.count, result.failed


def realtime_catch_up() -> tuple[float, int]:
    """Seconds and customers of the real-time membership work the import queued, run as the
    worker runs it (every rule segment; the benchmark database has none unless you add them)."""
    started = time.perf_counter()
    total = 0
    while True:
        batch = memberships_update_run(budget_seconds=3600)
        total += batch.customers
        if not batch.customers:
            return time.perf_counter() - started, total


def insert_anchor(kind: str) -> tuple[float, int]:
    """Seconds and rows of writing back the rows our import stored, with one INSERT ... SELECT."""
    table = Customer._meta.db_table if kind == "customers" else Purchase._meta.db_table
    # The customers' tag links are rows the import wrote as well.
    links = Customer.tags.through._meta.db_table if kind == "customers" else None
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_insert_rows, bench_insert_links")
        cursor.execute(f"CREATE TABLE bench_insert_rows AS SELECT * FROM {table}")
        if links:
            cursor.execute(f"CREATE TABLE bench_insert_links AS SELECT * FROM {links}")
        cursor.execute(f"TRUNCATE {table} CASCADE")
        started = time.perf_counter()
        cursor.execute(f"INSERT INTO {table} SELECT * FROM bench_insert_rows")  # and commit
        rows = cursor.rowcount
        if links:
            cursor.execute(f"INSERT INTO {links} SELECT * FROM bench_insert_links")
        seconds = time.perf_counter() - started
        cursor.execute("DROP TABLE IF EXISTS bench_insert_rows, bench_insert_links")
    return seconds, rows


def copy_anchor(kind: str, path: Path) -> tuple[float, int]:
    table = "bench_copy_customer" if kind == "customers" else "bench_copy_purchase"
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table}")
    with open(path, "rb") as stream, PeakRss() as rss:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY {table} FROM STDIN (FORMAT csv, HEADER true)") as copy:
                while chunk := stream.read(1 << 20):
                    copy.write(chunk)
        seconds = time.perf_counter() - started
    return seconds, rss.peak


def bulk_create_anchor(kind: str, path: Path) -> tuple[float, int]:
    """What a peer writes without thinking about speed: parse, build models, bulk_create(2000)."""
    with open(path, encoding="utf-8-sig", newline="") as f, PeakRss() as rss:
        started = time.perf_counter()
        reader = csv.DictReader(f)
        batch = []
        if kind == "customers":
            # The file's tags too, as our import writes them: the links of each batch in one
            # more bulk_create, tags created on first sight.
            through = Customer.tags.through
            tags: dict[str, int] = {}
            names: list[list[str]] = []

            def flush() -> None:
                Customer.objects.bulk_create(batch)
                links = []
                for customer, row_names in zip(batch, names, strict=True):
                    for name in row_names:
                        if name not in tags:
                            tags[name] = Tag.objects.get_or_create(name=name)[0].pk
                        links.append(through(customer_id=customer.pk, tag_id=tags[name]))
                through.objects.bulk_create(links)
                batch.clear()
                names.clear()

            for row in reader:
                names.append([t for t in row["tags"].split(";") if t])
                batch.append(
                    Customer(
                        external_id=row["external_id"],
                        email=row["email"],
                        first_name=row["first_name"],
                        last_name=row["last_name"],
                        gender=row["gender"],
                        birth_date=dt.date.fromisoformat(row["birth_date"]),
                        country=row["country"],
                        city=row["city"],
                        language=row["language"],
                        income_band=row["income_band"],
                        attributes={"segment": row["attr.segment"]},
                    )
                )
                if len(batch) == 2000:
                    flush()
            flush()
        else:
            ids = dict(Customer.objects.values_list("external_id", "id"))
            tz = dt.UTC
            for n, row in enumerate(reader):
                batch.append(
                    Purchase(
                        customer_id=ids[row["customer_external_id"]],
                        external_id=row["external_id"] or None,
                        dedup_key=f"ext:{row['external_id']}"
                        if row["external_id"]
                        else f"bench:{n}",
                        purchased_at=dt.datetime.fromisoformat(row["purchased_at"]).replace(
                            tzinfo=tz
                        ),
                        amount=Decimal(row["amount"]),
                        currency=row["currency"],
                        quantity=int(row["quantity"]),
                        channel=row["channel"],
                        category=row["category"],
                        promotion_code=row["promotion_code"],
                    )
                )
                if len(batch) == 2000:
                    Purchase.objects.bulk_create(batch)
                    batch = []
            Purchase.objects.bulk_create(batch)
        seconds = time.perf_counter() - started
    return seconds, rss.peak


def files(tier: str) -> tuple[Path, Path, int, int]:
    n_customers, n_purchases = TIERS[tier]
    customers_path = DATA / f"customers-{tier}-seed1.csv"
    purchases_path = DATA / f"purchases-{tier}-seed2.csv"
    if not customers_path.exists():
        print(f"generating {customers_path.name} ({n_customers:,} rows)", flush=True)
        customers_csv_write(customers_path, count=n_customers, seed=1)
    if not purchases_path.exists():
        print(f"generating {purchases_path.name} ({n_purchases:,} rows)", flush=True)
        purchases_csv_write(purchases_path, count=n_purchases, customers=n_customers, seed=2)
    return customers_path, purchases_path, n_customers, n_purchases


def acceptance(rows: int) -> int:
    """Issue 2's acceptance: 1% broken rows are reported exactly, all others go in, once."""
    n_customers = max(rows // 20, 100)
    customers_path = DATA / f"customers-accept-{n_customers}.csv"
    purchases_path = DATA / f"purchases-accept-{rows}-broken.csv"
    customers_csv_write(customers_path, count=n_customers, seed=1)
    broken = purchases_csv_write(
        purchases_path, count=rows, customers=n_customers, seed=3, broken_every=100
    )
    tables_reset()
    with open(customers_path, "rb") as stream:
        customers_import(stream=stream)
    runs = []
    for attempt in (1, 2):
        reported: list[int] = []
        with open(purchases_path, "rb") as stream:
            started = time.perf_counter()
            result = purchases_import(
                stream=stream, on_error=lambda e, found=reported: found.append(e.line)
            )
            seconds = time.perf_counter() - started
        runs.append((result, reported, seconds))
        print(f"run {attempt}: {result.counts()} in {seconds:.1f}s", flush=True)
    (first, first_lines, _), (second, second_lines, _) = runs
    stored = count(Purchase._meta.db_table)
    checks = {
        "reported lines == broken lines": sorted(first_lines) == broken,
        "every other row imported": first.created == rows - len(broken) == stored,
        "second run creates nothing": second.created == 0 and second.updated == 0,
        "second run reports the same lines": sorted(second_lines) == broken,
    }
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    print(f"{rows} rows, {len(broken)} broken, {stored} purchases stored")
    return 0 if all(checks.values()) else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--tier", default="S", choices=sorted(TIERS))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--acceptance",
        type=int,
        metavar="ROWS",
        help="Instead of timing: import a purchases file of ROWS rows with 1%% broken, twice, and check",
    )
    parser.add_argument(
        "--skip-bulk-create",
        action="store_true",
        help="Leave out the bulk_create anchor (it takes minutes at tier S)",
    )
    args = parser.parse_args()
    database_ensure()  # a fresh machine has no benchmark database yet
    if args.acceptance:
        call_command("migrate", verbosity=0)
        return acceptance(args.acceptance)
    call_command("migrate", verbosity=0)
    customers_path, purchases_path, n_customers, n_purchases = files(args.tier)
    expected = {"customers": n_customers, "purchases": n_purchases}
    paths = {"customers": customers_path, "purchases": purchases_path}

    # Warm-up on the small tier: loads code, plans and the connection without doubling the run.
    if args.tier != "XS":
        warm_c, warm_p, _, _ = files("XS")
        tables_reset()
        ours("customers", warm_c)
        ours("purchases", warm_p)
        copy_anchor("customers", warm_c)
        tables_reset()
        bulk_create_anchor("customers", warm_c)

    load_start = os.getloadavg()[0]
    times: dict[str, list[float]] = {}
    peaks: dict[str, int] = {}
    statements: dict[str, int] = {}
    void: list[str] = []

    def record(name: str, seconds: float, peak: int) -> None:
        times.setdefault(name, []).append(seconds)
        peaks[name] = max(peaks.get(name, 0), peak)

    for rep in range(args.reps):
        order = ["ours", "copy", "bulk_create"] if rep % 2 == 0 else ["bulk_create", "copy", "ours"]
        if args.skip_bulk_create:
            order.remove("bulk_create")
        for who in order:
            tables_reset()
            for kind in ("customers", "purchases"):
                if who == "ours":
                    seconds, peak, n_statements, failed = ours(kind, paths[kind])
                    statements[kind] = n_statements
                    got = count(
                        Customer._meta.db_table if kind == "customers" else Purchase._meta.db_table
                    )
                    if failed or got != expected[kind]:
                        void.append(
                            f"ours {kind}: {got} rows, {failed} failed, expected {expected[kind]}"
                        )
                    catch_up, marked = realtime_catch_up()
                    record(f"realtime:{kind}", catch_up, 0)
                    print(
                        f"  rep {rep + 1} {'realtime':<11} {kind:<9} {catch_up:8.2f}s "
                        f"({marked:,} customers re-evaluated)",
                        flush=True,
                    )
                elif who == "copy":
                    seconds, peak = copy_anchor(kind, paths[kind])
                    got = count(f"bench_copy_{kind[:-1]}")
                    if got != expected[kind]:
                        void.append(f"copy {kind}: {got} rows, expected {expected[kind]}")
                else:
                    seconds, peak = bulk_create_anchor(kind, paths[kind])
                    got = count(
                        Customer._meta.db_table if kind == "customers" else Purchase._meta.db_table
                    )
                    if got != expected[kind]:
                        void.append(f"bulk_create {kind}: {got} rows, expected {expected[kind]}")
                record(f"{who}:{kind}", seconds, peak)
                print(f"  rep {rep + 1} {who:<11} {kind:<9} {seconds:8.2f}s", flush=True)
            if who == "ours":
                # Purchases first: emptying the customers empties their purchases too.
                for kind in ("purchases", "customers"):
                    seconds, got = insert_anchor(kind)
                    if got != expected[kind]:
                        void.append(f"insert {kind}: {got} rows, expected {expected[kind]}")
                    record(f"insert:{kind}", seconds, 0)
                    print(f"  rep {rep + 1} {'insert':<11} {kind:<9} {seconds:8.2f}s", flush=True)

    rows = []
    for kind in ("customers", "purchases"):
        ours_s = statistics.median(times[f"ours:{kind}"])
        for anchor, target in (
            ("copy", ">= 0.5"),
            ("bulk_create", ">= 1"),
            ("insert", "informative"),
        ):
            if f"{anchor}:{kind}" not in times:
                continue
            anchor_s = statistics.median(times[f"{anchor}:{kind}"])
            # The median of the paired ratios of each repetition (anchor and ours of the same
            # repetition ran side by side), and their spread.
            pairs = [
                a / o for a, o in zip(times[f"{anchor}:{kind}"], times[f"ours:{kind}"], strict=True)
            ]
            bound = float(target.split()[-1]) if target.startswith(">=") else None
            rows.append(
                {
                    "case": f"import {kind}",
                    "tier": args.tier,
                    "rows": expected[kind],
                    "ours_s": round(ours_s, 3),
                    "ours_rows_per_s": round(expected[kind] / ours_s),
                    "anchor": ANCHOR_NAMES[anchor],
                    "anchor_s": round(anchor_s, 3),
                    "anchor_rows_per_s": round(expected[kind] / anchor_s),
                    "ratio": round(statistics.median(pairs), 3),
                    "spread": [round(min(pairs), 3), round(max(pairs), 3)],
                    "target": target,
                    "met": "-"
                    if bound is None
                    else ("yes" if statistics.median(pairs) >= bound else "no"),
                    "ours_peak_rss_mb": round(peaks[f"ours:{kind}"] / 2**20),
                    "anchor_peak_rss_mb": round(peaks[f"{anchor}:{kind}"] / 2**20),
                    "ours_statements": statements[kind],
                    "batch_size": settings.CRM_IMPORT_BATCH_SIZE,
                    "reps": args.reps,
                    "void": [v for v in void if kind in v],
                }
            )
        realtime_s = statistics.median(times[f"realtime:{kind}"])
        rows.append(
            {
                "case": f"real-time catch-up after import {kind}",
                "tier": args.tier,
                "rows": expected[kind],
                "ours_s": round(realtime_s, 3),
                "anchor": "-",
                "anchor_s": None,
                "ratio": None,
                "spread": None,
                "target": "informative",
                "met": "-",
                "reps": args.reps,
                "void": [],
            }
        )
    load_end = os.getloadavg()[0]
    print()
    print(f"load average (1 min): {load_start:.2f} at start, {load_end:.2f} at end")
    print("case | tier | ours_s | anchor | anchor_s | ratio (spread) | target | met")
    for r in rows:
        if r["ratio"] is None:
            print(f"{r['case']} | {r['tier']} | {r['ours_s']:.2f} | - | - | - | {r['target']} | -")
            continue
        print(
            f"{r['case']} | {r['tier']} | {r['ours_s']:.2f} | {r['anchor']} | {r['anchor_s']:.2f} | "
            f"{r['ratio']:.2f} ({r['spread'][0]:.2f}-{r['spread'][1]:.2f}) | {r['target']} | "
            f"{r['met']}"
        )
    print()
    for r in rows:
        if r["ratio"] is None:
            continue
        print(
            f"{r['case']} vs {r['anchor']}: ours {r['ours_rows_per_s']:,} rows/s, anchor "
            f"{r['anchor_rows_per_s']:,} rows/s; peak RSS ours {r['ours_peak_rss_mb']} MB, anchor "
            f"{r['anchor_peak_rss_mb']} MB; {r['ours_statements']} statements"
        )
    if void:
        print("VOID (row counts differ):", *void, sep="\n  ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = {
        "nproc": os.cpu_count(),
        "mem_gib": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30),
    }
    (RESULTS / "import.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    celery_app.control.purge()  # the real-time tasks queued for a worker: their work is done
    return 1 if void else 0


if __name__ == "__main__":
    sys.exit(main())
