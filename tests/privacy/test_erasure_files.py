"""Erasure and the files imports keep: bulk erasures read each file once, a single erasure finds
the person however a file writes them, and an import running during an erasure does not keep
the person in its upload or error report."""

import datetime as dt
import threading
import time
from collections import Counter

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections, transaction
from django.utils import timezone

from customers.importing import import_job_create, import_job_run, jobs
from customers.models import Customer, ImportJob
from privacy.erasure import customer_erase, customers_erase
from privacy.models import ErasureLog
from privacy.registry import _files, personal_data_files_register
from privacy.retention import retention_run
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

PERSON = {
    "first_name": "Zebulon",
    "last_name": "Quixotaris",
    "email": "zebulon.quixotaris@example.org",
    "phone": "+49 30 5550199",
    "external_id": "EXT-ZQ-1",
}
HEADER = "external_id,first_name,last_name,email,phone"


@pytest.fixture
def person():
    return CustomerFactory(**PERSON)


@pytest.fixture
def file_opens(monkeypatch) -> Counter:
    """How often each stored file is opened (media storage is outside the product)."""
    opens: Counter = Counter()
    real_open = FileSystemStorage._open

    def counting_open(storage, name, mode="rb"):
        opens[name] += 1
        return real_open(storage, name, mode)

    monkeypatch.setattr(FileSystemStorage, "_open", counting_open)
    return opens


def _finished_job(upload: str, report: str = "line,column,value,reason\n") -> ImportJob:
    return ImportJob.objects.create(
        kind=ImportJob.Kind.CUSTOMERS,
        status=ImportJob.Status.DONE,
        file=ContentFile(upload.encode(), name="people.csv"),
        error_report=ContentFile(report.encode(), name="errors.csv"),
        finished_at=timezone.now(),
    )


def _lines(field) -> list[str]:
    with field.open("rb") as fh:
        return fh.read().decode().splitlines()


@pytest.fixture
def dormant_people_in_two_imports():
    people = [
        CustomerFactory(first_name=f"Dormant{n}", last_name="Sleeper", phone=f"+49 30 55501{n:02d}")
        for n in range(6)
    ]
    Customer.objects.filter(pk__in=[p.pk for p in people]).update(
        created_at=timezone.now() - dt.timedelta(days=4 * 365)
    )
    rows = [f"{p.external_id},{p.first_name},{p.last_name},{p.email},{p.phone}" for p in people]
    upload = "\n".join([HEADER, *rows, "EXT-OP-1,Olga,Petrova,olga.petrova@example.com,"]) + "\n"
    report = "line,column,value,reason\n" + "".join(
        f"{n + 2},email,{p.email},duplicate within the file\n" for n, p in enumerate(people)
    )
    return people, [_finished_job(upload, report), _finished_job(upload, report)]


def test_the_retention_run_reads_each_kept_import_file_once_whatever_the_number_of_people(
    dormant_people_in_two_imports, file_opens
):
    people, kept = dormant_people_in_two_imports

    report = retention_run(dry_run=False, years=3)

    assert report.anonymised == len(people)
    for job in kept:
        job.refresh_from_db()
        assert _lines(job.file)[1:] == [",,,,"] * len(people) + [
            "EXT-OP-1,Olga,Petrova,olga.petrova@example.com,"
        ]
        assert _lines(job.error_report) == ["line,column,value,reason"]
    opened = Counter({name: n for name, n in file_opens.items() if name.startswith("imports/")})
    assert len(opened) == 4
    assert max(opened.values()) <= 2  # a text scan and one rewrite, not one pass per person


