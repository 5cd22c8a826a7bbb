"""Seeded benchmark data written straight into PostgreSQL with COPY.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench \\
        python -m bench.generator --customers 1000000 --purchases 10000000 --seed 1 [--reset]

Benchmarks call `ensure_dataset(customers, purchases, seed)`, which generates only when the
database does not already hold exactly that dataset (a one-row table `bench_dataset` remembers
what was generated). The same seed on the same day gives the same rows: every value comes from
one numpy PCG64 stream, and the history ends at midnight UTC of the day it runs.

What it writes (tiers in ../shared/BENCHMARKS.md): staff (the demo users plus sales3..sales10,
password `demo-pass-2024`), the 40 demo products in 8 categories, one account per five customers,
customers in 10 countries with matching places and custom attributes, tags, purchases with a long
tail per customer (15% never bought), log-normal amounts and dates over two years, two events per
customer, a follow-up or note per twenty customers, and consent through ledger records plus the
derived current state (about 65% currently granted email). The derived customer figures are
computed here and written with the customers, so no UPDATE pass is needed.

Speed: secondary indexes and constraints of the loaded tables are dropped before the load and
rebuilt after it (their definitions are kept in `bench_dataset` meanwhile, so an interrupted run
rebuilds them next time); the rows are COPYed with FREEZE in the transaction that truncated the
tables, so they need no vacuum before index-only scans work.
"""

import argparse
import datetime as dt
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator

import numpy as np

SALES_USERS = 10
ACCOUNTS_PER_CUSTOMER = 0.2
EVENTS_PER_CUSTOMER = 2
NOTES_PER_CUSTOMER = 0.05
NEVER_BOUGHT = 0.15
CHUNK_ROWS = 200_000
INDEX_REBUILD_FROM = 200_000  # rows; below that, loading into the indexed tables is quicker
HISTORY_DAYS = 730
MARKER = "bench_dataset"
LOCK_KEY = 7_304_2024  # pg_advisory_lock key: one generator per database at a time
POSTAL_POOL = 400  # postal codes drawn per city
DAY = 86_400


class DatasetError(RuntimeError):
    """The database cannot take the dataset (not PostgreSQL, or holds other data)."""


def _django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    import django

    django.setup()
    database_ensure()


def database_ensure() -> None:
    """Create the PostgreSQL database DATABASE_URL names when it does not exist yet (fresh clone)."""
    import psycopg
    from django.db import connection

    params = connection.get_connection_params()
    try:
        connection.ensure_connection()
        return
    except Exception as error:  # Django wraps psycopg's error; look at the cause
        if "does not exist" not in str(error):
            raise
    name = params["dbname"]
    admin = {**params, "dbname": "postgres"}
    admin.pop("cursor_factory", None)
    admin.pop("context", None)
    with psycopg.connect(**admin, autocommit=True) as raw:
        raw.execute(f"CREATE DATABASE {connection.ops.quote_name(name)}")
    print(f"Created database {name}")


def ensure_dataset(customers: int, purchases: int, seed: int, deals: int = 0) -> None:
    """Make DATABASE_URL hold exactly this dataset; do nothing when it already does. Deals are
    laid over the customers: a different number of deals regenerates only the deals."""
    _django_setup()
    from django.db import connection

    with _advisory_lock(connection):  # one migrate and one generator at a time per database
        _migrate_if_needed()
        marker = _marker_read(connection)
        if (
            marker is not None
            and marker["status"] == "ready"
            and _matches(connection, marker, customers, purchases, seed)
        ):
            if deals and not _deals_match(connection, marker, deals):
                _deals_generate(connection, deals=deals, seed=seed, today=marker["generated_on"])
            return
        dataset_generate(customers=customers, purchases=purchases, seed=seed, reset=True)
        if deals:
            marker = _marker_read(connection)
            _deals_generate(connection, deals=deals, seed=seed, today=marker["generated_on"])


def _deals_match(connection, marker: dict, deals: int) -> bool:
    from deals.models import Deal

    return marker.get("deals") == deals and Deal.objects.count() == deals


def _deals_generate(connection, *, deals: int, seed: int, today: dt.date, log=print) -> None:
    from bench.deal_rows import deals_generate

    deals_generate(deals=deals, seed=seed, today=today, log=log)
    with connection.cursor() as cur:
        cur.execute(f"UPDATE {MARKER} SET deals = %s", [deals])


