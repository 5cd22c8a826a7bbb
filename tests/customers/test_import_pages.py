"""The import pages: upload, progress, error report, who may use them."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from customers.models import Customer, ImportJob, Purchase
from tests.conftest import DEMO_PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def signed_in(client):
    def sign_in(user):
        client.login(username=user.username, password=DEMO_PASSWORD)
        return client

    return sign_in


@pytest.fixture
def upload(django_capture_on_commit_callbacks):
    """Post a file to the upload page; the queued task runs in-process once the request commits."""

    def post(client, text: str, **fields):
        data = {
            "kind": "customers",
            "file": SimpleUploadedFile("leads.csv", text.encode(), "text/csv"),
        }
        data.update(fields)
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(reverse("customer_import:list"), data)

    return post


def test_sales_user_uploads_customers_and_the_job_runs_to_the_end(signed_in, sales_user, upload):
    client = signed_in(sales_user)

    response = upload(client, "external_id,email\nC1,ann@example.com\nC2,broken\n")

    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("customer_import:detail", args=[job.pk])
    assert (job.status, job.rows_read, job.rows_created, job.rows_failed) == ("done", 2, 1, 1)
    assert Customer.objects.get(external_id="C1").owner == sales_user


def test_job_page_polls_the_progress_while_the_job_runs(signed_in, sales_user):
    client = signed_in(sales_user)
    job = ImportJob.objects.create(
        kind="customers",
        file="imports/x.csv",
        created_by=sales_user,
        status="running",
        total_bytes=1000,
        processed_bytes=250,
        rows_read=40,
    )

    page = client.get(reverse("customer_import:detail", args=[job.pk]))
    partial = client.get(reverse("customer_import:progress", args=[job.pk]))

    assert 'hx-trigger="every 1s"' in page.content.decode()
    body = partial.content.decode()
    assert 'value="25"' in body
    assert "<dd>40</dd>" in body
    assert "<html" not in body


def test_finished_job_stops_polling_and_offers_the_error_report(signed_in, sales_user, upload):
    client = signed_in(sales_user)
    upload(client, "external_id,email\nC1,not-an-email\n")
    job = ImportJob.objects.get()

    partial = client.get(reverse("customer_import:progress", args=[job.pk])).content.decode()
    report = client.get(reverse("customer_import:report", args=[job.pk]))

    assert "hx-trigger" not in partial
    assert reverse("customer_import:report", args=[job.pk]) in partial
    content = b"".join(report.streaming_content).decode()
    assert report["Content-Disposition"].startswith("attachment")
    assert content.splitlines()[0] == "line,column,value,reason"
    assert "2,email,not-an-email," in content


def test_purchase_upload_with_column_map_and_date_format(signed_in, superuser, upload):
    client = signed_in(superuser)

    upload(
        client,
        "Kunde,Datum,Betrag\nNEW,31/12/2023,5.00\n",
        kind="purchases",
        column_map="customer_external_id=Kunde\npurchased_at=Datum\namount=Betrag",
        date_format="%d/%m/%Y",
        create_customers="on",
    )

    assert ImportJob.objects.get().status == "done"
    assert Purchase.objects.get().customer.external_id == "NEW"


def test_upload_whose_header_does_not_fit_is_refused_on_the_form(signed_in, sales_user, upload):
    client = signed_in(sales_user)

    response = upload(client, "name,city\nAnn,Berlin\n")

    assert response.status_code == 400
    assert "external_id" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_bad_column_map_is_refused_on_the_form(signed_in, sales_user, upload):
    client = signed_in(sales_user)

    response = upload(client, "external_id\nC1\n", column_map="just words")

    assert response.status_code == 400
    assert "FIELD=COLUMN" in response.content.decode()


@pytest.mark.parametrize("role_user", ["marketing_user", "privacy_user"])
def test_staff_without_the_sales_role_may_not_import(signed_in, role_user, request, upload):
    client = signed_in(request.getfixturevalue(role_user))

    assert client.get(reverse("customer_import:list")).status_code == 403
    assert upload(client, "external_id\nC1\n").status_code == 403
    assert not ImportJob.objects.exists()


def test_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get(reverse("customer_import:list"))

    assert response.status_code == 302
    assert reverse("login") in response.url


def test_sales_user_sees_only_their_own_imports(signed_in, sales_user, other_sales_user):
    theirs = ImportJob.objects.create(
        kind="customers", file="imports/x.csv", created_by=other_sales_user
    )
    client = signed_in(sales_user)

    assert client.get(reverse("customer_import:detail", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("customer_import:progress", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("customer_import:report", args=[theirs.pk])).status_code == 404
    assert (
        f'href="{reverse("customer_import:detail", args=[theirs.pk])}"'
        not in client.get(reverse("customer_import:list")).content.decode()
    )


def test_list_page_shows_the_form_and_recent_imports(signed_in, sales_user):
    client = signed_in(sales_user)
    ImportJob.objects.create(
        kind="purchases", file="imports/x.csv", original_name="may.csv", created_by=sales_user
    )

    body = client.get(reverse("customer_import:list")).content.decode()

    assert 'enctype="multipart/form-data"' in body
    assert "may.csv" in body


def test_the_error_report_keeps_cells_that_would_run_as_formulas_as_text(
    signed_in, sales_user, upload
):
    client = signed_in(sales_user)
    upload(client, 'external_id,email\nC1,"=HYPERLINK(""http://x"")"\nC2,+49 not an email\n')
    job = ImportJob.objects.get()

    report = client.get(reverse("customer_import:report", args=[job.pk]))

    rows = list(csv.DictReader(io.StringIO(b"".join(report.streaming_content).decode())))
    assert [row["value"] for row in rows] == ['\'=HYPERLINK("http://x")', "'+49 not an email"]
