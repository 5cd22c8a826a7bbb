"""The migration that re-keys phone suppressions: an entry hashed under the old rule (punctuation
stripped) is followed by one under the new rule (E.164 digits) wherever a customer still holds the
number, so an unsubscribed customer stays suppressed however their number is written."""

import hashlib
import importlib

import pytest
from django.apps import apps
from django.conf import settings

from privacy.models import Suppression
from privacy.suppression import customers_suppressed, suppression_contains
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

migration = importlib.import_module("privacy.migrations.0006_suppression_phone_e164")


def _old_hash(phone: str) -> str:
    return hashlib.sha256(
        f"{settings.PRIVACY_HASH_SALT}{migration._old_key(phone)}".encode()
    ).hexdigest()


@pytest.fixture(autouse=True)
def _numbers_read_as_german(settings):
    settings.PHONE_DEFAULT_REGION = "DE"


def test_an_unsubscribed_number_stored_in_national_form_stays_suppressed_in_every_writing():
    customer = CustomerFactory(phone="030 1234567")
    Suppression.objects.create(
        kind="phone", value_hash=_old_hash("030 1234567"), reason="unsubscribe"
    )
    assert not suppression_contains(phone="+49 30 1234567")

    migration.phone_suppressions_follow(apps, None)

    assert suppression_contains(phone="+49 30 1234567")
    assert suppression_contains(phone="030 123 45 67")
    assert customer in customers_suppressed()
    assert Suppression.objects.filter(reason="unsubscribe").count() == 2  # the old entry stays


def test_an_erasure_entry_recorded_in_international_form_matches_without_migration():
    Suppression.objects.create(
        kind="phone", value_hash=_old_hash("+49 30 1234567"), reason="erasure"
    )

    assert suppression_contains(phone="030 1234567")


def test_an_erasure_reaches_the_new_entry_when_a_customer_shares_the_number():
    CustomerFactory(phone="030 1234567")
    Suppression.objects.create(kind="phone", value_hash=_old_hash("030 1234567"), reason="erasure")

    migration.phone_suppressions_follow(apps, None)

    new = Suppression.objects.exclude(value_hash=_old_hash("030 1234567")).get()
    assert (new.kind, new.reason) == ("phone", "erasure")