def dataset_generate(
    *,
    customers: int,
    purchases: int,
    seed: int,
    reset: bool = False,
    today: dt.date | None = None,
    rebuild_indexes: bool | None = None,
    log: Callable[[str], None] = print,
    world: str = "default",
) -> float:
    """Generate the dataset into the default database; returns the seconds it took.

    rebuild_indexes: drop the secondary indexes before loading and build them afterwards;
    by default only for large loads, where that is much faster than maintaining them row by row.
    world: "default", or "bgnbd" for purchases simulated from a known BG/NBD x Gamma-Gamma world
    (BgNbdWorld; `purchases` is then ignored: their number is what the world makes).
    """
    if world not in WORLDS:
        raise DatasetError(f"world: expected one of {', '.join(WORLDS)}")
    from django.db import connection, transaction

    if customers < 0 or purchases < 0:
        raise DatasetError("customers and purchases: expected zero or more")
    if purchases and not customers:
        raise DatasetError("purchases: need at least one customer to buy them")
    started = time.monotonic()
    t = _Tables()
    _marker_create(connection)
    marker = _marker_read(connection)
    if not reset:
        with connection.cursor() as cur:
            cur.execute(f"SELECT EXISTS (SELECT 1 FROM {t.customer})")
            if cur.fetchone()[0]:
                raise DatasetError(
                    "database: it already holds customers; pass --reset to replace them with generated data"
                )

    step = _Stopwatch(log)
    today = today or dt.datetime.now(dt.UTC).date()
    plan = _Plan(customers=customers, purchases=purchases, seed=seed, today=today, world=world)
    purchases = plan.n_purchases
    step.done(f"planned {customers:,} customers, {purchases:,} purchases")

    if rebuild_indexes is None:
        rebuild_indexes = purchases + customers >= INDEX_REBUILD_FROM
    ddl = marker["pending_ddl"] if marker and marker["pending_ddl"] else None
    if ddl is None and rebuild_indexes:
        ddl = _secondary_ddl(connection, t.stripped)
        _marker_write(connection, status="loading", pending_ddl=ddl)
        with connection.cursor() as cur:
            for statement in ddl["drop"]:
                cur.execute(statement)
        step.done(f"dropped {len(ddl['drop'])} secondary indexes and constraints")
    elif ddl is not None:  # an earlier run stopped before rebuilding them
        _marker_write(connection, status="loading", pending_ddl=ddl)
    else:
        _marker_write(connection, status="loading", pending_ddl=None)
        ddl = {"drop": [], "create": []}

    try:
        freeze = not connection.in_atomic_block
        with transaction.atomic():
            with connection.cursor() as cur:
                # Deferred foreign-key checks still pending in an enclosing transaction block TRUNCATE.
                cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cur.execute(f"TRUNCATE {', '.join(t.truncated)} RESTART IDENTITY CASCADE")
            ids = _reference_rows(plan)
            step.done("staff, products and tags")
            with connection.cursor() as cur:
                loader = _Loader(cur.cursor, freeze=freeze)
                loader.copy(t.account, plan.account_columns, plan.account_rows(ids))
                step.done(f"{plan.n_accounts:,} accounts")
                loader.copy(t.customer, plan.customer_columns, plan.customer_rows(ids))
                step.done(f"{customers:,} customers with their figures")
                loader.copy(t.customer_tags, ("customer_id", "tag_id"), plan.customer_tag_rows(ids))
                step.done("customer tags")
                loader.copy(t.purchase, plan.purchase_columns, plan.purchase_rows(ids))
                step.done(f"{purchases:,} purchases")
                loader.copy(
                    t.event, ("customer_id", "type", "occurred_at", "properties"), plan.event_rows()
                )
                step.done(f"{plan.n_events:,} events")
                loader.copy(t.note, plan.note_columns, plan.note_rows(ids))
                step.done(f"{plan.n_notes:,} notes")
                loader.copy(
                    t.consent_record, plan.consent_record_columns, plan.consent_record_rows()
                )
                loader.copy(t.consent_state, plan.consent_state_columns, plan.consent_state_rows())
                step.done(f"{plan.n_consent_records:,} consent records and their states")
                for table in t.sequenced:
                    cur.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)"
                    )
    except BaseException:
        # The load rolled back: give the old rows their indexes back before giving up.
        if not connection.in_atomic_block:
            _ddl_run(connection, ddl["create"], log=log)
            _marker_write(connection, status="failed", pending_ddl=None)
        raise

    _ddl_run(connection, ddl["create"], log=log)
    if ddl["create"]:
        step.done(f"rebuilt {len(ddl['create'])} indexes and constraints")
    with connection.cursor() as cur:
        for table in t.truncated:
            cur.execute(f"ANALYZE {table}")
    step.done("analyzed")
    seconds = time.monotonic() - started
    _marker_write(
        connection,
        status="ready",
        pending_ddl=None,
        customers=customers,
        purchases=purchases,
        seed=seed,
        generated_on=today,
        seconds=seconds,
        deals=0,  # emptied with the customers; _deals_generate lays them over
    )
    log(
        f"Generated {customers:,} customers / {purchases:,} purchases (seed {seed}) in {seconds:.1f} s"
    )
    return seconds


class _Stopwatch:
    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.last = time.monotonic()

    def done(self, what: str) -> None:
        now = time.monotonic()
        self.log(f"  {now - self.last:7.1f} s  {what}")
        self.last = now


class _Tables:
    """Table names taken from the models, so a renamed table follows."""

    def __init__(self) -> None:
        from django.db import connection

        from customers.models import Account, Customer, Event, Note, Product, Purchase, Tag
        from privacy.models import ConsentRecord, ConsentState

        q = connection.ops.quote_name
        self.account = q(Account._meta.db_table)
        self.customer = q(Customer._meta.db_table)
        self.customer_tags = q(Customer.tags.through._meta.db_table)
        self.account_tags = q(Account.tags.through._meta.db_table)
        self.purchase = q(Purchase._meta.db_table)
        self.event = q(Event._meta.db_table)
        self.note = q(Note._meta.db_table)
        self.consent_record = q(ConsentRecord._meta.db_table)
        self.consent_state = q(ConsentState._meta.db_table)
        self.product = q(Product._meta.db_table)
        self.tag = q(Tag._meta.db_table)
        bulk = [
            self.account,
            self.customer,
            self.customer_tags,
            self.purchase,
            self.event,
            self.note,
            self.consent_record,
            self.consent_state,
        ]
        self.stripped = bulk  # their secondary indexes are rebuilt after the load
        self.truncated = [*bulk, self.account_tags, self.product, self.tag]
        self.sequenced = [*bulk, self.account_tags, self.product, self.tag]


def _secondary_ddl(connection, tables: list[str]) -> dict[str, list[str]]:
    """Statements that drop, and later recreate, every index and constraint but the primary keys."""
    drop_fk, drop_other, create_index, create_fk = [], [], [], []
    with connection.cursor() as cur:
        for table in tables:
            cur.execute(
                "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype IN ('u', 'f') ORDER BY conname",
                [table],
            )
            for name, kind, definition in cur.fetchall():
                qname = connection.ops.quote_name(name)
                drop = f"ALTER TABLE {table} DROP CONSTRAINT {qname}"
                create = f"ALTER TABLE {table} ADD CONSTRAINT {qname} {definition}"
                (drop_fk if kind == "f" else drop_other).append(drop)
                (create_fk if kind == "f" else create_index).append(create)
            cur.execute(
                "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
                "JOIN pg_class i ON i.oid = x.indexrelid "
                "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary AND NOT EXISTS ("
                "  SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid AND c.conrelid = x.indrelid"
                ") ORDER BY i.relname",
                [table],
            )
            for name, definition in cur.fetchall():
                drop_other.append(f"DROP INDEX {connection.ops.quote_name(name)}")
                create_index.append(definition)
    return {"drop": drop_fk + drop_other, "create": create_index + create_fk}


