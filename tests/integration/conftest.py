"""Fixtures for tests that run against real services: PostgreSQL, Redis and a Celery worker.

`celery_worker_process` starts `celery -A crm worker` as a separate process, pointed at the
pytest-django test database and at Redis (TEST_REDIS_URL, default redis://127.0.0.1:6379/15), on
queues of its own (a default, a delivery and a heavy queue, routed as in production) so parallel
runs never take each other's tasks. Tasks queued by the test
process go to that worker. Use it together with `transactional_db`, so what the test writes is
committed and visible to the worker.
"""

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from kombu import pools as kombu_pools

from crm.celery import app as celery_app
from crm.queues import task_routes

REPO = Path(__file__).resolve().parents[2]
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


def redis_url() -> str:
    return os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS_URL)


def _redis_problem(url: str) -> str | None:
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:  # any failure means the worker cannot run
        return f"{type(exc).__name__}: {exc}"
    return None


def test_database_url(name: str | None = None) -> str:
    """A DATABASE_URL naming the database this test session really uses (test_<name>), or
    another database `name` on the same server."""
    s = connection.settings_dict
    name = name or s["NAME"]
    auth = quote(s.get("USER") or "")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    if host.startswith("/"):  # a Unix socket (the embedded server): passed as options
        return f"postgres://{auth}@/{name}?host={quote(host)}&port={port}"
    return f"postgres://{auth}@{host}:{port}/{name}"


def test_queues(queue: str) -> dict[str, str]:
    """A test's own default, delivery and heavy queues (crm/queues.py), as worker settings."""
    return {
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "CRM_QUEUE_DELIVERY": f"{queue}-delivery",
        "CRM_QUEUE_HEAVY": f"{queue}-heavy",
    }


def test_queues_route(queue: str, settings) -> None:
    """Send the tasks this process queues to the test's queues, routed as in production."""
    names = test_queues(queue)
    settings.CRM_QUEUE_DELIVERY = names["CRM_QUEUE_DELIVERY"]
    settings.CRM_QUEUE_HEAVY = names["CRM_QUEUE_HEAVY"]
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    celery_app.conf.update(
        task_default_queue=queue,
        task_routes=task_routes(
            delivery=names["CRM_QUEUE_DELIVERY"], heavy=names["CRM_QUEUE_HEAVY"]
        ),
    )


