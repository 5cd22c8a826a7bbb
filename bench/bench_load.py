"""Load benchmark: the production process set (gunicorn, workers, beat; DEBUG off) under N
concurrent signed-in clients on loopback.

    DATABASE_URL=postgres://.../crm_bench_load CELERY_BROKER_URL=redis://127.0.0.1:6379/0 \\
        python -m bench.bench_load [--customers 20000] [--clients 20] [--duration 30]

Seeds the dataset (bench.generator: the demo staff, customers with purchases, events, consent),
starts scripts/serve-production.sh on a free port of 127.0.0.1, waits for /readyz, signs each
client in through the login form (as a salesperson or the admin, in turn), then each client
requests a mix of pages and API calls back to back until the time or the request budget is
spent. Prints throughput, p50/p95/p99 per kind of request and overall, and the errors (any
status other than 200, or no answer); writes bench/results/load.json. Bounded: at most 64
clients, 300 seconds and --max-requests requests; it only ever talks to 127.0.0.1.
"""

import argparse
import json
import logging
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
PASSWORD = "demo-pass-2024"
USERS = ["admin", *(f"sales{n}" if n > 1 else "sales" for n in range(1, 11))]
MAX_CLIENTS, MAX_SECONDS = 64, 300


def _mix() -> list[tuple[str, str, int]]:
    """(kind, path, weight): what a signed-in person does most."""
    return [
        ("api customers list", "/api/customers/?page_size=50", 30),
        ("api customer", "/api/customers/{id}/", 15),
        ("customer list page", "/customers/", 15),
        ("customer page", "/customers/{id}/", 15),
        ("customer search page", "/customers/?q=an", 10),
        ("dashboard", "/", 10),
        ("api segments", "/api/segments/", 5),
    ]


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _sign_in(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    page = client.get("/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = client.post(
        "/login/",
        data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
    )
    if answer.status_code != 302:
        raise SystemExit(f"{username} could not sign in ({answer.status_code})")
    return client


def _visible_ids(usernames: list[str]) -> dict[str, list[int]]:
    """Up to 200 customers each user may open (a salesperson sees the ones they own)."""
    from django.contrib.auth import get_user_model

    from customers.selectors import customers_visible_to

    users = get_user_model().objects.filter(username__in=usernames)
    return {
        user.username: list(
            customers_visible_to(user).order_by("?").values_list("pk", flat=True)[:200]
        )
        for user in users
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--purchases", type=int, default=0, help="default: 10 per customer")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--max-requests", type=int, default=50_000)
    parser.add_argument("--gunicorn-workers", type=int, default=0, help="default: gunicorn.conf")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    clients = max(1, min(args.clients, MAX_CLIENTS))
    duration = max(1.0, min(args.duration, MAX_SECONDS))

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    from bench.generator import ensure_dataset

    ensure_dataset(args.customers, args.purchases or args.customers * 10, args.seed)
    visible = _visible_ids(USERS)

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PY": sys.executable,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
        # Many sign-ins and requests from one address and one user in seconds: no lockout, and
        # the API throttle out of the way (it is measured elsewhere).
        "AXES_ENABLED": "false",
        "API_THROTTLE_USER": "100000000/hour",
        "GUNICORN_ACCESS_LOG": "",
        "LOG_LEVEL": "WARNING",
        "SERVE_NAME": f"bench-load-{port}",
    }
    if args.gunicorn_workers:
        env["GUNICORN_WORKERS"] = str(args.gunicorn_workers)
    served = subprocess.Popen(
        ["scripts/serve-production.sh"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if served.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the production set did not become ready")
            time.sleep(0.5)
        result = _drive(base, clients, duration, args.warmup, args.max_requests, visible)
    finally:
        if served.poll() is None:
            os.killpg(served.pid, signal.SIGTERM)
            try:
                served.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(served.pid, signal.SIGKILL)
    result.update(
        customers=args.customers, clients=clients, cores=os.cpu_count(),
        gunicorn_workers=args.gunicorn_workers or "2 x cores + 1",
    )  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "load.json").write_text(json.dumps(result, indent=2) + "\n")
    _print(result)


def _drive(base, clients, duration, warmup, budget, visible) -> dict:
    mix = _mix()
    kinds = [kind for kind, _path, _w in mix]
    weights = [w for _k, _p, w in mix]
    paths = {kind: path for kind, path, _w in mix}
    names = [USERS[i % len(USERS)] for i in range(clients)]
    sessions = [_sign_in(base, name) for name in names]
    lock = threading.Lock()
    samples: list[tuple[str, float, int]] = []
    errors: dict[str, int] = {}
    counter = {"sent": 0}
    start = time.monotonic()
    measure_from = start + warmup
    stop_at = measure_from + duration

    def client_loop(session: httpx.Client, seed: int) -> None:
        rng = random.Random(seed)
        sample = visible.get(names[seed]) or [0]
        while time.monotonic() < stop_at:
            with lock:
                if counter["sent"] >= budget:
                    return
                counter["sent"] += 1
            kind = rng.choices(kinds, weights)[0]
            path = paths[kind].format(id=rng.choice(sample))
            began = time.monotonic()
            try:
                status = session.get(path).status_code
            except httpx.HTTPError as exc:
                status = 0
                error = type(exc).__name__
            else:
                error = f"HTTP {status}" if status != 200 else ""
            elapsed = time.monotonic() - began
            if began >= measure_from:
                with lock:
                    samples.append((kind, elapsed, status))
                    if error:
                        errors[f"{kind}: {error}"] = errors.get(f"{kind}: {error}", 0) + 1

    threads = [
        threading.Thread(target=client_loop, args=(session, i))
        for i, session in enumerate(sessions)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    measured = max(1e-9, min(time.monotonic(), stop_at) - measure_from)
    for session in sessions:
        session.close()

    def figures(values: list[float]) -> dict:
        return {
            "requests": len(values),
            "p50_ms": round(_percentile(values, 0.50) * 1000, 1),
            "p95_ms": round(_percentile(values, 0.95) * 1000, 1),
            "p99_ms": round(_percentile(values, 0.99) * 1000, 1),
            "mean_ms": round(statistics.fmean(values) * 1000, 1) if values else None,
        }

    return {
        "seconds": round(measured, 1),
        "throughput_rps": round(len(samples) / measured, 1),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "overall": figures([s[1] for s in samples]),
        "by_kind": {k: figures([s[1] for s in samples if s[0] == k]) for k in kinds},
    }


def _print(result: dict) -> None:
    print(
        f"\n{result['clients']} clients, {result['customers']} customers, "
        f"{result['seconds']} s measured on {result['cores']} cores"
    )
    print(f"throughput {result['throughput_rps']} requests/s, errors {result['errors']}")
    print(f"{'kind':<24}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    rows = [("overall", result["overall"]), *result["by_kind"].items()]
    for kind, f in rows:
        print(f"{kind:<24}{f['requests']:>9}{f['p50_ms']:>9}{f['p95_ms']:>9}{f['p99_ms']:>9}")
    for kind, count in result["error_kinds"].items():
        print(f"  error: {kind} x{count}")


if __name__ == "__main__":
    main()
