"""Segment refreshes, data exports and bulk consent changes run start to finish on a real Celery
worker, queued the way the pages and the API queue them."""

import zipfile

import pytest
from django.db import transaction

from privacy.models import BulkConsentJob, ConsentState, DataExport
from privacy.services import consent_bulk_job_create
from segments.models import RefreshRun
from segments.services import segment_create
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.integration


def _wait(worker, model, pk: int, what: str):
    worker.wait_until(
        lambda: model.objects.filter(pk=pk, status__in=["done", "failed"]).exists(),
        timeout=120,
        what=what,
    )
    return model.objects.get(pk=pk)


def test_a_segment_refresh_asked_for_in_the_api_is_done_by_the_worker(
    celery_worker_process, marketing_user, api_client_for
):
    CustomerFactory.create_batch(3, country="DE")
    CustomerFactory.create_batch(2, country="FR")
    with transaction.atomic():
        segment = segment_create(
            name="Germany",
            rule={"all": [{"field": "country", "op": "eq", "value": "DE"}]},
            owner=marketing_user,
        )
    client = api_client_for(marketing_user)

    answer = client.post(f"/api/segments/{segment.pk}/refresh/")

    assert answer.status_code == 202, answer.content
    run = _wait(celery_worker_process, RefreshRun, answer.json()["run"], "the refresh")
    assert run.status == "done", run.message
    assert (run.size, segment.memberships.count()) == (3, 3)
    state = client.get(answer.json()["state_url"]).json()
    assert (state["status"], state["state"]) == ("done", "done")


def test_a_data_export_asked_for_in_the_api_is_built_by_the_worker(
    celery_worker_process, privacy_user, api_client_for, settings
):
    customer = CustomerFactory(first_name="Ines", email="ines@example.com")
    client = api_client_for(privacy_user)

    answer = client.post("/api/data-exports/", {"customer": customer.pk}, format="json")

    assert answer.status_code == 201, answer.content
    export = _wait(celery_worker_process, DataExport, answer.json()["id"], "the export")
    assert export.status == "done", export.message
    with zipfile.ZipFile(export.file.path) as archive:
        assert "ines@example.com" in archive.read("data.json").decode()
    listed = client.get(f"/api/data-exports/{export.pk}/").json()
    assert listed["state"] == "done" and listed["download_url"]


def test_a_bulk_consent_withdrawal_is_done_by_the_worker(celery_worker_process, privacy_user):
    customers = CustomerFactory.create_batch(3)
    csv_text = "email\n" + "\n".join(c.email for c in customers) + "\nnobody@example.com\n"
    with transaction.atomic():
        job = consent_bulk_job_create(
            purpose="email_marketing",
            state="withdrawn",
            evidence="Withdrawn by letter, batch 7",
            actor=privacy_user,
            csv_text=csv_text,
        )

    job = _wait(celery_worker_process, BulkConsentJob, job.pk, "the bulk change")

    assert job.status == "done", job.message
    assert (job.matched, job.unmatched) == (3, 1)
    withdrawn = ConsentState.objects.filter(
        customer__in=customers, purpose__code="email_marketing", state="withdrawn"
    )
    assert withdrawn.count() == 3