def _ddl_run(connection, statements: list[str], *, log: Callable[[str], None]) -> None:
    """Build indexes on two connections at once (one per core), then add the foreign keys.

    Inside an enclosing transaction (tests) the other connections cannot see the tables, so
    everything runs on this one.
    """
    indexes = [s for s in statements if "FOREIGN KEY" not in s]
    foreign_keys = [s for s in statements if "FOREIGN KEY" in s]

    def run(cursor, statement: str) -> None:
        started = time.monotonic()
        cursor.execute(statement)
        if time.monotonic() - started > 5:
            log(f"           {time.monotonic() - started:5.1f} s  {statement[:110]}")

    if connection.in_atomic_block or len(indexes) < 2:
        with connection.cursor() as cur:
            cur.execute("SET maintenance_work_mem = '1GB'")
            for statement in statements:
                run(cur, statement)
            cur.execute("RESET maintenance_work_mem")
        return
    pending = list(reversed(indexes))
    lock = threading.Lock()
    failures: list[BaseException] = []

    def worker() -> None:
        raw = connection.get_new_connection(connection.get_connection_params())
        try:
            raw.autocommit = True
            with raw.cursor() as cur:
                # Two builds side by side already use both cores; no parallel workers on top.
                cur.execute("SET maintenance_work_mem = '1GB'")
                cur.execute("SET max_parallel_maintenance_workers = 0")
                while True:
                    with lock:
                        if not pending or failures:
                            return
                        statement = pending.pop()
                    run(cur, statement)
        except BaseException as error:  # re-raised in the caller's thread
            failures.append(error)
        finally:
            raw.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    with connection.cursor() as cur:
        for statement in foreign_keys:
            run(cur, statement)


def _marker_create(connection) -> None:
    with connection.cursor() as cur:
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {MARKER} ("
            " id integer PRIMARY KEY CHECK (id = 1), status text NOT NULL, customers bigint,"
            " purchases bigint, seed bigint, generated_on date, seconds double precision,"
            " pending_ddl jsonb)"
        )
        cur.execute(f"ALTER TABLE {MARKER} ADD COLUMN IF NOT EXISTS deals bigint")


def _marker_read(connection) -> dict | None:
    _marker_create(connection)
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT status, customers, purchases, seed, generated_on, seconds, pending_ddl, deals"
            f" FROM {MARKER}"
        )
        row = cur.fetchone()
    if row is None:
        return None
    keys = (
        "status",
        "customers",
        "purchases",
        "seed",
        "generated_on",
        "seconds",
        "pending_ddl",
        "deals",
    )
    marker = dict(zip(keys, row, strict=True))
    if isinstance(marker["pending_ddl"], str):
        marker["pending_ddl"] = json.loads(marker["pending_ddl"])
    return marker


def _marker_write(connection, *, status: str, pending_ddl: dict | None, **fields) -> None:
    values = {
        "status": status,
        "pending_ddl": json.dumps(pending_ddl) if pending_ddl else None,
        **fields,
    }
    columns = ", ".join(values)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in values)
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {MARKER} (id, {columns}) VALUES (1, {', '.join(['%s'] * len(values))}) "
            f"ON CONFLICT (id) DO UPDATE SET {updates}",
            list(values.values()),
        )


def _matches(connection, marker: dict, customers: int, purchases: int, seed: int) -> bool:
    """Whether the recorded dataset is the one asked for and is still all there."""
    if (marker["customers"], marker["purchases"], marker["seed"]) != (customers, purchases, seed):
        return False
    t = _Tables()
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT (SELECT count(*) FROM {t.customer}), (SELECT count(*) FROM {t.purchase})"
        )
        return tuple(cur.fetchone()) == (customers, purchases)


class _advisory_lock:
    def __init__(self, connection) -> None:
        self.connection = connection

    def __enter__(self) -> None:
        with self.connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])

    def __exit__(self, *exc) -> None:
        with self.connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])


def _migrate_if_needed() -> None:
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        call_command("migrate", interactive=False, verbosity=1)


class _Loader:
    """COPY in text format; a writer thread sends one chunk while the next is being formatted."""

    def __init__(self, raw_cursor, *, freeze: bool) -> None:
        self.cursor = raw_cursor
        self.freeze = freeze

    def copy(self, table: str, columns: Iterable[str], chunks: Iterator[str]) -> None:
        from psycopg.copy import QueuedLibpqWriter

        options = " WITH (FREEZE)" if self.freeze else ""
        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN{options}"
        with self.cursor.copy(sql, writer=QueuedLibpqWriter(self.cursor)) as copy:
            for chunk in chunks:
                copy.write(chunk)


