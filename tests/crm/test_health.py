"""/healthz, /readyz and the admin System page: what a load balancer and an operator see."""

import datetime as dt
import os

import pytest
from django.utils import timezone

from crm.celery import app as celery_app
from crm.models import ProcessHeartbeat
from customers.models import ImportJob

pytestmark = pytest.mark.django_db

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def with_broker(settings):
    """Tasks go to a real broker (Redis), so workers and beat are expected."""
    saved = {k: celery_app.conf[k] for k in ("broker_url", "task_always_eager")}
    celery_app.conf.update(broker_url=REDIS_URL, task_always_eager=False)
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        celery_app.conf.update(saved)
        pytest.skip(f"Redis at {REDIS_URL} is unreachable ({exc})")
    yield
    celery_app.conf.update(saved)


@pytest.fixture
def with_dead_broker():
    saved = {k: celery_app.conf[k] for k in ("broker_url", "task_always_eager")}
    celery_app.conf.update(broker_url="redis://127.0.0.1:1/0", task_always_eager=False)
    yield
    celery_app.conf.update(saved)


def _heartbeat(name: str, kind: str, queues: list[str], age_seconds: float = 0):
    seen = timezone.now() - dt.timedelta(seconds=age_seconds)
    return ProcessHeartbeat.objects.create(
        name=name, kind=kind, queues=queues, pid=1, started_at=seen, seen_at=seen
    )


def test_healthz_answers_without_touching_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        answer = client.get("/healthz")

    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


def test_readyz_is_ready_without_a_broker_as_tasks_run_in_process(client):
    answer = client.get("/readyz")

    assert answer.status_code == 200, answer.json()
    checks = answer.json()["checks"]
    assert checks["database"]["ok"] and checks["migrations"]["ok"]
    assert "in-process" in checks["workers"]["detail"]


def test_readyz_is_unavailable_when_no_worker_has_beaten_for_a_minute(client, with_broker):
    _heartbeat("delivery@host", "worker", ["delivery", "celery"], age_seconds=90)
    _heartbeat("beat@host", "beat", [])

    answer = client.get("/readyz")

    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["broker"]["ok"]
    assert not checks["workers"]["ok"]
    assert "no worker heartbeat" in checks["workers"]["detail"]
    assert checks["beat"]["ok"]


def test_readyz_is_ready_with_live_workers_and_one_beat_and_names_an_unserved_queue(
    client, with_broker
):
    _heartbeat("delivery@host", "worker", ["delivery", "celery"])
    _heartbeat("beat@host", "beat", [])

    answer = client.get("/readyz")

    assert answer.status_code == 200, answer.json()
    workers = answer.json()["checks"]["workers"]
    assert workers["queues_without_worker"] == ["heavy"]
    assert "no worker consumes heavy" in workers["detail"]


def test_readyz_refuses_two_beats(client, with_broker):
    _heartbeat("delivery@host", "worker", ["delivery", "celery", "heavy"])
    _heartbeat("beat@one", "beat", [])
    _heartbeat("beat@two", "beat", [])

    answer = client.get("/readyz")

    assert answer.status_code == 503
    assert "2 beats" in answer.json()["checks"]["beat"]["detail"]


def test_readyz_is_unavailable_when_the_broker_does_not_answer(client, with_dead_broker):
    answer = client.get("/readyz")

    assert answer.status_code == 503
    assert not answer.json()["checks"]["broker"]["ok"]


def test_system_page_shows_queues_workers_schedule_and_a_failed_job_with_its_reason(
    client, superuser, with_broker
):
    _heartbeat("heavy@host", "worker", ["heavy"])
    ImportJob.objects.create(
        kind="customers",
        status="failed",
        message="Row 3: the email is not an address",
        finished_at=timezone.now(),
    )
    client.force_login(superuser)

    page = client.get("/admin/system/")

    assert page.status_code == 200
    text = page.content.decode()
    for expected in (
        "Queues",
        "delivery",
        "heavy@host",
        "campaigns.tasks.campaigns_due_task",
        "Row 3: the email is not an address",
        "Database:",
        "Redis:",
    ):
        assert expected in text, expected


def test_system_page_is_for_superusers_only(client, make_user):
    staff = make_user("stan.staff", is_staff=True)
    client.force_login(staff)

    assert client.get("/admin/system/").status_code == 403
    client.logout()
    assert client.get("/admin/system/").status_code == 302


def test_a_load_balancer_probing_a_backend_by_address_over_http_gets_its_answer(client, settings):
    settings.ALLOWED_HOSTS = ["crm.example.com"]
    settings.SECURE_SSL_REDIRECT = True

    alive = client.get("/healthz", HTTP_HOST="10.0.0.7:8000")
    ready = client.get("/readyz", HTTP_HOST="10.0.0.7:8000")

    assert (alive.status_code, ready.status_code) == (200, 200)
    assert client.get("/login/", HTTP_HOST="10.0.0.7:8000").status_code == 400
