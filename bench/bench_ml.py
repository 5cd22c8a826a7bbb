"""ML benchmark: feature extraction, KMeans against MiniBatchKMeans, label write-back, pipeline.

    DATABASE_URL=postgres://.../crm_bench python -m bench.bench_ml [--tier M|S|XS] [--reps 3]
        [--cases features,clustering,writeback,predictions]

- features: the RFM features loaded into pandas (one GROUP BY, COPY to pandas) against one
  hand-written `CREATE TEMP TABLE AS SELECT customer_id, max(..), count(*), sum(..) FROM purchase
  GROUP BY 1`, alternately; the row counts must be equal or the figure is void;
- fit: KMeans and MiniBatchKMeans (k=5, the project's settings) on the scaled clustering features,
  with the inertia of both on all customers and their ratio;
- write-back: cluster labels for every customer (COPY + upsert) and the membership of each cluster's
  segment (set-based), in rows per second;
- pipeline: a whole ML segment training with MiniBatchKMeans (features, fit, profiles, names,
  PCA sample, write-back), against the 2-minute target;
- predictions: lifetime value (BG/NBD x Gamma-Gamma fit and write-back of every buyer), then the
  churn and value models (features, BG/NBD features, candidates, evaluation) and the scoring of
  every buyer with reasons and its write-back, against the 60-second target; with the process's
  CPU seconds beside the wall-clock ones (on a shared machine the difference is other people's
  work and the database's).
Prints the table of BENCHMARKS.md and writes bench/results/ml.json.
"""

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import time
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
django.setup()

import numpy as np  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from bench.generator import ensure_dataset  # noqa: E402
from segments.ml import bulk, features  # noqa: E402
from segments.ml.models import CustomerScore, MLSegment  # noqa: E402
from segments.ml.scoring import make_model, make_scaler  # noqa: E402
from segments.ml.services import (  # noqa: E402
    lifetime_model_fit,
    ml_segment_create,
    ml_segment_delete,
    ml_segment_train,
    predictive_score_all,
    predictive_train,
)

TIERS = {"XS": (2_000, 40_000), "S": (100_000, 2_000_000), "M": (1_000_000, 10_000_000)}
RESULTS = Path(__file__).resolve().parent / "results"
WINDOW = 36500  # all history, so the project's rows equal the anchor's
ANCHOR = (
    "CREATE TEMP TABLE bench_rfm AS SELECT customer_id, max(purchased_at) AS last_at, "
    "count(*) AS n, sum(amount) AS total FROM customers_purchase GROUP BY 1"
)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def anchor_features() -> int:
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_rfm")
        cursor.execute(ANCHOR)
        cursor.execute("SELECT count(*) FROM bench_rfm")
        return cursor.fetchone()[0]


