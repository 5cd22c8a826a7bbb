import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from customers.models import Customer
from privacy.retention import retention_run
from privacy.services import consent_grant
from tests.customers.factories import CustomerFactory, PurchaseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def dormant_and_active_customers():
    long_ago = timezone.now() - dt.timedelta(days=4 * 365)
    dormant = CustomerFactory(email="dormant@example.com")
    active = CustomerFactory(email="active@example.com")
    consented = CustomerFactory(email="consented@example.com")
    Customer.objects.filter(pk__in=[dormant.pk, active.pk, consented.pk]).update(
        created_at=long_ago
    )
    PurchaseFactory(customer=dormant, purchased_at=long_ago)
    PurchaseFactory(customer=active, purchased_at=timezone.now() - dt.timedelta(days=30))
    consent_grant(customer=consented, purpose="email_marketing", source="form")
    CustomerFactory(email="new@example.com")  # created recently: never a candidate
    return dormant, active, consented


def test_the_dry_run_reports_inactive_customers_without_changing_them(dormant_and_active_customers):
    dormant, _active, _consented = dormant_and_active_customers

    report = retention_run(dry_run=True, years=3)

    assert (report.candidates, report.sample_ids, report.anonymised) == (1, [dormant.pk], 0)
    assert Customer.objects.get(pk=dormant.pk).email == "dormant@example.com"


def test_the_policy_anonymises_only_customers_without_recent_activity(dormant_and_active_customers):
    dormant, active, consented = dormant_and_active_customers

    report = retention_run(dry_run=False, years=3)

    assert report.anonymised == 1
    assert Customer.objects.get(pk=dormant.pk).email is None
    assert (
        Customer.objects.filter(pk__in=[active.pk, consented.pk], email__isnull=False).count() == 2
    )


def test_the_policy_is_off_with_zero_years(dormant_and_active_customers):
    assert retention_run(dry_run=False, years=0).anonymised == 0


def test_the_command_prints_the_dry_run(dormant_and_active_customers, capsys):
    call_command("apply_retention", "--dry-run", "--years", "3")

    assert "1 customers would be anonymised" in capsys.readouterr().out


@pytest.fixture
def old_and_recent_import_files(db, settings, tmp_path):
    from django.core.files.base import ContentFile

    from customers.models import ImportJob

    def job(days_ago: int) -> ImportJob:
        return ImportJob.objects.create(
            kind=ImportJob.Kind.CUSTOMERS,
            status=ImportJob.Status.DONE,
            file=ContentFile(b"email\nann@example.com\n", name="people.csv"),
            error_report=ContentFile(b"line,column,value,reason\n", name="errors.csv"),
            finished_at=timezone.now() - dt.timedelta(days=days_ago),
        )

    return job(45), job(2)


def test_import_files_are_deleted_after_their_retention_and_the_jobs_stay(
    old_and_recent_import_files, settings
):
    from pathlib import Path

    settings.PRIVACY_IMPORT_FILE_RETENTION_DAYS = 30
    old, recent = old_and_recent_import_files
    old_paths = [Path(old.file.path), Path(old.error_report.path)]

    assert retention_run(dry_run=True).import_files == 2
    assert all(p.exists() for p in old_paths)

    report = retention_run(dry_run=False)

    assert report.import_files == 2
    assert not any(p.exists() for p in old_paths)
    old.refresh_from_db()
    recent.refresh_from_db()
    assert (old.file.name, old.error_report.name) == ("", "")
    assert old.status == "done"
    assert Path(recent.file.path).exists() and Path(recent.error_report.path).exists()
