"""Lifetime value against a known world: the product's fit on purchases simulated from BG/NBD x
Gamma-Gamma with stated parameters (bench.generator --world bgnbd, BGNBD_TRUTH).

    DATABASE_URL=postgres://.../crm_bench_clv python -m bench.bench_clv [--customers 100000] [--seed 1]

Generates the world into the database unless it already holds it (generated today), then runs
`lifetime_model_fit` as of yesterday (every simulated purchase is before today's midnight, the
world's "now") with a 12-month undiscounted horizon: the SQL summary, the maximum-likelihood fits
and the forecast of every customer, as in production. Targets: every fitted parameter within 10%
of the truth, and the forecast's totals (purchases and spend) within 5% of what the simulated
customers do in the year after "now" (kept by BgNbdWorld, never written). Prints the table of
BENCHMARKS.md and writes bench/results/clv.json.
"""

import argparse
import datetime as dt
import json
import os
import time
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench import generator  # noqa: E402
from segments.ml.services import lifetime_model_fit  # noqa: E402
from segments.ml.services.runs import _reference  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def world_ensure(customers: int, seed: int, world: generator.BgNbdWorld) -> None:
    """Generate the world unless the database holds exactly it, generated today."""
    generator.database_ensure()
    with generator._advisory_lock(connection):
        generator._migrate_if_needed()
        marker = generator._marker_read(connection)
        if (
            marker is not None
            and marker["status"] == "ready"
            and marker["generated_on"] == dt.datetime.now(dt.UTC).date()
            and generator._matches(connection, marker, customers, len(world.customer), seed)
        ):
            return
        generator.dataset_generate(
            customers=customers, purchases=0, seed=seed, reset=True, world="bgnbd"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    today = dt.datetime.now(dt.UTC).date()
    now = int(dt.datetime.combine(today, dt.time(0, 0), tzinfo=dt.UTC).timestamp())
    world = generator.BgNbdWorld(customers=args.customers, seed=args.seed, now=now)
    world_ensure(args.customers, args.seed, world)
    as_of = timezone.localdate() - dt.timedelta(days=1)
    assert int(_reference(as_of).timestamp()) == now, (
        "run with TIME_ZONE=UTC: the world ends at UTC midnight"
    )

    started = time.perf_counter()
    model = lifetime_model_fit(as_of=as_of, horizon_days=365, annual_discount=0.0)
    seconds = time.perf_counter() - started

    fitted = model.bgnbd | model.gamma_gamma
    rows = []
    for name, truth in generator.BGNBD_TRUTH.items():
        error = fitted[name] / truth - 1
        rows.append(
            {"case": f"parameter {name}", "truth": truth, "ours": round(fitted[name], 4),
             "error": round(error, 4), "target": "within 10%", "met": abs(error) <= 0.10}
        )  # fmt: skip
    for case, predicted, actual in (
        (
            "12-month purchases",
            model.metrics["expected_purchases_total"],
            world.future_purchases.sum(),
        ),
        ("12-month spend", model.metrics["lifetime_value_total"], world.future_spend.sum()),
    ):
        error = predicted / actual - 1
        rows.append(
            {"case": case, "truth": round(float(actual), 2), "ours": round(float(predicted), 2),
             "error": round(error, 4), "target": "within 5%", "met": abs(error) <= 0.05}
        )  # fmt: skip
    load_end = os.getloadavg()[0]
    print(
        f"\nLifetime value against a known world: {args.customers:,} customers, "
        f"{len(world.customer):,} purchases (seed {args.seed}); fit and forecast of every "
        f"customer in {seconds:.1f} s; load average {load_start:.1f} at start, {load_end:.1f} "
        "at end\n"
    )
    print("case | truth | ours | error | target | met")
    print("--- | --- | --- | --- | --- | ---")
    for r in rows:
        print(
            f"{r['case']} | {r['truth']} | {r['ours']} | {r['error']:+.2%} | {r['target']} | "
            f"{'yes' if r['met'] else 'no'}"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "clv.json").write_text(
        json.dumps(
            {"rows": rows, "seconds": seconds, "load_start": load_start, "load_end": load_end},
            indent=2,
            default=float,
        )
    )


if __name__ == "__main__":
    main()