def test_a_bulk_erasure_that_cannot_scrub_the_files_erases_nobody_in_its_batch(
    dormant_people_in_two_imports,
):
    people, _ = dormant_people_in_two_imports

    def broken(customer):
        raise OSError("media storage unreachable")

    personal_data_files_register("broken", scrub=broken, where="nowhere")
    try:
        with pytest.raises(OSError):
            customers_erase(customer_ids=[p.pk for p in people])
    finally:
        _files.pop("broken")

    assert not Customer.objects.filter(pk__in=[p.pk for p in people], email__isnull=True).exists()
    assert not ErasureLog.objects.exists()


def test_a_single_erasure_finds_the_person_however_the_file_writes_them(person, file_opens):
    upload = "\n".join(
        [
            "ref,name,surname,contact,tel,note",
            "x1,,,,(+49) 30-555 01 99,",  # the phone with other punctuation
            'x2,,,,,"Write to Zebulon.Quixotaris@Example.org, not the old one"',
            "x3,ZEBULON,quixotaris,,,",  # first and last name, other case
            "EXT-ZQ-1,,,,,",
            "x5,Olga,Petrova,olga.petrova@example.com,+49 30 1111,",
        ]
    )
    naming = _finished_job(upload + "\n")
    other = _finished_job("email\nolga.petrova@example.com\n")

    customer_erase(customer=person)

    # The file without the person was scanned once, and neither parsed again nor rewritten.
    assert file_opens[other.file.name] == 1
    naming.refresh_from_db()
    other.refresh_from_db()
    assert _lines(naming.file)[1:] == [",,,,,"] * 4 + [
        "x5,Olga,Petrova,olga.petrova@example.com,+49 30 1111,"
    ]
    assert _lines(other.file) == ["email", "olga.petrova@example.com"]


def _erasing_after_the_first_chunk(monkeypatch, customer: Customer) -> None:
    """Run the import as usual, but erase the customer between its first and second chunk."""
    real_run = jobs.import_run

    def run(**kwargs):
        progress = kwargs["on_progress"]
        erased = []

        def on_progress(done):
            progress(done)
            if not erased:
                erased.append(customer_erase(customer=customer))

        return real_run(**{**kwargs, "on_progress": on_progress})

    monkeypatch.setattr(jobs, "import_run", run)


def test_an_import_running_while_a_person_is_erased_keeps_them_in_neither_of_its_files(
    person, superuser, settings, monkeypatch
):
    settings.CRM_IMPORT_BATCH_SIZE = 2
    upload = "\n".join(
        [
            HEADER,
            f",{PERSON['first_name']},{PERSON['last_name']},{PERSON['email']},{PERSON['phone']}",
            f",,,{PERSON['email'].upper()},",  # duplicate of line 2: reported before the erasure
            "EXT-OP-1,Olga,Petrova,olga.petrova@example.com,+49 30 1111",
            f",,,{PERSON['email']},",  # duplicate of line 2: reported after the erasure
            "EXT-OP-1,Olga,Petrova,,",  # Olga's duplicate stays in the report
        ]
    )
    job = import_job_create(
        user=superuser,
        kind=ImportJob.Kind.CUSTOMERS,
        file=SimpleUploadedFile("people.csv", (upload + "\n").encode(), content_type="text/csv"),
    )
    _erasing_after_the_first_chunk(monkeypatch, person)

    job = import_job_run(job=job)

    assert ErasureLog.objects.filter(customer_id=person.pk).exists()
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE
    report = _lines(job.error_report)
    assert report[0] == "line,column,value,reason"
    assert [row.split(",")[0] for row in report[1:]] == ["6"]
    assert [line for line in _lines(job.file) if line.strip(",")] == [
        HEADER,
        "EXT-OP-1,Olga,Petrova,olga.petrova@example.com,+49 30 1111",
        "EXT-OP-1,Olga,Petrova,,",
    ]


