"""A job no worker picks up is shown as stuck, with what to check, instead of "Queued" forever."""

import datetime as dt

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from customers.models import ImportJob
from segments.ml.models import MLJob
from segments.models import RefreshRun
from tests.segments.factories import SegmentFactory

pytestmark = pytest.mark.django_db


def _age(model, pk: int, *, seconds: int, field: str = "created_at") -> None:
    model.objects.filter(pk=pk).update(**{field: timezone.now() - dt.timedelta(seconds=seconds)})


def test_an_import_nobody_picked_up_is_stuck_on_its_page_with_what_to_check(
    client, sales_user, settings
):
    settings.JOBS_QUEUED_STUCK_AFTER = 120
    job = ImportJob.objects.create(kind="customers", created_by=sales_user)
    job.file.save("people.csv", ContentFile(b"email\na@example.com\n"))
    client.force_login(sales_user)

    fresh = client.get(f"/customers/import/{job.pk}/progress/").content.decode()
    _age(ImportJob, job.pk, seconds=121)
    late = client.get(f"/customers/import/{job.pk}/progress/").content.decode()

    assert 'data-job-state="queued"' in fresh and "No worker" not in fresh
    assert 'data-job-state="stuck"' in late
    assert "No worker has picked this job up" in late
    assert "Stuck" in client.get("/customers/import/").content.decode()


def test_a_running_ml_job_that_gives_no_sign_of_life_is_stuck_in_the_api(
    marketing_user, api_client_for, settings
):
    settings.JOBS_RUNNING_STUCK_AFTER = 3600
    job = MLJob.objects.create(kind="predictive", status="running", started_at=timezone.now())
    client = api_client_for(marketing_user)

    moving = client.get(f"/api/scores/jobs/{job.pk}/").json()
    _age(MLJob, job.pk, seconds=3601, field="started_at")
    stuck = client.get(f"/api/scores/jobs/{job.pk}/").json()

    assert (moving["status"], moving["state"]) == ("running", "running")
    assert (stuck["status"], stuck["state"]) == ("running", "stuck")
    assert "worker" in stuck["state_reason"]


def test_a_failed_refresh_answers_its_reason_as_the_state_reason(marketing_user, api_client_for):
    segment = SegmentFactory()
    run = RefreshRun.objects.create(segment=segment, status="failed", message="the rule is broken")

    answer = api_client_for(marketing_user).get(f"/api/segments/{segment.pk}/runs/{run.pk}/")

    assert answer.status_code == 200, answer.content
    assert (answer.json()["state"], answer.json()["state_reason"]) == (
        "failed",
        "the rule is broken",
    )


def test_a_finished_job_is_never_stuck_however_old(settings):
    settings.JOBS_QUEUED_STUCK_AFTER = 1
    job = MLJob.objects.create(kind="score", status="done")
    _age(MLJob, job.pk, seconds=10**6)

    job.refresh_from_db()

    assert (job.job_state, job.stuck_reason()) == ("done", "")
