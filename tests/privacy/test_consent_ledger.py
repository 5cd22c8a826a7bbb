import datetime as dt

import pytest
from django.utils import timezone

from privacy.models import ConsentRecord, ConsentState
from privacy.services import (
    ConsentChange,
    consent_grant,
    consent_record_many,
    consent_state_for,
    consent_withdraw,
)
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_current_state_follows_the_newest_record():
    customer = CustomerFactory()
    consent_grant(customer=customer, purpose="email_marketing", source="form")

    consent_withdraw(customer=customer, purpose="email_marketing", source="staff")

    assert consent_state_for(customer=customer)["email_marketing"] == "withdrawn"
    assert ConsentRecord.objects.filter(customer=customer).count() == 2


def test_purpose_never_recorded_is_unknown():
    customer = CustomerFactory()

    assert consent_state_for(customer=customer)["sms_marketing"] == "unknown"


def test_an_older_record_arriving_late_does_not_override_the_current_state():
    customer = CustomerFactory()
    consent_withdraw(customer=customer, purpose="email_marketing", source="staff")

    consent_grant(
        customer=customer,
        purpose="email_marketing",
        source="import",
        recorded_at=timezone.now() - dt.timedelta(days=30),
    )

    assert consent_state_for(customer=customer)["email_marketing"] == "withdrawn"


def test_ledger_records_cannot_be_changed_or_deleted():
    customer = CustomerFactory()
    record = consent_grant(customer=customer, purpose="profiling", source="form")

    with pytest.raises(TypeError):
        record.save()
    with pytest.raises(TypeError):
        record.delete()
    with pytest.raises(TypeError):
        ConsentRecord.objects.filter(pk=record.pk).update(state="withdrawn")
    with pytest.raises(TypeError):
        ConsentRecord.objects.filter(pk=record.pk).delete()


def test_bulk_records_set_the_state_of_each_customer():
    a, b = CustomerFactory(), CustomerFactory()
    earlier = timezone.now() - dt.timedelta(days=1)

    consent_record_many(
        changes=[
            ConsentChange(a.pk, "email_marketing", "granted", earlier),
            ConsentChange(a.pk, "email_marketing", "withdrawn"),
            ConsentChange(b.pk, "email_marketing", "granted"),
        ],
        source="import",
    )

    states = dict(ConsentState.objects.values_list("customer_id", "state"))
    assert states == {a.pk: "withdrawn", b.pk: "granted"}
