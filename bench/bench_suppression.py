"""Suppression benchmark: who may be emailed, with the suppression list checked on stored hashes.

    DATABASE_URL=postgres://.../crm_bench python -m bench.bench_suppression [--tier M|S|XS] [--reps 3]

`customers_eligible_for("email_marketing")` (consent granted AND neither the email nor the phone
on the suppression list) counted three ways, alternately in the same run, on the same data:

- ours: the query the product runs, which compares the salted hashes stored on each customer
  row (customers.email_hash, phone_hash) with the list;
- anchor "query-time hash": the same query hashing every customer's email and phone with
  sha256() while it runs, as the product did before the hashes were stored;
- anchor "hand-written SQL": one SELECT count(*) with NOT EXISTS on the stored hashes.

The counts must be equal or the figure is void. The target against query-time hashing is < 0.5,
not less: both queries also join the consent states, which the hashes do not change. A suppression list of 1% of the emails and 0.5%
of the phones is written first, inside a transaction that is rolled back at the end, so the
shared benchmark database is left as it was. Writes bench/results/suppression.json.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
django.setup()

from django.db import connection, transaction  # noqa: E402
from django.db.models import CharField, Exists, F, OuterRef, Value  # noqa: E402
from django.db.models.functions import Concat, Lower, Replace, Trim  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from bench.generator import ensure_dataset  # noqa: E402
from customers.contact_hashes import PHONE_NOISE, Sha256Hex, _salt  # noqa: E402
from customers.models import Customer  # noqa: E402
from privacy.models import ConsentState, ConsentStatus, Suppression  # noqa: E402
from privacy.selectors import customers_eligible_for  # noqa: E402

TIERS = {"XS": (2_000, 40_000), "S": (100_000, 2_000_000), "M": (1_000_000, 10_000_000)}
RESULTS = Path(__file__).resolve().parent / "results"

HAND_WRITTEN = """
    SELECT count(*) FROM customers_customer c
    WHERE EXISTS (SELECT 1 FROM privacy_consentstate s WHERE s.customer_id = c.id
                  AND s.purpose_id = 'email_marketing' AND s.state = 'granted')
      AND NOT EXISTS (SELECT 1 FROM privacy_suppression x
                      WHERE x.kind = 'email' AND x.value_hash = c.email_hash)
      AND NOT EXISTS (SELECT 1 FROM privacy_suppression x
                      WHERE x.kind = 'phone' AND x.value_hash = c.phone_hash)
"""


class _Rollback(Exception):
    pass


def _query_time_hash_count() -> int:
    """The eligible count as it was computed before the hashes were stored on the rows."""
    phone = Lower(Trim(F("phone")))
    for char in PHONE_NOISE:
        phone = Replace(phone, Value(char), Value(""))
    granted = ConsentState.objects.filter(
        customer_id=OuterRef("pk"), purpose_id="email_marketing", state=ConsentStatus.GRANTED
    )
    emails = Suppression.objects.filter(kind=Suppression.Kind.EMAIL).values("value_hash")
    phones = Suppression.objects.filter(kind=Suppression.Kind.PHONE).values("value_hash")
    return (
        Customer.objects.filter(Exists(granted))
        .alias(
            _email=Sha256Hex(
                Concat(Value(_salt()), Lower(Trim(F("email"))), output_field=CharField())
            ),
            _phone=Sha256Hex(Concat(Value(_salt()), phone, output_field=CharField())),
        )
        .exclude(_email__in=emails)
        .exclude(_phone__in=phones)
        .count()
    )


def _hand_written_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute(HAND_WRITTEN)
        return cursor.fetchone()[0]


def _suppress_sample() -> tuple[int, int]:
    """Suppress 1% of the stored emails and 0.5% of the phones (by their stored hashes)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO privacy_suppression (kind, value_hash, reason, created_at) "
            "SELECT 'email', email_hash, 'erasure', now() FROM customers_customer "
            "WHERE email_hash <> '' AND id % 100 = 7 ON CONFLICT DO NOTHING"
        )
        emails = cursor.rowcount
        cursor.execute(
            "INSERT INTO privacy_suppression (kind, value_hash, reason, created_at) "
            "SELECT 'phone', phone_hash, 'unsubscribe', now() FROM customers_customer "
            "WHERE phone_hash <> '' AND id % 200 = 3 ON CONFLICT DO NOTHING"
        )
        return emails, cursor.rowcount


def _timed(fn) -> tuple[float, int]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def run(tier: str, reps: int, seed: int) -> list[dict]:
    customers, purchases = TIERS[tier]
    ensure_dataset(customers=customers, purchases=purchases, seed=seed)
    rows: list[dict] = []
    try:
        with transaction.atomic():
            emails, phones = _suppress_sample()
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE privacy_suppression")
            ours_fn = customers_eligible_for("email_marketing").count
            cases = {
                "query-time hash": _query_time_hash_count,
                "hand-written SQL": _hand_written_count,
            }
            times: dict[str, list[float]] = {"ours": [], **{k: [] for k in cases}}
            counts: dict[str, set[int]] = {"ours": set(), **{k: set() for k in cases}}
            for fn in [ours_fn, *cases.values()]:
                fn()  # warm-up
            with CaptureQueriesContext(connection) as queries:
                ours_fn()
            for _ in range(reps):
                for name, fn in [("ours", ours_fn), *cases.items()]:
                    seconds, count = _timed(fn)
                    times[name].append(seconds)
                    counts[name].add(count)
            ours = statistics.median(times["ours"])
            for anchor in cases:
                same = len(counts["ours"] | counts[anchor]) == 1
                anchor_s = statistics.median(times[anchor])
                rows.append(
                    {
                        "case": "eligible for email, suppression checked",
                        "tier": tier,
                        "ours_s": round(ours, 4),
                        "anchor": anchor,
                        "anchor_s": round(anchor_s, 4),
                        "ratio": round(ours / anchor_s, 3) if same else None,
                        # Both queries also join the consent states: that part stays.
                        "target": "< 0.5" if anchor == "query-time hash" else "<= 1.5",
                        "eligible": sorted(counts["ours"]),
                        "suppressed_emails": emails,
                        "suppressed_phones": phones,
                        "statements": len(queries),
                        "same_rows": same,
                    }
                )
            raise _Rollback
    except _Rollback:
        pass
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
        f"{TIERS[args.tier][0]:,} customers / {TIERS[args.tier][1]:,} purchases; "
        f"{rows[0]['suppressed_emails']:,} emails and {rows[0]['suppressed_phones']:,} phones "
        "suppressed"
    )
    print("case | tier | ours_s | anchor | anchor_s | ratio | target")
    for r in rows:
        ratio = r["ratio"] if r["same_rows"] else "VOID (counts differ)"
        print(
            f"{r['case']} | {r['tier']} | {r['ours_s']:.3f} | {r['anchor']} | "
            f"{r['anchor_s']:.3f} | {ratio} | {r['target']}"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "suppression.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
