"""A backup taken before an erasure, restored into a fresh database, gives nobody back: the
restore ends with `reapply_erasures`, and the erasure log in MEDIA_ROOT is not rolled back by the
backup's older copy of it."""

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection

from crm.backups import pg_bin_dir
from customers.importing import import_job_create
from customers.models import Customer, ImportJob
from privacy.data_requests import data_request_create, data_request_transition
from privacy.erasure import customers_erase
from privacy.models import RequestStatus, RequestType, Suppression
from privacy.services import consent_grant
from segments.services import segment_create
from tests.customers.factories import CustomerFactory, EventFactory, NoteFactory, PurchaseFactory
from tests.integration import conftest as integration
from tests.privacy.test_erasure_traces import (
    EMAIL,
    FIRST,
    LAST,
    NEEDLES,
    PHONE,
    _alnum,
    _database_traces,
    _media_traces,
)

pytestmark = [pytest.mark.django_db(transaction=True)]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def person_everywhere(superuser, privacy_user, marketing_user):
    """A person in the tables and in a stored import file (committed: a backup sees them)."""
    person = CustomerFactory(first_name=FIRST, last_name=LAST, email=EMAIL, phone=PHONE)
    CustomerFactory(first_name="Olga", last_name="Petrova", email="olga.petrova@example.com")
    PurchaseFactory(customer=person)
    NoteFactory(customer=person, body=f"{FIRST} prefers calls on {PHONE}")
    EventFactory(customer=person, properties={"email": EMAIL})
    consent_grant(customer=person, purpose="email_marketing", source="form")
    segment_create(
        name="Hand-picked",
        owner=marketing_user,
        rule={"any": [{"field": "email", "op": "in", "value": [EMAIL, "olga@example.com"]}]},
    )
    upload = f"first_name,last_name,email\n{FIRST},{LAST},not-an-email {EMAIL}\n"
    import_job_create(
        user=superuser,
        kind=ImportJob.Kind.CUSTOMERS,
        file=SimpleUploadedFile(f"{FIRST} {LAST}.csv", upload.encode()),
    )  # runs at once: tasks are eager and nothing waits for a commit
    request = data_request_create(
        type=RequestType.ERASURE, customer=person, details=f"Delete {EMAIL}", actor=privacy_user
    )
    return {"person": person, "request": request}


@pytest.fixture
def fresh_database():
    """The name of a database that does not exist yet; dropped after the test."""
    name = f"{connection.settings_dict['NAME']}_restored"
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    yield name
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def connected_to(name: str):
    saved = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = name
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["NAME"] = saved


def _dump_traces(dump: Path) -> list[str]:
    text = subprocess.run(
        [str(pg_bin_dir() / "pg_restore"), "--file=-", str(dump)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    flat = _alnum(text)
    return [what for what, needle in NEEDLES.items() if needle in flat]


def test_a_restored_backup_taken_before_an_erasure_holds_no_trace_of_the_person(
    person_everywhere,
    privacy_user,
    settings,
    tmp_path,
    fresh_database,
):
    # The default place of the erasure log: inside MEDIA_ROOT, so the backup holds a copy of it.
    settings.PRIVACY_ERASURE_LOG_PATH = str(Path(settings.MEDIA_ROOT) / "privacy" / "log.jsonl")
    person = person_everywhere["person"]
    # Someone erased earlier: the backup's copy of the erasure log is not empty, and an older
    # log put back over the current one would forget the erasure that follows.
    customers_erase(customer_ids=[CustomerFactory(email="earlier@example.com").pk])
    assert ImportJob.objects.get().status == "done"
    assert _media_traces()
    call_command("backup", directory=tmp_path / "backups")
    [backup] = (tmp_path / "backups").iterdir()
    assert set(_dump_traces(backup / "database.dump")) >= {"email", "name", "phone"}

    data_request_transition(
        request=person_everywhere["request"], status=RequestStatus.COMPLETED, actor=privacy_user
    )
    assert _database_traces() == [] and _media_traces() == []
    customers = Customer.objects.count()

    restored = subprocess.run(
        [sys.executable, "manage.py", "restore", str(backup), "--yes"],
        cwd=REPO,
        env={
            **os.environ,
            "DATABASE_URL": integration.test_database_url(fresh_database),
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "PRIVACY_ERASURE_LOG_PATH": settings.PRIVACY_ERASURE_LOG_PATH,
            "PRIVACY_HASH_SALT": django_settings.PRIVACY_HASH_SALT,
            "CELERY_TASK_ALWAYS_EAGER": "true",
        },
        capture_output=True,
        text=True,
    )

    assert restored.returncode == 0, restored.stderr
    assert "erased 1 customers again" in restored.stdout, restored.stdout
    assert len(Path(settings.PRIVACY_ERASURE_LOG_PATH).read_text().splitlines()) == 2
    assert _media_traces() == []
    with connected_to(fresh_database):
        assert _database_traces() == []
        assert Customer.objects.count() == customers
        assert Customer.objects.filter(pk=person.pk, email__isnull=True).exists()
        assert Suppression.objects.filter(reason=Suppression.Reason.ERASURE).exists()


def test_restore_refuses_without_confirmation(tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--yes"):
        call_command("restore", str(tmp_path))


def test_restore_refuses_a_backup_whose_files_differ_from_the_manifest(tmp_path):
    from django.core.management.base import CommandError

    call_command("backup", directory=tmp_path)
    [backup] = tmp_path.iterdir()
    with (backup / "database.dump").open("ab") as dump:
        dump.write(b"tampered")

    with pytest.raises(CommandError, match="differs from the manifest"):
        call_command("restore", str(backup), "--yes")
