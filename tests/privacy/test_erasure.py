import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum

from customers.importing import import_job_create, import_job_run
from customers.models import Account, Customer, ImportJob, Purchase
from privacy.data_requests import data_request_create, data_request_transition
from privacy.erasure import customer_erase
from privacy.exports import data_export_build
from privacy.models import (
    AuditEntry,
    ConsentRecord,
    DataExport,
    ErasureLog,
    PendingConsent,
    Suppression,
)
from privacy.services import consent_confirmation_request, consent_grant, consent_withdraw
from privacy.suppression import suppression_contains
from tests.customers.factories import (
    AccountFactory,
    CustomerFactory,
    EventFactory,
    NoteFactory,
    PurchaseFactory,
)
from tests.privacy.factories import ConsentWordingFactory

pytestmark = pytest.mark.django_db

PERSON = {
    "first_name": "Zebulon",
    "last_name": "Quixotaris",
    "email": "zebulon.quixotaris@example.org",
    "phone": "+49 30 5550199",
    "street": "Krummholzweg 77",
    "postal_code": "06484",
}


def _text_columns() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT table_name, column_name FROM information_schema.columns
            WHERE table_schema = current_schema()
              AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')
            """
        )
        return list(cursor.fetchall())


def _traces_of(needles: list[str]) -> list[str]:
    """Every (table.column, needle) in the whole database that still holds one of the needles."""
    found = []
    cast = "CAST({col} AS TEXT)"
    op = "ILIKE"
    with connection.cursor() as cursor:
        for table, column in _text_columns():
            col = connection.ops.quote_name(column)
            for needle in needles:
                cursor.execute(
                    f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)} "
                    f"WHERE {cast.format(col=col)} {op} %s",
                    [f"%{needle}%"],
                )
                if cursor.fetchone()[0]:
                    found.append(f"{table}.{column}: {needle}")
    return found


def _import_job_with_the_person(user) -> ImportJob:
    """A finished import whose upload and error report (kept in media storage) name the person."""
    upload = (
        "external_id,first_name,last_name,email,phone,postal_code,attr.street\n"
        f"EXT-ZQ-1,{PERSON['first_name']},{PERSON['last_name']},{PERSON['email']},"
        f"{PERSON['phone']},{PERSON['postal_code']},{PERSON['street']}\n"
        "EXT-OP-1,Olga,Petrova,olga.petrova@example.com,+49 30 1111,10115,Lindenstrasse 1\n"
        f",{PERSON['first_name']},{PERSON['last_name']},{PERSON['email'].upper()},,,\n"
        "EXT-OP-1,Olga,Petrova,,,,\n"
    )
    job = import_job_create(
        user=user,
        kind=ImportJob.Kind.CUSTOMERS,
        file=SimpleUploadedFile("people.csv", upload.encode(), content_type="text/csv"),
    )
    return import_job_run(job=job)


def _media_traces_of(needles: list[str]) -> list[str]:
    """Every (file, needle) in media storage that still holds one of the needles."""
    found = []
    for path in sorted(Path(django_settings.MEDIA_ROOT).rglob("*")):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", errors="replace").lower()
            found += [f"{path.name}: {n}" for n in needles if n.lower() in text]
    return found


@pytest.fixture
def person_with_data_everywhere(privacy_user, superuser):
    household = AccountFactory(
        name=f"{PERSON['last_name']} household",
        kind=Account.Kind.HOUSEHOLD,
        address=PERSON["street"],
        postal_code=PERSON["postal_code"],
        city="Quedlinburg",
    )
    customer = CustomerFactory(
        first_name=PERSON["first_name"],
        last_name=PERSON["last_name"],
        email=PERSON["email"],
        phone=PERSON["phone"],
        postal_code=PERSON["postal_code"],
        city="Quedlinburg",
        account=household,
        attributes={"street": PERSON["street"], "nickname": PERSON["first_name"]},
        external_id="EXT-ZQ-1",
    )
    from customers.models import Tag

    customer.tags.add(Tag.objects.create(name="vip"))
    PurchaseFactory(
        customer=customer,
        amount=Decimal("120.50"),
        external_id="ORDER-ZQ-1",
        dedup_key="ext:ORDER-ZQ-1",
    )
    PurchaseFactory(customer=customer, amount=Decimal("79.50"))
    EventFactory(customer=customer, properties={"email": PERSON["email"], "page": "/shoes"})
    NoteFactory(customer=customer, body=f"{PERSON['first_name']} called from {PERSON['phone']}")
    wording = ConsentWordingFactory()
    consent_grant(
        customer=customer,
        purpose="email_marketing",
        source="form",
        wording=wording,
        ip_address="203.0.113.9",
        evidence=f"Signup form by {PERSON['email']}",
    )
    consent_withdraw(customer=customer, purpose="data_sale", source="staff", actor=privacy_user)
    consent_confirmation_request(customer=customer, source="form", purpose="sms_marketing")
    dsr = data_request_create(
        type="access",
        customer=customer,
        details=f"Please send it to {PERSON['email']}",
        actor=privacy_user,
    )
    data_export_build(export=DataExport.objects.create(customer=customer, request=dsr))
    _import_job_with_the_person(superuser)
    LogEntry.objects.create(
        user_id=superuser.pk,
        content_type_id=ContentType.objects.get_for_model(Customer).pk,
        object_id=str(customer.pk),
        object_repr=f"{PERSON['first_name']} {PERSON['last_name']}",
        action_flag=CHANGE,
    )
    return customer


def test_after_an_erasure_no_table_holds_the_persons_name_email_phone_or_address(
    person_with_data_everywhere, privacy_user
):
    other = CustomerFactory(first_name="Other", last_name="Person", email="other@example.com")
    PurchaseFactory(customer=other, amount=Decimal("10.00"))
    revenue_before = Purchase.objects.aggregate(total=Sum("amount"))["total"]
    assert _traces_of(list(PERSON.values()))  # the scan does find the person before
    assert _media_traces_of(list(PERSON.values()))  # in the upload and the error report too

    customer_erase(customer=person_with_data_everywhere, actor=privacy_user)

    assert _traces_of(list(PERSON.values())) == []
    assert _media_traces_of(list(PERSON.values())) == []
    assert Purchase.objects.aggregate(total=Sum("amount"))["total"] == revenue_before
    assert Purchase.objects.filter(customer=person_with_data_everywhere).count() == 2
    assert Customer.objects.get(pk=other.pk).email == "other@example.com"


def test_erasure_suppresses_the_email_and_phone_as_hashes(person_with_data_everywhere):
    customer_erase(customer=person_with_data_everywhere)

    assert suppression_contains(email=PERSON["email"].upper())
    assert suppression_contains(phone="+49 (30) 555-0199")
    assert not suppression_contains(email="someone.else@example.org")
    assert not Suppression.objects.filter(value_hash__icontains="zebulon").exists()


def test_erasure_removes_consent_records_pending_grants_and_export_files(
    person_with_data_everywhere,
):
    export = DataExport.objects.get(customer=person_with_data_everywhere)
    path = Path(export.file.path)
    assert path.exists()

    customer_erase(customer=person_with_data_everywhere)

    assert not ConsentRecord.objects.filter(customer=person_with_data_everywhere).exists()
    assert not PendingConsent.objects.filter(customer=person_with_data_everywhere).exists()
    assert not DataExport.objects.filter(customer=person_with_data_everywhere).exists()
    assert not path.exists()


def test_erasure_is_logged_and_audited_without_personal_data(
    person_with_data_everywhere, privacy_user, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        customer_erase(customer=person_with_data_everywhere, actor=privacy_user)

    log = ErasureLog.objects.get(customer_id=person_with_data_everywhere.pk)
    assert log.email_hash and log.phone_hash
    assert AuditEntry.objects.filter(
        action="erase", object_id=person_with_data_everywhere.pk
    ).exists()
    line = Path(settings.PRIVACY_ERASURE_LOG_PATH).read_text()
    assert json.loads(line)["customer_id"] == person_with_data_everywhere.pk
    assert PERSON["email"] not in line and PERSON["last_name"] not in line


def test_completing_an_erasure_request_erases_the_customer(
    person_with_data_everywhere, privacy_user
):
    dsr = data_request_create(
        type="erasure", customer=person_with_data_everywhere, actor=privacy_user
    )
    dsr = data_request_transition(request=dsr, status="in_progress", actor=privacy_user)

    dsr = data_request_transition(request=dsr, status="completed", actor=privacy_user)

    assert dsr.status == "completed" and dsr.handled_by == privacy_user
    assert Customer.objects.get(pk=person_with_data_everywhere.pk).email is None


def test_reapply_erasures_erases_a_restored_customer_again_and_restores_suppression(
    person_with_data_everywhere, django_capture_on_commit_callbacks
):
    customer_id = person_with_data_everywhere.pk
    with django_capture_on_commit_callbacks(execute=True):
        customer_erase(customer=person_with_data_everywhere)
    # A restore from a backup taken before the erasure: the person's row and no suppression.
    Customer.objects.filter(pk=customer_id).update(
        first_name=PERSON["first_name"], email=PERSON["email"], phone=PERSON["phone"], source=""
    )
    Suppression.objects.all().delete()
    ErasureLog.objects.all().delete()

    call_command("reapply_erasures")

    restored = Customer.objects.get(pk=customer_id)
    assert restored.email is None and restored.first_name == ""
    assert suppression_contains(email=PERSON["email"])
    assert ErasureLog.objects.filter(customer_id=customer_id).exists()


def test_erasure_blanks_the_persons_rows_in_stored_imports_and_keeps_everyone_elses(
    person_with_data_everywhere,
):
    job = ImportJob.objects.get()
    assert job.error_report  # line 4 repeats the person's email

    customer_erase(customer=person_with_data_everywhere)

    job.refresh_from_db()
    upload = job.file.read().decode().splitlines()
    report = job.error_report.read().decode().splitlines()
    assert upload[0].startswith("external_id,first_name")
    assert upload[1] == upload[3] == ",,,,,,"  # blanked, so report line numbers still match
    assert upload[2].startswith("EXT-OP-1,Olga,Petrova,olga.petrova@example.com")
    assert report[0] == "line,column,value,reason"
    assert [row.split(",")[0] for row in report[1:]] == ["5"]  # Olga's own duplicate, nothing else


def test_an_erasure_that_cannot_scrub_the_files_is_not_done(person_with_data_everywhere):
    from privacy.registry import personal_data_files_register

    def broken(customer):
        raise OSError("media storage unreachable")

    personal_data_files_register("broken", scrub=broken, where="nowhere")
    try:
        with pytest.raises(OSError):
            customer_erase(customer=person_with_data_everywhere)
    finally:
        from privacy.registry import _files

        _files.pop("broken")

    assert Customer.objects.get(pk=person_with_data_everywhere.pk).email == PERSON["email"]
