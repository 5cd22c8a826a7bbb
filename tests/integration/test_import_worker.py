"""An import uploaded through the service runs on a real Celery worker process."""

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from customers.importing import import_job_create
from customers.models import Customer, ImportJob, Purchase

pytestmark = pytest.mark.integration


def test_real_worker_imports_an_uploaded_purchases_file(celery_worker_process, superuser):
    Customer.objects.create(external_id="C1")
    upload = SimpleUploadedFile(
        "orders.csv",
        b"customer_external_id,external_id,purchased_at,amount\n"
        b"C1,O1,2024-01-01,10.00\nC1,O2,2024-01-02,5.50\nC1,O3,not-a-date,1\nNEW,O4,2024-01-03,2\n",
    )

    job = import_job_create(user=superuser, kind="purchases", file=upload, create_customers=True)
    celery_worker_process.wait_until(
        lambda: ImportJob.objects.filter(pk=job.pk, status__in=["done", "failed"]).exists(),
        what=f"import job {job.pk} to finish",
    )

    job.refresh_from_db()
    assert job.status == "done", job.message
    assert (job.rows_read, job.rows_created, job.rows_failed) == (4, 3, 1)
    assert job.progress_percent == 100
    assert job.error_report
    assert set(Purchase.objects.values_list("external_id", flat=True)) == {"O1", "O2", "O4"}
    assert Customer.objects.get(external_id="C1").lifetime_value == Decimal("15.50")
    assert Customer.objects.filter(external_id="NEW").exists()
