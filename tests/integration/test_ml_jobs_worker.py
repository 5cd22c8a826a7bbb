"""RFM, ML segments and predictive scores run start to finish on a real Celery worker, queued the
way the API queues them; a job the worker refuses ends "failed" with the reason."""

import importlib
import inspect

import pytest

from crm.celery import app as celery_app
from customers.models import Customer
from segments.ml.models import CustomerScore, MLJob, RfmRun
from tests.customers.factories import CustomerFactory
from tests.integration.test_registered_tasks import tasks_defined_in_code
from tests.segments.ml.conftest import buy
from tests.segments.ml.test_services import engaged_shop

pytestmark = pytest.mark.integration


@pytest.fixture
def history_thresholds_for_a_small_shop(monkeypatch):
    """The worker reads its settings from the environment it starts with."""
    monkeypatch.setenv("ML_CHURN_MIN_BUYERS", "40")
    monkeypatch.setenv("ML_CHURN_MIN_HISTORY_DAYS", "90")


@pytest.fixture
def shop_with_history(transactional_db) -> list[Customer]:
    """Sixty buyers over a year: half keep buying, half stopped; three spending groups."""
    customers = CustomerFactory.create_batch(60)
    for i, customer in enumerate(customers):
        recent = i % 2 == 0
        for j in range(1 + i % 4):
            buy(customer, days_ago=(100 if recent else 250) + 30 * j, amount=str(20 + 15 * (i % 3)))
        if recent:
            buy(customer, days_ago=10 + i % 7, amount="50")
    return customers


def _wait_for_job(worker, job_id: int) -> MLJob:
    worker.wait_until(
        lambda: MLJob.objects.filter(pk=job_id, status__in=["done", "failed"]).exists(),
        timeout=120,
        what=f"ML job {job_id} to finish",
    )
    return MLJob.objects.get(pk=job_id)


def test_an_rfm_run_asked_for_in_the_api_is_done_by_the_worker(
    celery_worker_process, shop_with_history, marketing_user, api_client_for
):
    client = api_client_for(marketing_user)

    response = client.post("/api/scores/rfm/run/", {}, format="json")

    assert response.status_code == 202, response.content
    run_id = response.json()["id"]
    celery_worker_process.wait_until(
        lambda: RfmRun.objects.filter(pk=run_id, status__in=["done", "failed"]).exists(),
        timeout=120,
        what=f"RFM run {run_id}",
    )
    run = RfmRun.objects.get(pk=run_id)
    assert run.status == "done", run.message
    assert run.customers == 60
    assert CustomerScore.objects.exclude(rfm_class="").count() == 60


def test_an_ml_segment_is_trained_and_assigned_by_the_worker(
    celery_worker_process, shop_with_history, marketing_user, api_client_for
):
    client = api_client_for(marketing_user)
    created = client.post(
        "/api/ml-segments/", {"name": "Shoppers", "features": ["rfm"], "k": 3}, format="json"
    )
    assert created.status_code == 201, created.content
    pk = created.json()["id"]

    trained = _wait_for_job(
        celery_worker_process, client.post(f"/api/ml-segments/{pk}/train/").json()["id"]
    )
    assigned = _wait_for_job(
        celery_worker_process, client.post(f"/api/ml-segments/{pk}/assign/").json()["id"]
    )

    assert trained.status == "done", trained.message
    assert assigned.status == "done", assigned.message
    assert assigned.message == "60 customers assigned."
    clusters = client.get(f"/api/ml-segments/{pk}/clusters/").json()
    assert len(clusters) == 3
    job = client.get(f"/api/ml-segments/{pk}/jobs/{assigned.pk}/").json()
    assert (job["status"], job["progress"]) == ("done", 100)


@pytest.fixture
def engaged_shop_with_history(transactional_db) -> list[Customer]:
    """240 buyers whose browsing before the cut-off tells who buys again (see engaged_shop)."""
    return engaged_shop()


def test_churn_and_value_training_is_done_by_the_worker_and_scores_every_buyer(
    history_thresholds_for_a_small_shop,
    celery_worker_process,
    engaged_shop_with_history,
    marketing_user,
    api_client_for,
):
    client = api_client_for(marketing_user)

    response = client.post("/api/scores/churn/train/", {"horizon_days": 90}, format="json")

    assert response.status_code == 202, response.content
    job = _wait_for_job(celery_worker_process, response.json()["id"])
    assert job.status == "done", job.message
    assert job.message.startswith("Churn model trained as of")
    assert "Not activated" not in job.message
    assert CustomerScore.objects.exclude(churn_risk=None).count() == 240
    summary = client.get("/api/scores/churn/").json()
    assert summary["model"]["buyers"] > 0 and summary["model"]["active"]
    assert summary["model"]["metrics"]["beats_baselines"] is True
    assert summary["last_job"]["status"] == "done"


def test_a_model_that_does_not_beat_recency_is_trained_but_not_activated_saying_why(
    history_thresholds_for_a_small_shop,
    celery_worker_process,
    shop_with_history,
    marketing_user,
    api_client_for,
):
    client = api_client_for(marketing_user)

    response = client.post("/api/scores/churn/train/", {"horizon_days": 60}, format="json")

    job = _wait_for_job(celery_worker_process, response.json()["id"])
    assert job.status == "done", job.message
    assert "Not activated: the churn model's held-out ROC AUC" in job.message
    assert not CustomerScore.objects.exclude(churn_risk=None).exists()
    summary = client.get("/api/scores/churn/").json()
    assert summary["model"] is None and summary["refused"]["metrics"]["refused"]


def test_lifetime_value_is_fitted_by_the_worker_and_scores_every_buyer(
    celery_worker_process, shop_with_history, marketing_user, api_client_for
):
    client = api_client_for(marketing_user)

    response = client.post("/api/scores/lifetime/fit/", {}, format="json")

    assert response.status_code == 202, response.content
    job = _wait_for_job(celery_worker_process, response.json()["id"])
    assert job.status == "done", job.message
    assert CustomerScore.objects.exclude(lifetime_value=None).count() == 60
    assert client.get("/api/scores/lifetime/").json()["model"]["customers"] == 60


def test_training_on_too_little_history_fails_with_the_reason_instead_of_waiting(
    celery_worker_process, shop_with_history, marketing_user, api_client_for
):
    client = api_client_for(marketing_user)

    response = client.post("/api/scores/churn/train/", {}, format="json")

    job = _wait_for_job(celery_worker_process, response.json()["id"])
    assert job.status == "failed"
    assert "500" in job.message  # the worker's default: at least 500 buyers
    assert client.get(f"/api/scores/jobs/{job.pk}/").json()["status"] == "failed"


def test_every_scheduled_job_runs_to_success_on_the_worker(
    celery_worker_process, shop_with_history
):
    """The beat schedule's tasks take no arguments: each is sent by name, as beat sends it."""
    scheduled = []
    for name in sorted(tasks_defined_in_code()):
        module, function = name.rsplit(".", 1)
        task = getattr(importlib.import_module(module), function)
        required = [
            p
            for p in inspect.signature(task.run).parameters.values()
            if p.default is inspect.Parameter.empty
        ]
        if not required:
            scheduled.append(name)

    assert "segments.ml.tasks.rfm_refresh_task" in scheduled
    for name in scheduled:
        result = celery_app.send_task(name, queue=celery_worker_process.queue)
        result.get(timeout=120, propagate=True)
        assert result.successful(), f"{name}: {result.state}\n{celery_worker_process.output}"