def _reference_rows(plan: "_Plan") -> dict:
    """Staff, products and tags through the ORM (a handful of rows); returns their ids."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from crm.demo import vocabulary as v
    from crm.demo.seeding import demo_users_ensure
    from crm.roles import Role
    from customers.models import Product, Tag

    users = demo_users_ensure()
    user_model = get_user_model()
    sales_group = Group.objects.get(name=Role.SALES)
    sales = [users["sales"], users["sales2"]]
    password = users["sales"].password  # the same hash of the demo password, computed once
    for n in range(3, SALES_USERS + 1):
        user, _ = user_model.objects.get_or_create(
            username=f"sales{n}",
            defaults={
                "first_name": "Sales",
                "last_name": f"Person {n}",
                "email": f"sales{n}@crm.example",
            },
        )
        user.password = password
        user.is_active = True
        user.save(update_fields=["password", "is_active"])
        user.groups.add(sales_group)
        sales.append(user)
    Product.objects.bulk_create(
        [
            Product(sku=sku, name=name, category=category, price=price)
            for sku, name, category, price in v.PRODUCTS
        ]
    )
    Tag.objects.bulk_create([Tag(name=name) for name in plan.tag_names])
    product_ids = dict(Product.objects.values_list("sku", "id"))
    tag_ids = dict(Tag.objects.values_list("name", "id"))
    return {
        "sales": np.array([u.pk for u in sales]),
        "products": np.array([product_ids[p[0]] for p in v.PRODUCTS]),
        "tags": np.array([tag_ids[name] for name in plan.tag_names]),
    }


NOTE_BODIES = {
    "note": (
        "Prefers contact by e-mail.",
        "Asked about the loyalty programme.",
        "Interested in the new collection.",
    ),
    "call": ("Called about an open order.", "Follow-up call on the quote."),
    "meeting": ("Met at the trade fair.", "Showroom visit with the buying team."),
    "task": (
        "Send the updated price list.",
        "Prepare a quote for the spring order.",
        "Check in after the first purchase.",
    ),
}
CAMPAIGNS = ("spring-sale", "newsletter", "new-arrivals", "winback")


WORLDS = ("default", "bgnbd")
# The known BG/NBD (times in days) and Gamma-Gamma (amounts in euros) world of `--world bgnbd`:
# about 5 purchases a year while alive, a third of the customers gone after their first repeat
# purchase or so, about 37 euros per purchase.
BGNBD_TRUTH = {"r": 0.9, "alpha": 70.0, "a": 0.8, "b": 2.5, "p": 6.0, "q": 4.0, "gamma": 15.0}


class BgNbdWorld:
    """Purchases simulated from a known BG/NBD x Gamma-Gamma world (Fader, Hardie & Lee 2005),
    with what each customer then does in the `future_days` after `now` (kept, never written):
    the truth a forecast is checked against.

    Customer i makes a first purchase at a time uniform over the `history_days` before `now`;
    while alive they buy at rate lambda_i ~ Gamma(r, alpha) a day; after each repeat purchase
    they drop out with probability p_i ~ Beta(a, b); each purchase costs
    z ~ Gamma(p, nu_i), nu_i ~ Gamma(q, gamma). Seeded: one numpy PCG64 stream per (seed, 2).
    """

    def __init__(
        self,
        *,
        customers: int,
        seed: int,
        now: int,
        history_days: float = HISTORY_DAYS,
        future_days: float = 365,
        truth: dict | None = None,
    ) -> None:
        truth = self.truth = dict(truth or BGNBD_TRUTH)
        rng = np.random.default_rng([seed, 2])
        C = customers
        self.now = now
        first = rng.uniform(0, history_days, C)  # days before now
        lam = rng.gamma(truth["r"], 1 / truth["alpha"], C)
        drop = rng.beta(truth["a"], truth["b"], C)
        repeats_until_gone = rng.geometric(np.clip(drop, 1e-12, 1), C)
        span = first + future_days
        # Given their number, a Poisson process's events are uniform over the span: draw them
        # all, sort within each customer, and keep the first ones up to the one after which the
        # customer is gone (the rest never happen).
        drawn = rng.poisson(lam * span)
        events = np.minimum(drawn, repeats_until_gone)
        cust = np.repeat(np.arange(C), drawn)
        offset = rng.random(len(cust)) * span[cust]
        order = np.lexsort((offset, cust))
        cust, offset = cust[order], offset[order]
        starts = np.repeat(np.cumsum(drawn) - drawn, drawn)
        rank = np.arange(len(cust)) - starts
        keep = rank < events[cust]
        cust, offset = cust[keep], offset[keep]
        nu = rng.gamma(truth["q"], 1 / truth["gamma"], C)
        # The first purchase (offset 0), then the repeat ones.
        all_cust = np.concatenate([np.arange(C), cust])
        all_days = np.concatenate([-first, -first[cust] + offset])  # days relative to now
        amount = rng.gamma(truth["p"], 1 / nu[all_cust])
        cents = np.maximum(1, np.rint(amount * 100)).astype(np.int64)
        seconds = now + np.floor(all_days * DAY).astype(np.int64)
        past = seconds < now
        self.customer, self.when, self.cents = all_cust[past], seconds[past], cents[past]
        future = ~past & (all_days < future_days)
        self.future_purchases = np.bincount(all_cust[future], minlength=C)
        self.future_spend = np.bincount(all_cust[future], weights=cents[future] / 100, minlength=C)
        self.first_purchase = now + np.floor(-first * DAY).astype(np.int64)
        self.future_days = future_days

    def summary(self, reference: int | None = None) -> dict:
        """Per customer as of `reference` (default now): x, t_x and T in days, purchases n and
        their mean amount m: what segments.ml computes in SQL."""
        reference = self.now if reference is None else reference
        seen = self.when < reference
        cust, when, cents = self.customer[seen], self.when[seen], self.cents[seen]
        C = len(self.first_purchase)
        n = np.bincount(cust, minlength=C)
        total = np.bincount(cust, weights=cents / 100, minlength=C)
        last = np.full(C, np.iinfo(np.int64).min)
        np.maximum.at(last, cust, when)
        bought = n > 0
        first = self.first_purchase
        return {
            "bought": bought,
            "x": np.where(bought, n - 1, 0),
            "t_x": np.where(bought, (last - first) / DAY, 0.0),
            "T": np.where(bought, (reference - first) / DAY, 0.0),
            "n": n,
            "m": np.where(bought, total / np.maximum(n, 1), 0.0),
        }


def _p(weighted: Iterable[tuple[str, int]]) -> tuple[list[str], np.ndarray]:
    names, weights = zip(*weighted, strict=True)
    w = np.array(weights, dtype=float)
    return list(names), w / w.sum()


def _ts(seconds: np.ndarray) -> list[str]:
    """Epoch seconds -> PostgreSQL timestamptz text."""
    return [s + "+00" for s in np.datetime_as_string(seconds.astype("datetime64[s]")).tolist()]


def _days(days: np.ndarray) -> list[str]:
    return np.datetime_as_string(days.astype("datetime64[D]")).tolist()


def _money(cents: np.ndarray) -> list[str]:
    return [f"{c // 100}.{c % 100:02d}" for c in cents.tolist()]


def _fill_template(rng, template: str) -> str:
    return "".join(
        str(rng.integers(10))
        if ch == "#"
        else "ABCDEFGHJKLMNPRSTUVWXYZ"[rng.integers(23)]
        if ch == "@"
        else ch
        for ch in template
    )


class _Plan:
    """Every generated value as numpy arrays, drawn in a fixed order from one seeded stream,
    and the COPY text built from them chunk by chunk."""

    account_columns = (
        "id",
        "name",
        "kind",
        "industry",
        "size",
        "website",
        "address",
        "city",
        "postal_code",
        "country",
        "owner_id",
        "created_at",
        "updated_at",
    )
    customer_columns = (
        "id",
        "account_id",
        "external_id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "birth_date",
        "gender",
        "country",
        "region",
        "city",
        "postal_code",
        "language",
        "income_band",
        "attributes",
        "source",
        "owner_id",
        "created_at",
        "updated_at",
        "lifetime_value",
        "purchase_count",
        "first_purchase_at",
        "last_purchase_at",
        "average_order_value",
        "email_hash",
        "phone_hash",
    )
    purchase_columns = (
        "id",
        "customer_id",
        "external_id",
        "dedup_key",
        "purchased_at",
        "amount",
        "currency",
        "quantity",
        "channel",
        "product_id",
        "category",
        "promotion_code",
        "created_at",
    )
    note_columns = (
        "customer_id",
        "account_id",
        "author_id",
        "kind",
        "body",
        "due_date",
        "done",
        "done_at",
        "created_at",
    )
    consent_record_columns = (
        "id",
        "customer_id",
        "purpose_id",
        "state",
        "recorded_at",
        "source",
        "evidence",
    )
    consent_state_columns = ("customer_id", "purpose_id", "state", "changed_at", "record_id")

    def __init__(
        self, *, customers: int, purchases: int, seed: int, today: dt.date, world: str = "default"
    ) -> None:
        from crm.demo import vocabulary as v

        self.v = v
        self.seed = seed
        self.now = int(dt.datetime.combine(today, dt.time(0, 0), tzinfo=dt.UTC).timestamp())
        self.today = np.datetime64(today, "D").astype(np.int64)
        rng = self.rng = np.random.default_rng(seed)
        C = self.n_customers = customers
        A = self.n_accounts = int(customers * ACCOUNTS_PER_CUSTOMER) if customers else 0
        self.tag_names = [*v.INTERESTS, *v.STATUS_TAGS]
        self.categories = list(v.CATEGORIES)
        countries = v.COUNTRIES
        country_p = np.array([c.weight for c in countries], dtype=float)
        country_p /= country_p.sum()

        # Places: 10 countries x 5 cities, and a pool of postal codes per city.
        place_rng = np.random.default_rng([seed, 1])
        self.cities = [(c, city) for c in countries for city in c.cities]
        self.postal = [
            _fill_template(place_rng, city.postal_template)
            for _, city in self.cities
            for _ in range(POSTAL_POOL)
        ]

        # Accounts.
        self.acc_country = rng.choice(len(countries), size=A, p=country_p)
        self.acc_city = self.acc_country * 5 + rng.integers(0, 5, A)
        self.acc_household = rng.random(A) < 0.55
        self.acc_last = rng.random(A)
        self.acc_stem = rng.integers(0, 15, (A, 2))
        self.acc_industry = rng.integers(0, len(v.INDUSTRIES), A)
        self.acc_size = rng.choice(5, size=A, p=[0.35, 0.30, 0.20, 0.10, 0.05])
        self.acc_created = self.now - (rng.uniform(30, 3 * 365, A) * DAY).astype(np.int64)
        self.acc_postal = rng.integers(0, POSTAL_POOL, A)
        self.acc_street = rng.integers(1, 181, A)
        self.acc_owner = np.arange(A) % SALES_USERS

        # Customers: most belong to an account and live where it is.
        attached = (rng.random(C) < 0.8) & (A > 0)
        account = rng.integers(0, max(A, 1), C)
        own_country = rng.choice(len(countries), size=C, p=country_p)
        own_city = own_country * 5 + rng.integers(0, 5, C)
        if A:
            acc_country, acc_city = self.acc_country[account], self.acc_city[account]
            acc_household, acc_last = self.acc_household[account], self.acc_last[account]
            acc_owner = self.acc_owner[account]
        else:  # no accounts: nobody is attached, these are never used
            acc_country, acc_city, acc_owner = own_country, own_city, np.zeros(C, np.int64)
            acc_household, acc_last = np.zeros(C, bool), np.zeros(C)
        self.account = np.where(attached, account, -1)
        self.country = np.where(attached, acc_country, own_country)
        self.city = np.where(attached, acc_city, own_city)
        genders, gender_p = _p(v.GENDERS)
        self.genders = genders
        self.gender = rng.choice(len(genders), size=C, p=gender_p)
        self.first_u = rng.random(C)
        self.last_u = rng.random(C)
        self.last_u = np.where(attached & acc_household, acc_last, self.last_u)
        self.has_email = rng.random(C) < 0.97
        self.has_phone = rng.random(C) < 0.85
        self.phone = rng.integers(0, 10**10, C)
        self.birth = self.today - rng.integers(18 * 365, 82 * 365, C)
        bands, band_p = _p(v.INCOME_BANDS)
        self.bands = bands
        self.band = np.where(rng.random(C) < 0.8, rng.choice(len(bands), size=C, p=band_p), -1)
        sources, source_p = _p(v.SOURCES)
        self.sources = sources
        self.source = rng.choice(len(sources), size=C, p=source_p)
        unowned = rng.random(C) < 0.05
        self.owner = np.where(attached, acc_owner, rng.integers(0, SALES_USERS, C))
        self.owner = np.where(~attached & unowned, -1, self.owner)
        new = rng.random(C) < 0.01
        joined_days = np.where(new, rng.uniform(0, 7, C), rng.uniform(7, 3 * 365, C))
        self.created = self.now - (joined_days * DAY).astype(np.int64)
        tiers, tier_p = _p(v.LOYALTY_TIERS)
        self.tiers = tiers
        self.tier = rng.choice(len(tiers), size=C, p=tier_p)
        self.shoe = np.where(self.gender == 0, rng.integers(36, 43, C), rng.integers(39, 48, C))
        self.newsletter = rng.integers(0, 3, C)
        self.job = np.where(
            attached & ~acc_household,
            rng.integers(0, len(v.JOB_TITLES), C),
            -1,
        )
        self.postal_pick = rng.integers(0, POSTAL_POOL, C)
        interests = rng.random((C, len(v.INTERESTS))) < 0.2
        status = rng.random((C, len(v.STATUS_TAGS))) < 0.08
        self.tag_matrix = np.hstack([interests, status])
        first_interest = np.argmax(interests, axis=1)
        interest_category = np.array(
            [self.categories.index(cats[0]) for cats in v.INTERESTS.values()]
        )
        self.favourite = np.where(interests.any(axis=1), interest_category[first_interest], -1)

        # Purchases: a long tail of customers (log-normal propensity, newcomers had less time).
        start = np.maximum(self.created, self.now - HISTORY_DAYS * DAY)
        tenure_days = (self.now - start) / DAY
        weight = rng.lognormal(0, 1.3, C) * np.minimum(1.0, (tenure_days + 30) / 365)
        weight[rng.random(C) < NEVER_BOUGHT] = 0
        if purchases and weight.sum() == 0:
            weight[:] = 1
        counts = rng.multinomial(purchases, weight / weight.sum()) if C else np.zeros(0, np.int64)
        self.n_purchases = purchases
        cust = np.repeat(np.arange(C), counts)
        when = start[cust] + (rng.random(purchases) * (self.now - start[cust] - 1)).astype(np.int64)
        category = rng.integers(0, len(self.categories), purchases)
        likes = (rng.random(purchases) < 0.6) & (self.favourite[cust] >= 0)
        category = np.where(likes, self.favourite[cust], category)
        has_product = rng.random(purchases) < 0.9
        product = category * 5 + rng.integers(0, 5, purchases)
        quantity = np.where(rng.random(purchases) < 0.8, 1, rng.integers(2, 5, purchases))
        price_cents = np.array([int(p[3] * 100) for p in v.PRODUCTS])
        amount = np.where(
            has_product,
            price_cents[product] * quantity * rng.lognormal(0, 0.12, purchases),
            rng.lognormal(4.0, 0.8, purchases) * 100,
        )
        promo = rng.random(purchases) < 0.12
        promo_code = rng.integers(0, len(v.PROMOTION_CODES), purchases)
        amount = np.maximum(100, np.rint(np.where(promo, amount * 0.85, amount))).astype(np.int64)
        channels, channel_p = _p(v.CHANNELS)
        self.channels = channels
        channel = rng.choice(len(channels), size=purchases, p=channel_p)
        order = np.argsort(when, kind="stable")  # ids follow time, as in a live shop
        self.p_customer, self.p_when, self.p_amount = cust[order], when[order], amount[order]
        self.p_category, self.p_quantity, self.p_channel = (
            category[order],
            quantity[order],
            channel[order],
        )
        self.p_product = np.where(has_product, product, -1)[order]
        self.p_promo = np.where(promo, promo_code, -1)[order]

        # The derived figures, exactly as customers.services.customer_stats_refresh computes them.
        self.purchase_count = counts
        self.ltv = (
            np.bincount(cust, weights=amount, minlength=C).astype(np.int64)
            if C
            else np.zeros(0, np.int64)
        )
        self.aov = np.where(counts > 0, (2 * self.ltv + counts) // np.maximum(2 * counts, 1), 0)
        self.first_at = np.full(C, np.iinfo(np.int64).max)
        self.last_at = np.full(C, -1, dtype=np.int64)
        np.minimum.at(self.first_at, cust, when)
        np.maximum.at(self.last_at, cust, when)
        self.world = None
        if world == "bgnbd":
            self._bgnbd_purchases()

        # Events, weighted towards customers who buy.
        E = self.n_events = EVENTS_PER_CUSTOMER * C
        event_p = weight + weight.mean() + 1e-9 if C else weight
        self.e_customer = (
            rng.choice(C, size=E, p=event_p / event_p.sum()) if C else np.zeros(0, np.int64)
        )
        event_types, event_type_p = _p(v.EVENT_TYPES)
        self.event_types = event_types
        self.e_type = rng.choice(len(event_types), size=E, p=event_type_p)
        self.e_when = self.now - (rng.random(E) * 180 * DAY).astype(np.int64) - 1
        self.e_detail = rng.integers(0, len(v.PRODUCTS), E)

        # Notes and follow-ups by the owners.
        N = self.n_notes = int(C * NOTES_PER_CUSTOMER)
        self.n_customer = rng.integers(0, max(C, 1), N)
        kinds = list(NOTE_BODIES)
        self.note_kinds = kinds
        self.n_kind = rng.choice(len(kinds), size=N, p=[0.4, 0.25, 0.1, 0.25])
        self.n_body = rng.integers(0, 3, N)
        self.n_created = self.now - (rng.uniform(0, 120, N) * DAY).astype(np.int64)
        follow_up = (self.n_kind == 3) | (rng.random(N) < 0.2)
        roll = rng.random(N)
        self.n_due = np.where(
            roll < 0.3,
            self.today - rng.integers(1, 22, N),
            np.where(
                roll < 0.7,
                self.today + rng.integers(0, 11, N),
                self.n_created // DAY + rng.integers(1, 15, N),
            ),
        )
        self.n_due = np.where(follow_up, self.n_due, -1)
        self.n_done = follow_up & (roll >= 0.7)

        # Consent: grants from the sign-up form, some withdrawn later, do-not-sell opt-outs.
        email = self.has_email & (rng.random(C) < 0.72)
        email_withdrawn = email & (rng.random(C) < 0.07)
        sms = self.has_phone & (rng.random(C) < 0.25)
        profiling = rng.random(C) < 0.35
        us = np.array([c.code == "US" for c in countries])[self.country] if C else np.zeros(0, bool)
        sale_roll = rng.random(C)
        sale_out = us & (sale_roll < 0.15)
        sale_in = ~us & (sale_roll < 0.05)
        later = start + ((self.now - start) * rng.uniform(0.2, 0.95, C)).astype(np.int64)
        groups = [  # (customers, purpose, state, when, source)
            (email, "email_marketing", "granted", start, "form"),
            (sms, "sms_marketing", "granted", start, "form"),
            (profiling, "profiling", "granted", start, "form"),
            (sale_in, "data_sale", "granted", start, "form"),
            (sale_out, "data_sale", "withdrawn", start, "gpc"),
            (email_withdrawn, "email_marketing", "withdrawn", later, "unsubscribe"),
        ]
        self.consent_groups = []
        next_id = 1
        for mask, purpose, state, when_all, source in groups:
            members = np.flatnonzero(mask)
            ids = np.arange(next_id, next_id + len(members))
            next_id += len(members)
            self.consent_groups.append((members, ids, purpose, state, when_all[members], source))
        self.n_consent_records = next_id - 1

    def _bgnbd_purchases(self) -> None:
        """Replace the purchases with ones simulated from BgNbdWorld (every customer bought at
        least once, the first time when the record was created), drawn from a stream of their
        own so everything else is the default world's."""
        C = self.n_customers
        world = self.world = BgNbdWorld(customers=C, seed=self.seed, now=self.now)
        rng = np.random.default_rng([self.seed, 3])
        order = np.argsort(world.when, kind="stable")
        cust, when, amount = world.customer[order], world.when[order], world.cents[order]
        n = self.n_purchases = len(cust)
        self.created = np.minimum(self.created, world.first_purchase)
        self.p_customer, self.p_when, self.p_amount = cust, when, amount
        self.p_category = rng.integers(0, len(self.categories), n)
        self.p_product = self.p_category * 5 + rng.integers(0, 5, n)
        self.p_quantity = np.ones(n, dtype=np.int64)
        self.p_channel = rng.integers(0, len(self.channels), n)
        self.p_promo = np.full(n, -1)
        counts = self.purchase_count = np.bincount(cust, minlength=C)
        self.ltv = np.bincount(cust, weights=amount, minlength=C).astype(np.int64)
        self.aov = np.where(counts > 0, (2 * self.ltv + counts) // np.maximum(2 * counts, 1), 0)
        self.first_at = np.full(C, np.iinfo(np.int64).max)
        self.last_at = np.full(C, -1, dtype=np.int64)
        np.minimum.at(self.first_at, cust, when)
        np.maximum.at(self.last_at, cust, when)

    # COPY text, chunk by chunk --------------------------------------------------------------

    def account_rows(self, ids: dict) -> Iterator[str]:
        v, sales = self.v, ids["sales"].tolist()
        sizes = ("1-9", "10-49", "50-249", "250-999", "1000+")
        streets = ("Main", "Park", "Station", "Market", "Church")
        created = _ts(self.acc_created)
        out = []
        for i in range(self.n_accounts):
            country, city = self.cities[self.acc_city[i]]
            if self.acc_household[i]:
                last = country.last_names[int(self.acc_last[i] * len(country.last_names))]
                name, kind, industry, size, web = f"{last} household", "household", "", "", ""
            else:
                stem = (
                    v.COMPANY_WORDS[0][self.acc_stem[i, 0]]
                    + v.COMPANY_WORDS[1][self.acc_stem[i, 1]]
                )
                name, kind = f"{stem} {country.company_suffix}", "company"
                industry, size = v.INDUSTRIES[self.acc_industry[i]], sizes[self.acc_size[i]]
                web = f"https://{v.ascii_slug(stem)}{i + 1}.example.com"
            postal = self.postal[self.acc_city[i] * POSTAL_POOL + self.acc_postal[i]]
            address = f"{self.acc_street[i]} {streets[i % 5]} Street"
            out.append(
                f"{i + 1}\t{name}\t{kind}\t{industry}\t{size}\t{web}\t{address}\t{city.name}\t{postal}\t"
                f"{country.code}\t{sales[self.acc_owner[i]]}\t{created[i]}\t{created[i]}\n"
            )
            if len(out) >= CHUNK_ROWS:
                yield "".join(out)
                out = []
        yield "".join(out)

    def customer_rows(self, ids: dict) -> Iterator[str]:
        from customers.contact_hashes import email_hash, phone_hash

        v, sales = self.v, ids["sales"].tolist()
        slugs: dict[str, str] = {}
        phone_formats = {c.code: c.phone_template.replace("#", "{}") for c in v.COUNTRIES}
        for lo in range(0, self.n_customers, CHUNK_ROWS):
            hi = min(self.n_customers, lo + CHUNK_ROWS)
            created = _ts(self.created[lo:hi])
            birth = _days(self.birth[lo:hi])
            first_at = _ts(np.where(self.last_at[lo:hi] >= 0, self.first_at[lo:hi], 0))
            last_at = _ts(np.maximum(self.last_at[lo:hi], 0))
            ltv, aov = _money(self.ltv[lo:hi]), _money(self.aov[lo:hi])
            count = self.purchase_count[lo:hi].tolist()
            out = []
            for k, i in enumerate(range(lo, hi)):
                country, city = self.cities[self.city[i]]
                gender = self.genders[self.gender[i]]
                firsts = (
                    country.female_names
                    if gender == "female" or (gender != "male" and i % 2)
                    else country.male_names
                )
                first = firsts[int(self.first_u[i] * len(firsts))]
                last = country.last_names[int(self.last_u[i] * len(country.last_names))]
                if self.has_email[i]:
                    fs = slugs.get(first) or slugs.setdefault(first, v.ascii_slug(first))
                    ls = slugs.get(last) or slugs.setdefault(last, v.ascii_slug(last))
                    email = f"{fs}.{ls}.{i + 1}@example.com"
                else:
                    email = "\\N"
                phone = (
                    phone_formats[country.code].format(*f"{self.phone[i]:010d}")
                    if self.has_phone[i]
                    else ""
                )
                attributes = (
                    f'{{"loyalty_tier": "{self.tiers[self.tier[i]]}", "shoe_size": {self.shoe[i]}, '
                    f'"newsletter_frequency": "{("weekly", "monthly", "never")[self.newsletter[i]]}"'
                )
                if self.job[i] >= 0:
                    attributes += f', "job_title": "{v.JOB_TITLES[self.job[i]]}"'
                account = self.account[i] + 1 if self.account[i] >= 0 else "\\N"
                owner = sales[self.owner[i]] if self.owner[i] >= 0 else "\\N"
                band = self.bands[self.band[i]] if self.band[i] >= 0 else ""
                postal = self.postal[self.city[i] * POSTAL_POOL + self.postal_pick[i]]
                bought = count[k] > 0
                out.append(
                    f"{i + 1}\t{account}\tBC-{i + 1:08d}\t{first}\t{last}\t{email}\t{phone}\t{birth[k]}\t"
                    f"{gender}\t{country.code}\t{city.region}\t{city.name}\t{postal}\t{country.language}\t"
                    f"{band}\t{attributes}}}\t{self.sources[self.source[i]]}\t{owner}\t{created[k]}\t"
                    f"{created[k]}\t{ltv[k]}\t{count[k]}\t{first_at[k] if bought else chr(92) + 'N'}\t"
                    f"{last_at[k] if bought else chr(92) + 'N'}\t{aov[k]}\t"
                    f"{email_hash(email) if self.has_email[i] else ''}\t{phone_hash(phone)}\n"
                )
            yield "".join(out)

    def customer_tag_rows(self, ids: dict) -> Iterator[str]:
        tag_ids = ids["tags"]
        customers, tags = np.nonzero(self.tag_matrix)
        for lo in range(0, len(customers), CHUNK_ROWS * 4):
            c = (customers[lo : lo + CHUNK_ROWS * 4] + 1).tolist()
            t = tag_ids[tags[lo : lo + CHUNK_ROWS * 4]].tolist()
            yield "".join(f"{a}\t{b}\n" for a, b in zip(c, t, strict=True))

    def purchase_rows(self, ids: dict) -> Iterator[str]:
        product_ids = ids["products"].tolist()
        categories = self.categories
        channels = self.channels
        promos = self.v.PROMOTION_CODES
        seed = self.seed
        for lo in range(0, self.n_purchases, CHUNK_ROWS):
            hi = min(self.n_purchases, lo + CHUNK_ROWS)
            when = _ts(self.p_when[lo:hi])
            amount = _money(self.p_amount[lo:hi])
            rows = zip(
                range(lo + 1, hi + 1),
                (self.p_customer[lo:hi] + 1).tolist(),
                when,
                amount,
                self.p_quantity[lo:hi].tolist(),
                self.p_channel[lo:hi].tolist(),
                self.p_product[lo:hi].tolist(),
                self.p_category[lo:hi].tolist(),
                self.p_promo[lo:hi].tolist(),
                strict=True,
            )
            yield "".join(
                f"{i}\t{c}\tB{seed}-{i:09d}\text:B{seed}-{i:09d}\t{w}\t{a}\tEUR\t{q}\t{channels[ch]}\t"
                f"{product_ids[p] if p >= 0 else chr(92) + 'N'}\t{categories[cat]}\t"
                f"{promos[pr] if pr >= 0 else ''}\t{w}\n"
                for i, c, w, a, q, ch, p, cat, pr in rows
            )

    def event_rows(self) -> Iterator[str]:
        v = self.v
        properties = {}
        for t, kind in enumerate(self.event_types):
            for d, (sku, name, category, _) in enumerate(v.PRODUCTS):
                if kind in ("page_view", "add_to_cart", "wishlist_add"):
                    value = {"sku": sku, "path": f"/shop/{category}/{sku.lower()}"}
                elif kind == "search":
                    value = {"query": name.split()[-1].lower()}
                else:
                    value = {"campaign": CAMPAIGNS[d % len(CAMPAIGNS)]}
                properties[t, d] = json.dumps(value)
        for lo in range(0, self.n_events, CHUNK_ROWS):
            hi = min(self.n_events, lo + CHUNK_ROWS)
            rows = zip(
                (self.e_customer[lo:hi] + 1).tolist(),
                self.e_type[lo:hi].tolist(),
                _ts(self.e_when[lo:hi]),
                self.e_detail[lo:hi].tolist(),
                strict=True,
            )
            yield "".join(
                f"{c}\t{self.event_types[t]}\t{w}\t{properties[t, d]}\n" for c, t, w, d in rows
            )

    def note_rows(self, ids: dict) -> Iterator[str]:
        sales = ids["sales"].tolist()
        created = _ts(self.n_created)
        due = _days(np.maximum(self.n_due, 0))
        done_at = _ts(np.minimum(self.n_created + 3 * DAY, self.now - 1))
        out = []
        for k in range(self.n_notes):
            i = self.n_customer[k]
            owner = self.owner[i]
            author = sales[owner if owner >= 0 else 0]
            kind = self.note_kinds[self.n_kind[k]]
            body = NOTE_BODIES[kind][self.n_body[k] % len(NOTE_BODIES[kind])]
            has_due = self.n_due[k] >= 0
            done = bool(self.n_done[k])
            out.append(
                f"{i + 1}\t\\N\t{author}\t{kind}\t{body}\t{due[k] if has_due else chr(92) + 'N'}\t"
                f"{'t' if done else 'f'}\t{done_at[k] if done else chr(92) + 'N'}\t{created[k]}\n"
            )
        yield "".join(out)

    def consent_record_rows(self) -> Iterator[str]:
        for members, ids, purpose, state, when, source in self.consent_groups:
            stamps = _ts(when)
            for lo in range(0, len(members), CHUNK_ROWS):
                rows = zip(
                    ids[lo : lo + CHUNK_ROWS].tolist(),
                    (members[lo : lo + CHUNK_ROWS] + 1).tolist(),
                    stamps[lo : lo + CHUNK_ROWS],
                    strict=True,
                )
                yield "".join(
                    f"{r}\t{c}\t{purpose}\t{state}\t{w}\t{source}\tbench generator\n"
                    for r, c, w in rows
                )

    def consent_state_rows(self) -> Iterator[str]:
        """The current state: the newest record per (customer, purpose); later groups win."""
        newest: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        for members, ids, purpose, state, when, _ in self.consent_groups:
            states = np.full(len(members), state == "granted")
            if purpose in newest:
                c0, r0, s0, w0 = newest[purpose]
                c = np.concatenate([c0, members])
                r = np.concatenate([r0, ids])
                s = np.concatenate([s0, states])
                w = np.concatenate([w0, when])
                # Keep the last occurrence of each customer (the later group).
                _, first_of_reversed = np.unique(c[::-1], return_index=True)
                keep = len(c) - 1 - first_of_reversed
                newest[purpose] = (c[keep], r[keep], s[keep], w[keep])
            else:
                newest[purpose] = (members, ids, states, when)
        for purpose, (c, r, s, w) in newest.items():
            stamps = _ts(w)
            for lo in range(0, len(c), CHUNK_ROWS):
                rows = zip(
                    (c[lo : lo + CHUNK_ROWS] + 1).tolist(),
                    s[lo : lo + CHUNK_ROWS].tolist(),
                    stamps[lo : lo + CHUNK_ROWS],
                    r[lo : lo + CHUNK_ROWS].tolist(),
                    strict=True,
                )
                yield "".join(
                    f"{cust}\t{purpose}\t{'granted' if g else 'withdrawn'}\t{stamp}\t{rec}\n"
                    for cust, g, stamp, rec in rows
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.generator", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--customers", type=int, required=True)
    parser.add_argument("--purchases", type=int, default=None, help="required in the default world")
    parser.add_argument(
        "--world",
        choices=WORLDS,
        default="default",
        help="bgnbd: purchases simulated from a known BG/NBD x Gamma-Gamma world (BGNBD_TRUTH)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--deals", type=int, default=0, help="deals laid over the customers")
    parser.add_argument("--reset", action="store_true", help="truncate the customer data first")
    args = parser.parse_args(argv)
    if args.purchases is None:
        if args.world == "default":
            parser.error("--purchases is required in the default world")
        args.purchases = 0
    _django_setup()
    from django.db import connection

    with _advisory_lock(connection):  # one migrate and one generator at a time per database
        _migrate_if_needed()
        marker = _marker_read(connection)
        if (
            not args.reset
            and args.world == "default"
            and marker is not None
            and marker["status"] == "ready"
            and _matches(connection, marker, args.customers, args.purchases, args.seed)
        ):
            if args.deals and not _deals_match(connection, marker, args.deals):
                _deals_generate(
                    connection, deals=args.deals, seed=args.seed, today=marker["generated_on"]
                )
                return 0
            print(
                f"The database already holds this dataset (generated {marker['generated_on']}); nothing to do."
            )
            return 0
        try:
            dataset_generate(
                customers=args.customers,
                purchases=args.purchases,
                seed=args.seed,
                reset=args.reset,
                world=args.world,
            )
        except DatasetError as error:
            print(error, file=sys.stderr)
            return 2
        if args.deals:
            marker = _marker_read(connection)
            _deals_generate(
                connection, deals=args.deals, seed=args.seed, today=marker["generated_on"]
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
