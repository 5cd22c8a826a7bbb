"""Seeded deals for the benchmark dataset, laid over the generated customers and accounts.

The demo's two pipelines (new business, renewals) and `deals` deals: about 45% open, spread over
the open stages (more in the early ones), the rest closed, won or lost. Each deal has the history
of how it got where it is (one stage change per stage it entered), is on a customer (with the
customer's account) or on an account alone, and belongs to that record's owner, so per-owner
rules see a tenth of the deals each. Whether a closed deal was won depends on its source and
amount (and noise), so a win-probability model has something to learn. Every value comes from one
numpy PCG64 stream (seed, 4); rows are written with COPY in the transaction that emptied the
deal tables.
"""

import datetime as dt
import time
from collections.abc import Callable, Iterator

import numpy as np

DAY = 86_400
CHUNK = 100_000
OPEN_SHARE = 0.45
ON_CUSTOMER = 0.6
SOURCES = ("referral", "web", "event", "outbound", "partner")
# Log-odds of winning a closed deal by source, and per doubling of the amount.
SOURCE_LOGIT = np.array([1.0, 0.0, -0.3, -0.8, 0.5])
AMOUNT_LOGIT = -0.35
DEAL_COLUMNS = (
    "id",
    "pipeline_id",
    "stage_id",
    "name",
    "amount",
    "currency",
    "expected_close_date",
    "owner_id",
    "probability",
    "source",
    "account_id",
    "customer_id",
    "next_step",
    "lost_reason",
    "stage_entered_at",
    "closed_at",
    "created_at",
    "updated_at",
)
CHANGE_COLUMNS = ("id", "deal_id", "from_stage_id", "to_stage_id", "changed_at", "changed_by_id")
NULL = "\\N"


def _ts(seconds: int) -> str:
    return dt.datetime.fromtimestamp(int(seconds), dt.UTC).strftime("%Y-%m-%d %H:%M:%S+00")


def _day(seconds: int) -> str:
    return dt.datetime.fromtimestamp(int(seconds), dt.UTC).strftime("%Y-%m-%d")