def test_an_upload_stored_while_a_person_was_erased_loses_their_rows_when_its_import_finishes(
    person, superuser
):
    # The erasure committed just before the job did, so it never saw this upload.
    customer_erase(customer=person)
    upload = "\n".join(
        [
            HEADER,
            "EXT-OP-1,Olga,Petrova,olga.petrova@example.com,+49 30 1111",
            f"EXT-OP-1,{PERSON['first_name']},{PERSON['last_name']},{PERSON['email']},",
            f"EXT-XX-9,,,,{PERSON['phone']}",
        ]
    )
    job = import_job_create(
        user=superuser,
        kind=ImportJob.Kind.CUSTOMERS,
        file=SimpleUploadedFile("people.csv", (upload + "\n").encode(), content_type="text/csv"),
    )

    job = import_job_run(job=job)

    job.refresh_from_db()
    assert _lines(job.file) == [
        HEADER,
        "EXT-OP-1,Olga,Petrova,olga.petrova@example.com,+49 30 1111",
        ",,,,",
        ",,,,",
    ]
    assert _lines(job.error_report) == ["line,column,value,reason"]


def test_an_import_finishing_long_after_an_erasure_keeps_its_files_as_they_are(person, superuser):
    customer_erase(customer=person)
    ErasureLog.objects.update(erased_at=timezone.now() - dt.timedelta(days=2))
    upload = f"{HEADER}\nEXT-ZQ-2,,,{PERSON['email']},\n"
    job = import_job_create(
        user=superuser,
        kind=ImportJob.Kind.CUSTOMERS,
        file=SimpleUploadedFile("people.csv", upload.encode(), content_type="text/csv"),
    )

    job = import_job_run(job=job)

    job.refresh_from_db()
    assert _lines(job.file)[1] == f"EXT-ZQ-2,,,{PERSON['email']},"


@pytest.mark.django_db(transaction=True)
def test_an_import_finishing_while_an_erasure_commits_waits_for_it_and_drops_the_person(
    person, superuser, monkeypatch
):
    upload = "\n".join(
        [
            HEADER,
            f",{PERSON['first_name']},{PERSON['last_name']},{PERSON['email']},",
            f",,,{PERSON['email'].upper()},",  # duplicate of line 2: the report quotes the email
        ]
    )
    job = import_job_create(
        user=superuser,
        kind=ImportJob.Kind.CUSTOMERS,
        file=SimpleUploadedFile("people.csv", (upload + "\n").encode(), content_type="text/csv"),
    )
    file_read, scrubbed = threading.Event(), threading.Event()
    real_run = jobs.import_run

    def run(**kwargs):
        result = real_run(**kwargs)
        file_read.set()
        scrubbed.wait(10)
        return result

    def erase() -> None:
        try:
            file_read.wait(10)
            with transaction.atomic():
                customer_erase(customer=person)
                scrubbed.set()  # the files are scrubbed; the erasure is not committed yet
                time.sleep(0.5)
        finally:
            connections.close_all()

    monkeypatch.setattr(jobs, "import_run", run)
    eraser = threading.Thread(target=erase)
    eraser.start()

    job = import_job_run(job=job)
    eraser.join()

    assert ErasureLog.objects.filter(customer_id=person.pk).exists()
    job.refresh_from_db()
    assert _lines(job.error_report) == ["line,column,value,reason"]
    assert _lines(job.file) == [HEADER, ",,,,", ",,,,"]


def test_an_erasure_drops_the_persons_rows_from_an_error_report_that_keeps_their_phone_as_text(
    person,
):
    # The report writes "+49 ..." as "'+49 ..." so that no spreadsheet runs it; the erasure
    # still knows the phone, even where the report quotes a line the upload no longer has.
    naming = _finished_job(
        "email\nolga.petrova@example.com\n",
        report="line,column,value,reason\n7,tel,'+49 30 5550199,this number is too short\n"
        "8,tel,'+49 30 1111,this number is too short\n",
    )

    customer_erase(customer=person)

    naming.refresh_from_db()
    assert _lines(naming.error_report) == [
        "line,column,value,reason",
        "8,tel,'+49 30 1111,this number is too short",
    ]
