import csv
import io
import json
import zipfile

import pytest
from django.urls import reverse

from privacy.exports import EXPORT_SCHEMA, data_export_request, data_export_url
from privacy.models import AuditEntry, DataExport
from privacy.registry import personal_data_models
from tests.customers.factories import CustomerFactory, EventFactory, NoteFactory, PurchaseFactory
from tests.privacy.test_erasure import person_with_data_everywhere  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def _zip(export: DataExport) -> zipfile.ZipFile:
    export.refresh_from_db()
    return zipfile.ZipFile(io.BytesIO(export.file.read()))


@pytest.fixture
def exported(person_with_data_everywhere, privacy_user, django_capture_on_commit_callbacks):  # noqa: F811
    other = CustomerFactory(email="bystander@example.com")
    PurchaseFactory(customer=other)
    EventFactory(customer=other)
    NoteFactory(customer=other)
    with django_capture_on_commit_callbacks(execute=True):
        export = data_export_request(customer=person_with_data_everywhere, actor=privacy_user)
    return person_with_data_everywhere, other, export


def test_export_holds_every_row_of_every_registered_model_and_nothing_of_anyone_else(exported):
    customer, other, export = exported

    document = json.loads(_zip(export).read("data.json"))

    assert document["schema"] == EXPORT_SCHEMA and document["schema_version"] == 1
    for entry in personal_data_models():
        table = document["tables"][entry.label]
        pk_name = entry.model._meta.pk.attname
        if pk_name not in entry.export_fields:
            assert len(table["rows"]) == entry.rows_for(customer.pk).count()
            continue
        exported_ids = {row[pk_name] for row in table["rows"]}
        assert exported_ids == set(entry.rows_for(customer.pk).values_list("pk", flat=True)), (
            entry.label
        )
        assert not exported_ids & set(entry.rows_for(other.pk).values_list("pk", flat=True)), (
            entry.label
        )
    known = {
        "customers.customer",
        "customers.purchase",
        "customers.event",
        "customers.note",
        "customers.customer_tags",
        "customers.account",
        "privacy.consentrecord",
        "privacy.consentstate",
        "privacy.pendingconsent",
        "privacy.datasubjectrequest",
        "privacy.dataexport",
    }
    for label in known:
        assert document["tables"][label]["rows"], f"the fixture has no {label} row"
    assert "bystander@example.com" not in json.dumps(document)


def test_export_zip_has_a_csv_per_table_and_a_readable_summary(exported):
    _customer, _other, export = exported

    names = set(_zip(export).namelist())

    assert {
        "data.json",
        "summary.txt",
        "customers_purchase.csv",
        "privacy_consentrecord.csv",
    } <= names
    summary = _zip(export).read("summary.txt").decode()
    assert "Purchases: 2 record(s)" in summary


def test_the_download_link_works_for_privacy_officers_and_is_recorded(
    exported, client, privacy_user
):
    customer, _other, export = exported
    client.force_login(privacy_user)

    response = client.get(data_export_url(export=export))

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    assert AuditEntry.objects.filter(action="download", object_id=customer.pk).exists()


def test_an_expired_or_tampered_download_link_is_refused_clearly(
    exported, client, privacy_user, settings
):
    _customer, _other, export = exported
    client.force_login(privacy_user)
    url = data_export_url(export=export)

    tampered = client.get(url[:-3] + "xyz/")
    settings.PRIVACY_EXPORT_LINK_MAX_AGE = -1
    expired = client.get(url)

    assert tampered.status_code == 400 and b"not valid" in tampered.content
    assert expired.status_code == 410 and b"expired" in expired.content


def test_other_roles_cannot_download_an_export(exported, client, marketing_user):
    _customer, _other, export = exported
    client.force_login(marketing_user)

    assert client.get(data_export_url(export=export)).status_code == 403
    assert reverse("privacy:request_queue")


def test_the_csv_files_keep_text_that_would_run_as_a_formula_as_text(
    person_with_data_everywhere,  # noqa: F811
    privacy_user,
    django_capture_on_commit_callbacks,
):
    person = person_with_data_everywhere
    person.city, person.phone = '=HYPERLINK("http://x")', "+49 30 1234567"
    person.save(update_fields=["city", "phone"])
    with django_capture_on_commit_callbacks(execute=True):
        export = data_export_request(customer=person, actor=privacy_user)

    archive = _zip(export)
    rows = list(
        csv.DictReader(io.StringIO(archive.read("customers_customer.csv").decode("utf-8-sig")))
    )
    document = json.loads(archive.read("data.json"))

    assert (rows[0]["city"], rows[0]["phone"]) == ('\'=HYPERLINK("http://x")', "'+49 30 1234567")
    profile = document["tables"]["customers.customer"]["rows"][0]
    assert (profile["city"], profile["phone"]) == ('=HYPERLINK("http://x")', "+49 30 1234567")
    assert "apostrophe" in archive.read("summary.txt").decode()