def deals_generate(
    *, deals: int, seed: int, today: dt.date, log: Callable[[str], None] = print
) -> float:
    """Replace every pipeline and deal with the seeded ones; returns the seconds it took."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from customers.models import Account, Customer
    from deals.demo import DEAL_NAMES, LOST_REASONS, PIPELINES
    from deals.models import Activity, Deal, DealLine, Pipeline, Stage, StageChange
    from deals.services import pipeline_create

    started = time.monotonic()
    q = connection.ops.quote_name
    tables = [q(m._meta.db_table) for m in (Activity, DealLine, StageChange, Deal, Stage, Pipeline)]
    now = int(dt.datetime.combine(today, dt.time(0, 0), tzinfo=dt.UTC).timestamp())
    rng = np.random.default_rng([seed, 4])
    freeze = " WITH (FREEZE)" if not connection.in_atomic_block else ""
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cur.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        pipelines = [
            pipeline_create(
                name=name, stages=stages, creates_purchases=purchases, is_default=default
            )
            for name, purchases, default, stages in PIPELINES
        ]
        paths = []
        for pipeline in pipelines:
            stages = list(pipeline.stages.order_by("position"))
            paths.append(
                {
                    "open": [s.pk for s in stages if s.outcome == Stage.Outcome.OPEN],
                    "won": next(s.pk for s in stages if s.outcome == Stage.Outcome.WON),
                    "lost": next(s.pk for s in stages if s.outcome == Stage.Outcome.LOST),
                }
            )
        sales = list(
            get_user_model()
            .objects.filter(username__regex=r"^sales[0-9]*$")
            .order_by("id")
            .values_list("pk", flat=True)
        )
        n_customers = Customer.objects.count()
        n_accounts = Account.objects.count()
        if deals and not (n_customers and n_accounts and sales):
            raise RuntimeError("deals: generate customers, accounts and sales staff first")

        D = deals
        pipeline = (rng.random(D) >= 0.8).astype(np.int64)
        on_customer = rng.random(D) < ON_CUSTOMER
        customer = rng.integers(1, max(n_customers, 1) + 1, D)
        account = rng.integers(1, max(n_accounts, 1) + 1, D)
        cents = np.maximum(100, np.rint(rng.lognormal(8.3, 1.0, D) * 100)).astype(np.int64)
        source = rng.integers(0, len(SOURCES), D)
        is_open = rng.random(D) < OPEN_SHARE
        logit = (
            -0.4
            + SOURCE_LOGIT[source]
            + AMOUNT_LOGIT * np.log2(cents / 400_000)
            + rng.normal(0, 0.7, D)
        )
        won = ~is_open & (rng.random(D) < 1 / (1 + np.exp(-logit)))
        depth_u = rng.random(D)  # how far along the open stages a deal got
        created = np.where(
            is_open,
            now - (rng.uniform(1, 180, D) * DAY).astype(np.int64),
            now - (rng.uniform(30, 700, D) * DAY).astype(np.int64),
        )
        step_days = rng.exponential(9, (D, 6)) + 0.5
        close_in = rng.integers(0, 181, D)
        override = rng.random(D) < 0.1
        override_value = rng.integers(5, 96, D)
        name_pick = rng.integers(0, len(DEAL_NAMES), D)
        lost_reason = rng.integers(0, len(LOST_REASONS), D)
        next_step = rng.random(D) < 0.5

        # The owners of the records the deals are on, read in one statement each.
        with connection.cursor() as cur:
            cur.execute(
                f"SELECT c.id, c.account_id, c.owner_id FROM {q(Customer._meta.db_table)} c "
                "WHERE c.id = ANY(%s)",
                [sorted(set(customer[on_customer].tolist()))],
            )
            customer_rows = {r[0]: (r[1], r[2]) for r in cur.fetchall()}
            cur.execute(
                f"SELECT a.id, a.owner_id FROM {q(Account._meta.db_table)} a WHERE a.id = ANY(%s)",
                [sorted(set(account[~on_customer].tolist()))],
            )
            account_owner = dict(cur.fetchall())

        def rows() -> Iterator[tuple[str, str]]:
            deal_out, change_out = [], []
            change_id = 0
            for i in range(D):
                path = paths[pipeline[i]]
                opens = path["open"]
                if is_open[i]:
                    depth = int(depth_u[i] ** 1.6 * len(opens))
                    walk = opens[: depth + 1]
                elif won[i]:
                    walk = [*opens, path["won"]]
                else:
                    walk = [*opens[: int(depth_u[i] * len(opens)) + 1], path["lost"]]
                moments = [int(created[i])]
                for k in range(1, len(walk)):
                    moments.append(min(now - 1, moments[-1] + int(step_days[i, k - 1] * DAY)))
                if on_customer[i] and int(customer[i]) in customer_rows:
                    cust_id = int(customer[i])
                    acc_id, owner = customer_rows[cust_id]
                else:
                    cust_id, acc_id = None, int(account[i])
                    owner = account_owner.get(acc_id)
                if owner is None:
                    owner = sales[i % len(sales)]
                entered = moments[-1]
                closed = not is_open[i]
                close_date = _day(entered) if closed else _day(now + int(close_in[i]) * DAY)
                lost = closed and not won[i]
                deal_out.append(
                    "\t".join(
                        (
                            str(i + 1),
                            str(pipelines[pipeline[i]].pk),
                            str(walk[-1]),
                            f"{DEAL_NAMES[name_pick[i]]} #{i + 1}",
                            f"{cents[i] // 100}.{cents[i] % 100:02d}",
                            "EUR",
                            close_date,
                            str(owner),
                            str(override_value[i]) if override[i] and not closed else NULL,
                            SOURCES[source[i]],
                            NULL if acc_id is None else str(acc_id),
                            NULL if cust_id is None else str(cust_id),
                            "Call back" if next_step[i] and not closed else "",
                            LOST_REASONS[lost_reason[i]] if lost else "",
                            _ts(entered),
                            _ts(entered) if closed else NULL,
                            _ts(created[i]),
                            _ts(entered),
                        )
                    )
                    + "\n"
                )
                for k, stage_id in enumerate(walk):
                    change_id += 1
                    change_out.append(
                        f"{change_id}\t{i + 1}\t{walk[k - 1] if k else NULL}\t{stage_id}\t"
                        f"{_ts(moments[k])}\t{owner}\n"
                    )
                if len(deal_out) >= CHUNK:
                    yield "".join(deal_out), "".join(change_out)
                    deal_out, change_out = [], []
            yield "".join(deal_out), "".join(change_out)

        deal_chunks, change_chunks = [], []
        for deal_text, change_text in rows():
            deal_chunks.append(deal_text)
            change_chunks.append(change_text)
        with connection.cursor() as cur:
            raw = cur.cursor
            for table, columns, chunks in (
                (q(Deal._meta.db_table), DEAL_COLUMNS, deal_chunks),
                (q(StageChange._meta.db_table), CHANGE_COLUMNS, change_chunks),
            ):
                with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN{freeze}") as copy:
                    for chunk in chunks:
                        copy.write(chunk)
            for table in (q(Deal._meta.db_table), q(StageChange._meta.db_table)):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)"
                )
    with connection.cursor() as cur:
        for table in tables:
            cur.execute(f"ANALYZE {table}")
    seconds = time.monotonic() - started
    log(f"Generated {deals:,} deals with their stage history in {seconds:.1f} s")
    return seconds
