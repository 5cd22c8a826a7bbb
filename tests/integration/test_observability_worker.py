"""On a real worker: the id of the request that queued a task is in the task's log line, and the
worker's heartbeat tells /readyz it is alive and which queues it consumes."""

import pytest
from django.db import transaction

from crm.models import ProcessHeartbeat
from segments.models import RefreshRun
from segments.services import segment_create
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.integration


def test_the_request_id_of_a_click_follows_its_task_to_the_worker(
    celery_worker_process, marketing_user, api_client_for
):
    CustomerFactory.create_batch(2, country="DE")
    with transaction.atomic():
        segment = segment_create(
            name="Germany",
            rule={"all": [{"field": "country", "op": "eq", "value": "DE"}]},
            owner=marketing_user,
        )
    client = api_client_for(marketing_user)

    answer = client.post(
        f"/api/segments/{segment.pk}/refresh/", HTTP_X_REQUEST_ID="click-7f3e9a0b2c"
    )

    assert answer.status_code == 202, answer.content
    assert answer["X-Request-ID"] == "click-7f3e9a0b2c"
    celery_worker_process.wait_until(
        lambda: any(
            "click-7f3e9a0b2c" in line and "segments.tasks.segment_refresh_task" in line
            for line in celery_worker_process.lines
        ),
        what="the task's log line with the request id",
    )
    assert RefreshRun.objects.get(pk=answer.json()["run"]).status == "done"


def test_a_running_worker_beats_and_readyz_sees_it_with_its_queues(celery_worker_process, client):
    queue = celery_worker_process.queue

    beat = celery_worker_process.wait_until(
        lambda: ProcessHeartbeat.objects.filter(kind="worker", name__startswith=queue).first(),
        what="the worker's heartbeat",
    )

    assert sorted(beat.queues) == sorted([queue, f"{queue}-delivery", f"{queue}-heavy"])
    workers = client.get("/readyz").json()["checks"]["workers"]
    assert workers["ok"], workers
    assert workers["queues_without_worker"] == []
