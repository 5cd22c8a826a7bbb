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