class WorkerProcess:
    """A running Celery worker; `output` holds what it printed so far (for failure messages)."""

    def __init__(self, process: subprocess.Popen, queue: str):
        self.process = process
        self.queue = queue
        self.lines: list[str] = []

    @property
    def output(self) -> str:
        return "".join(self.lines[-200:])

    def wait_until(
        self, condition, *, timeout: float = 60, interval: float = 0.2, what: str = "condition"
    ):
        """Poll `condition()` until it returns something truthy; fail with the worker's log if not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            if self.process.poll() is not None:
                pytest.fail(f"The Celery worker exited ({self.process.returncode}):\n{self.output}")
            time.sleep(interval)
        pytest.fail(f"Timed out after {timeout}s waiting for {what}. Worker log:\n{self.output}")


def celery_app_rebind() -> None:
    """Make the next send use the broker now configured.

    Celery builds its connection pool, producer pool, queue routing and result backend once, on
    first use; a test that ran earlier in this process may have built them for the in-process
    broker of the settings, and messages would silently go there instead of to the worker.
    """
    kombu_pools.reset()  # the process-wide connection and producer pools, keyed by broker URL
    celery_app._pool = None
    celery_app.__dict__.pop("amqp", None)
    celery_app._backend_cache = None
    celery_app._local.__dict__.pop("backend", None)


@pytest.fixture
def celery_worker_process(transactional_db, settings, tmp_path) -> Iterator[WorkerProcess]:
    url = redis_url()
    problem = _redis_problem(url)
    if problem:
        pytest.skip(f"INTEGRATION TEST SKIPPED: Redis at {url} is unreachable ({problem})")

    queue = f"test-{uuid.uuid4().hex[:12]}"
    settings.MEDIA_ROOT = tmp_path / "media"
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "CELERY_BROKER_URL": url,
        "CELERY_RESULT_BACKEND": url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        **test_queues(queue),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "CONN_MAX_AGE": "0",
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "crm",
            "worker",
            "--pool=solo",
            "-Q",
            ",".join(test_queues(queue).values()),
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"{queue}@%h",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    worker = WorkerProcess(process, queue)
    threading.Thread(
        target=lambda: worker.lines.extend(iter(process.stdout.readline, "")), daemon=True
    ).start()

    saved = {
        k: celery_app.conf[k]
        for k in (
            "broker_url",
            "result_backend",
            "task_always_eager",
            "task_default_queue",
            "task_routes",
        )
    }
    celery_app.conf.update(broker_url=url, result_backend=url, task_always_eager=False)
    test_queues_route(queue, settings)
    celery_app_rebind()
    try:
        worker.wait_until(
            lambda: any(" ready." in line for line in worker.lines),
            timeout=90,
            what="the worker to start",
        )
        yield worker
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        celery_app.conf.update(saved)
        celery_app_rebind()


# Campaign delivery: a real SMTP server on loopback, and workers that can be killed and restarted.


class SmtpSink:
    """An aiosmtpd server in a thread that keeps every message it accepts."""

    def __init__(self):
        import socket

        from aiosmtpd.controller import Controller

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.messages: list = []
        self.lock = threading.Lock()
        self.hold_at: int | None = None  # keep the reply to this message (1-based) until released
        self.holding = threading.Event()
        self.released = threading.Event()
        # Seconds the server takes over each message after its final dot, before its answer
        # (other connections go on meanwhile), as a real server that writes to disk does.
        self.answer_delay = 0.0
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                import asyncio
                import email

                if sink.answer_delay:
                    await asyncio.sleep(sink.answer_delay)
                message = email.message_from_bytes(envelope.content)
                with sink.lock:
                    sink.messages.append((list(envelope.rcpt_tos), message))
                    held = len(sink.messages) == sink.hold_at
                if held:  # the sender now waits for this reply; other connections go on
                    sink.holding.set()
                    await asyncio.get_running_loop().run_in_executor(None, sink.released.wait, 60)
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __len__(self) -> int:
        with self.lock:
            return len(self.messages)

    def snapshot(self) -> list:
        with self.lock:
            return list(self.messages)


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.controller.start()
    try:
        yield sink
    finally:
        sink.controller.stop()


@pytest.fixture
def campaign_workers(transactional_db, settings, tmp_path, smtp_sink):
    """Start Celery workers that mail through `smtp_sink`; `start()` returns a WorkerProcess,
    `kill(worker)` SIGKILLs it (no clean shutdown, as when a machine dies)."""
    url = redis_url()
    problem = _redis_problem(url)
    if problem:
        pytest.skip(f"INTEGRATION TEST SKIPPED: Redis at {url} is unreachable ({problem})")
    import signal

    queue = f"test-{uuid.uuid4().hex[:12]}"
    settings.MEDIA_ROOT = tmp_path / "media"
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "CELERY_BROKER_URL": url,
        "CELERY_RESULT_BACKEND": url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        **test_queues(queue),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "CONN_MAX_AGE": "0",
        "PYTHONUNBUFFERED": "1",
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_sink.port}",
        "CAMPAIGNS_SITE_URL": "http://crm.test",
        "CAMPAIGNS_BATCH_SIZE": "200",
    }
    started: list[WorkerProcess] = []

    class Workers:
        sink = smtp_sink
        environment = env  # what the next `start()` passes to the worker

        def start(self, *, concurrency: int = 0) -> WorkerProcess:
            """A worker with the solo pool, or with `concurrency` forked processes (as
            `make run` starts it: --concurrency=2); in a process group of its own."""
            name = f"{queue}-{len(started)}"
            pool = [f"--concurrency={concurrency}"] if concurrency else ["--pool=solo"]
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "crm",
                    "worker",
                    *pool,
                    "-Q",
                    ",".join(test_queues(queue).values()),
                    "--loglevel=WARNING",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-n",
                    f"{name}@%h",
                ],  # fmt: skip
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            worker = WorkerProcess(process, queue)
            threading.Thread(
                target=lambda: worker.lines.extend(iter(process.stdout.readline, "")), daemon=True
            ).start()
            started.append(worker)
            return worker

        def kill(self, worker: WorkerProcess) -> None:
            """SIGKILL the worker and every process it forked at once (a machine that dies)."""
            os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait(timeout=30)

        @staticmethod
        def pool_processes(worker: WorkerProcess) -> list[int]:
            """The pids of the processes a prefork worker runs its tasks in."""
            pid = worker.process.pid
            try:
                with open(f"/proc/{pid}/task/{pid}/children") as children:
                    return [int(child) for child in children.read().split()]
            except OSError:
                return []

        def kill_pool_process(self, pid: int) -> None:
            """SIGKILL one process of a prefork worker's pool (the worker forks a new one and
            puts the task it was running back on the queue)."""
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    saved = {
        k: celery_app.conf[k]
        for k in (
            "broker_url",
            "result_backend",
            "task_always_eager",
            "task_default_queue",
            "task_routes",
        )
    }
    celery_app.conf.update(broker_url=url, result_backend=url, task_always_eager=False)
    test_queues_route(queue, settings)
    celery_app_rebind()
    try:
        yield Workers()
    finally:
        for worker in started:
            if worker.process.poll() is None:
                os.killpg(worker.process.pid, signal.SIGTERM)
                try:
                    worker.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.process.pid, signal.SIGKILL)
                    worker.process.wait()
        celery_app.conf.update(saved)
        celery_app_rebind()