def backend_cpu() -> float | None:
    """CPU seconds the database server process of this connection has used (when the server runs
    on this machine); parallel workers' are not included (PGOPTIONS="-c
    max_parallel_workers_per_gather=0" keeps every statement in this process)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tier", default="M", choices=TIERS)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--cases",
        default="features,clustering,writeback,predictions",
        help="comma-separated: features, clustering (fit and whole pipeline), writeback, predictions",
    )
    args = parser.parse_args()
    cases = set(args.cases.split(","))
    load_start = os.getloadavg()[0]
    customers, purchases = TIERS[args.tier]
    ensure_dataset(customers, purchases, args.seed)
    reference = timezone.now()
    rows: list[dict] = []

    def row(case, ours, anchor, anchor_s, target, **extra):
        ratio = ours / anchor_s if anchor_s else None
        rows.append(
            {"case": case, "tier": args.tier, "ours_s": round(ours, 3), "anchor": anchor,
             "anchor_s": round(anchor_s, 3) if anchor_s else None,
             "ratio": round(ratio, 3) if ratio else None, "target": target, **extra}
        )  # fmt: skip

    inertia_ratio = None
    if cases & {"features", "clustering", "writeback"}:
        # 1. Feature extraction against the hand-written GROUP BY, alternately.
        anchor_features()  # warm-up
        features.rfm_frame(reference=reference, window_days=WINDOW)
        ours_t, anchor_t = [], []
        for _ in range(args.reps):
            t, n_anchor = timed(anchor_features)
            anchor_t.append(t)
            t, frame = timed(lambda: features.rfm_frame(reference=reference, window_days=WINDOW))
            ours_t.append(t)
            assert len(frame) == n_anchor, f"void: {len(frame)} rows against {n_anchor}"
        row("RFM features into pandas", statistics.median(ours_t), "GROUP BY customer (CTAS)",
            statistics.median(anchor_t), "≤ 1.3×", rows_out=len(frame))  # fmt: skip
        groups = ["rfm", "aov", "purchase_interval", "tenure"]
        t, clustering = timed(
            lambda: features.customer_features(groups=groups, reference=reference, window_days=730)
        )
        row("clustering features (rfm, aov, interval, tenure)", t, "GROUP BY customer (CTAS)",
            statistics.median(anchor_t), "info", customers=len(clustering))  # fmt: skip
    if "clustering" in cases:
        # 2. KMeans against MiniBatchKMeans on all customers.
        scaler = Pipeline(make_scaler("log_standard"))
        x = np.nan_to_num(scaler.fit_transform(clustering.to_numpy(dtype="float64")))
        fits = {}
        with threadpool_limits(limits=args.threads):
            for algorithm in ("kmeans", "minibatch_kmeans"):
                model = make_model(algorithm, 5, 0)
                t, _ = timed(lambda m=model: m.fit(x))
                fits[algorithm] = (t, -model.score(x))  # inertia on all customers
        inertia_ratio = fits["minibatch_kmeans"][1] / fits["kmeans"][1]
        row("MiniBatchKMeans fit (k=5)", fits["minibatch_kmeans"][0], "KMeans fit (k=5, n_init=4)",
            fits["kmeans"][0], "faster, inertia ratio ≤ 1.05",
            inertia_ratio=round(inertia_ratio, 4))  # fmt: skip

    if cases & {"clustering", "writeback"}:
        # 3. Label write-back: labels for every customer, then each cluster's segment membership.
        ml_segment = ml_segment_create(
            name=f"bench {dt.datetime.now():%H%M%S}", owner=None, features=groups,
            algorithm="minibatch_kmeans", k=5, seed=0,
        )  # fmt: skip
        try:
            t, version = timed(lambda: ml_segment_train(ml_segment=ml_segment))
            row("whole pipeline (features, MiniBatchKMeans, profiles, write-back)", t,
                "target", 120.0, "< 120 s", customers=version.customers,
                silhouette=version.metrics.get("silhouette"))  # fmt: skip
            labels = np.random.default_rng(1).integers(0, 5, len(clustering))
            import pandas as pd

            frame = pd.DataFrame({"customer_id": clustering.index.to_numpy(), "label": labels})
            at = timezone.now()

            def write_back() -> int:
                bulk.assignments_write(ml_segment_id=ml_segment.pk, frame=frame, at=at)
                moved = 0
                for cluster in ml_segment.clusters.select_related("segment"):
                    run = bulk.cluster_members_sync(
                        segment=cluster.segment,
                        ml_segment_id=ml_segment.pk,
                        label=cluster.label,
                        at=at,
                    )
                    moved += run.joined + run.left
                return moved

            t, moved = timed(write_back)
            row("label write-back (random relabel: upsert + membership diff)", t, "rows/s", None,
                "info", rows=len(frame), rows_per_s=round(len(frame) / t),
                membership_changes=moved)  # fmt: skip
        finally:
            ml_segment_delete(ml_segment=MLSegment.objects.get(pk=ml_segment.pk))

    if "predictions" in cases:
        # 5. Predictions: lifetime value, churn and value models, scoring of every buyer.
        cpu, server = time.process_time(), backend_cpu()
        t_lifetime, lifetime = timed(lambda: lifetime_model_fit())
        t_train, model = timed(lambda: predictive_train(min_buyers=1, min_history_days=1))
        t_score = 0.0
        if not model.active:  # refused against the baselines: score anyway, to time it
            t_score, _ = timed(lambda: predictive_score_all(model=model))
        cpu = time.process_time() - cpu
        server = backend_cpu() - server if server is not None else None
        total = t_lifetime + t_train + t_score
        scored = CustomerScore.objects.filter(computed_at__isnull=False).exclude(churn_risk=None)
        row("predictions (lifetime value, churn and value models, scoring and write-back of "
            "every buyer)", total, "target", 60.0, "< 60 s", met=total < 60,
            python_cpu_s=round(cpu, 3),
            server_cpu_s=round(server, 3) if server is not None else None, lifetime_s=round(t_lifetime, 3),
            train_s=round(t_train, 3), score_s=round(t_score, 3), buyers=lifetime.customers,
            scored=scored.count(), churn_model=model.metrics["churn"]["model"],
            value_model=model.metrics["value"]["model"], churn_auc=model.metrics["roc_auc"],
            margins=model.metrics["margins"], activated=model.active,
            refused=model.metrics.get("refused", ""))  # fmt: skip
    peak = peak_mb()
    print(f"\nML benchmark, tier {args.tier} ({customers:,} customers, {purchases:,} purchases), "
          f"nproc {os.cpu_count()}, peak memory {peak:,.0f} MB\n")  # fmt: skip
    print("case | tier | ours_s | anchor | anchor_s | ratio | target")
    print("--- | --- | --- | --- | --- | --- | ---")
    for r in rows:
        print(f"{r['case']} | {r['tier']} | {r['ours_s']} | {r['anchor']} | {r['anchor_s']} | "
              f"{r['ratio']} | {r['target']}")  # fmt: skip
    load_end = os.getloadavg()[0]
    print(f"\n1-minute load average: {load_start:.1f} at start, {load_end:.1f} at end")
    if inertia_ratio is not None:
        print(f"inertia MiniBatch / KMeans: {inertia_ratio:.4f}")
    for r in rows:
        if "python_cpu_s" in r:
            print(f"predictions: {r['ours_s']} s wall (lifetime {r['lifetime_s']}, training "
                  f"{r['train_s']}, scoring {r['score_s']}); CPU: {r['python_cpu_s']} s in this "
                  f"process, {r['server_cpu_s']} s in its database server process; "
                  f"{r['scored']:,} customers scored; met: {r['met']}")  # fmt: skip
    for r in rows:
        if "rows_per_s" in r:
            print(
                f"label write-back: {r['rows']:,} rows in {r['ours_s']} s = {r['rows_per_s']:,} rows/s"
            )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ml.json").write_text(
        json.dumps(
            {"rows": rows, "peak_mb": peak, "load_start": load_start, "load_end": load_end},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
