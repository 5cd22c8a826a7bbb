"""Fixtures of the privacy tests, named by the state they set up."""

import pytest

from privacy.services import consent_grant
from tests.customers.factories import CustomerFactory


@pytest.fixture(autouse=True)
def _erasure_log_in_tmp(settings, tmp_path):
    """Erasures append to a log file outside the database; keep it out of the checkout."""
    settings.PRIVACY_ERASURE_LOG_PATH = str(tmp_path / "erasures.jsonl")
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def consenting_customer(db):
    customer = CustomerFactory(email="ada.lovelace@example.com", phone="+44 20 7946 0018")
    consent_grant(customer=customer, purpose="email_marketing", source="form")
    return customer
