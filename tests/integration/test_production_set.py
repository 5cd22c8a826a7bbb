"""The production process set of deploy/ (scripts/serve-production.sh, what `make serve` runs):
gunicorn with DEBUG off, a delivery worker, a heavy-jobs worker and one beat. It becomes ready,
a person signs in and imports a file, a campaign goes out to a real SMTP server, and SIGTERM
stops every process."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import httpx
import pytest
from rest_framework.authtoken.models import Token

from crm.roles import Role
from customers.models import Customer, ImportJob
from privacy.services import consent_grant
from segments.models import RefreshRun
from tests.conftest import DEMO_PASSWORD
from tests.integration import conftest as integration
from tests.integration.conftest import REPO, _redis_problem, redis_url

pytestmark = pytest.mark.integration

CSV = (
    "first_name,last_name,email,country\n"
    "Ada,Lovelace,ada@example.com,DE\n"
    "Grace,Hopper,grace@example.com,DE\n"
    "Alan,Turing,alan@example.com,GB\n"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ProductionSet:
    def __init__(self, process: subprocess.Popen, url: str):
        self.process = process
        self.url = url
        self.lines: list[str] = []
        threading.Thread(
            target=lambda: self.lines.extend(iter(process.stdout.readline, "")), daemon=True
        ).start()

    @property
    def output(self) -> str:
        return "".join(self.lines[-150:])

    def wait_until(self, condition, *, timeout: float = 240, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            if self.process.poll() is not None:
                pytest.fail(
                    f"The production set exited ({self.process.returncode}):\n{self.output}"
                )
            time.sleep(0.5)
        pytest.fail(f"Timed out waiting for {what}:\n{self.output}")


@pytest.fixture
def production_set(transactional_db, smtp_sink, tmp_path):
    problem = _redis_problem(redis_url())
    if problem:
        pytest.skip(f"INTEGRATION TEST SKIPPED: Redis is unreachable ({problem})")
    port = _free_port()
    queue = f"prod-{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "PY": sys.executable,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": integration.test_database_url(),
        "CELERY_BROKER_URL": redis_url(),
        "CELERY_RESULT_BACKEND": redis_url(),
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "CRM_QUEUE_DELIVERY": f"{queue}-delivery",
        "CRM_QUEUE_HEAVY": f"{queue}-heavy",
        "SERVE_NAME": queue,
        "SERVE_WORKER_CONCURRENCY": "1",
        "GUNICORN_WORKERS": "2",
        "CRM_HEARTBEAT_INTERVAL": "2",
        "CONN_MAX_AGE": "0",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "PRIVACY_ERASURE_LOG_PATH": str(tmp_path / "erasures.jsonl"),
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_sink.port}",
        "CAMPAIGNS_SITE_URL": f"http://127.0.0.1:{port}",
    }
    for name in ("DEBUG", "SECRET_KEY", "PROMETHEUS_MULTIPROC_DIR", "TEST_DATABASE_URL"):
        env.pop(name, None)
    process = subprocess.Popen(
        ["scripts/serve-production.sh"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    served = ProductionSet(process, f"http://127.0.0.1:{port}")
    try:
        yield served
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _ready(served: ProductionSet):
    try:
        answer = httpx.get(f"{served.url}/readyz", timeout=30)
    except httpx.HTTPError:
        return None
    if answer.status_code != 200 or answer.json()["checks"]["workers"]["queues_without_worker"]:
        return None  # not ready, or not every worker has beaten yet
    return answer


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_production_set_serves_imports_delivers_a_campaign_and_stops_cleanly(
    production_set, make_user, superuser, smtp_sink, settings
):
    served = production_set
    # The server checks passwords with the production hashers, not the tests' fast one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    superuser.set_password(DEMO_PASSWORD)
    superuser.save(update_fields=["password"])
    marketer = make_user("mona.marketing", Role.MARKETING)
    token = Token.objects.create(user=marketer).key

    ready = served.wait_until(
        lambda: _ready(served), timeout=300, what="/readyz with every queue served"
    )
    checks = ready.json()["checks"]
    assert checks["workers"]["queues_without_worker"] == []
    assert checks["beat"]["ok"]
    assert not any("Traceback" in line for line in served.lines), served.output

    # DEBUG is off: static files come from whitenoise, unknown pages get the plain 404.
    assert httpx.get(f"{served.url}/no-such-page/", timeout=60).status_code == 404
    assert "Traceback" not in httpx.get(f"{served.url}/no-such-page/", timeout=60).text

    # A person signs in with the form and imports a file through the import page.
    with httpx.Client(base_url=served.url, timeout=60) as browser:
        page = browser.get("/login/")
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        signed_in = browser.post(
            "/login/",
            data={"username": superuser.username, "password": DEMO_PASSWORD,
                  "csrfmiddlewaretoken": csrf},
        )  # fmt: skip
        assert signed_in.status_code == 302, signed_in.text
        page = browser.get("/customers/import/")
        assert page.status_code == 200
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        uploaded = browser.post(
            "/customers/import/",
            data={"kind": "customers", "csrfmiddlewaretoken": csrf},
            files={"file": ("leads.csv", CSV.encode(), "text/csv")},
        )
        assert uploaded.status_code == 302, uploaded.text
    job = served.wait_until(
        lambda: ImportJob.objects.filter(status__in=["done", "failed"]).first(),
        what="the import on the heavy worker",
    )
    assert (job.status, job.rows_created) == ("done", 3), job.message
    for customer in Customer.objects.all():
        consent_grant(customer=customer, purpose="email_marketing", source="staff")

    # A campaign to the Germans, through the API: refresh on the heavy worker, delivery on the
    # delivery worker, mail to the SMTP server.
    api = httpx.Client(base_url=served.url, headers={"Authorization": f"Token {token}"}, timeout=60)
    rule = {
        "all": [
            {"field": "country", "op": "eq", "value": "DE"},
            {"consent": "email_marketing", "state": "granted"},
        ]
    }
    segment = api.post("/api/segments/", json={"name": "Germany", "rule": rule}).json()
    refresh = api.post(f"/api/segments/{segment['id']}/refresh/")
    assert refresh.status_code == 202, refresh.text
    served.wait_until(
        lambda: RefreshRun.objects.filter(pk=refresh.json()["run"], status="done").exists(),
        what="the segment refresh",
    )
    campaign = api.post(
        "/api/campaigns/",
        json={"name": "Spring", "target_segments": [segment["id"]],
              "consent_purpose": "email_marketing"},
    ).json()  # fmt: skip
    api.post(
        f"/api/campaigns/{campaign['id']}/variants/",
        json={"subject": "Spring", "text": "Hello {{ customer.first_name }}"},
    ).raise_for_status()
    api.post(f"/api/campaigns/{campaign['id']}/launch/").raise_for_status()
    served.wait_until(lambda: len(smtp_sink) >= 2, what="the campaign's two messages")
    assert sorted(rcpt for rcpts, _ in smtp_sink.snapshot() for rcpt in rcpts) == [
        "ada@example.com",
        "grace@example.com",
    ]
    metrics = httpx.get(f"{served.url}/metrics", timeout=60).text
    assert 'crm_campaign_messages_total{outcome="sent"} 2.0' in metrics
    assert (
        'crm_task_duration_seconds_count{outcome="success",task="customers.tasks.import_run_task"}'
        in metrics
    )

    # SIGTERM stops every process of the set, and the script exits 0.
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=90) == 0, served.output
    deadline = time.monotonic() + 30
    while _group_alive(served.process.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _group_alive(served.process.pid), "a process of the set outlived the stop"
