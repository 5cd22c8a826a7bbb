"""Real-time membership on a real worker: a purchase posted through the API puts its customer into
a segment within seconds, with no refresh asked for."""

import time

import pytest
from django.db import transaction
from django.utils import timezone

from customers.models import MembershipMark
from privacy.services import consent_grant
from segments.models import RefreshRun
from segments.services import segment_create, segment_refresh
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.integration

BIG_SPENDERS = {
    "all": [
        {"metric": "purchase_total", "window": {"last_days": 90}, "op": "gt", "value": 100},
        {"consent": "email_marketing", "state": "granted"},
    ]
}


def test_a_purchase_posted_through_the_api_puts_its_customer_into_the_segment_within_seconds(
    celery_worker_process, admin_user, api_client_for
):
    customer = CustomerFactory(country="DE")
    consent_grant(customer=customer, purpose="email_marketing", source="staff")
    with transaction.atomic():
        segment = segment_create(name="Big spenders", rule=BIG_SPENDERS, owner=admin_user)
    segment_refresh(segment=segment)  # no interval: without real time it would never move
    MembershipMark.objects.all().delete()
    client = api_client_for(admin_user)
    assert (
        client.get("/api/purchases/").status_code == 200
    )  # the process's first request loads the API

    posted = time.monotonic()
    answer = client.post(
        "/api/purchases/",
        {"customer": customer.pk, "purchased_at": timezone.now().isoformat(), "amount": "150.00"},
        format="json",
    )
    assert answer.status_code == 201, answer.content

    celery_worker_process.wait_until(
        lambda: segment.memberships.filter(customer=customer).exists(),
        timeout=30,
        interval=0.05,
        what="the customer to join the segment",
    )
    delay = time.monotonic() - posted
    assert delay < 5, f"joined after {delay:.2f} s"
    membership = segment.memberships.get(customer=customer)
    run = RefreshRun.objects.get(pk=membership.run_id)
    assert (run.trigger, run.status, run.joined) == ("realtime", "done", 1)
    assert not MembershipMark.objects.exists()

    # And out again, as fast, when the consent goes (the API's privacy side).
    withdrawn = time.monotonic()
    answer = client.post(
        "/api/consents/",
        {"customer": customer.pk, "purpose": "email_marketing", "state": "withdrawn"},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    celery_worker_process.wait_until(
        lambda: not segment.memberships.filter(customer=customer).exists(),
        timeout=30,
        interval=0.05,
        what="the customer to leave the segment",
    )
    assert time.monotonic() - withdrawn < 5
    assert segment.changes.filter(customer=customer, change="left").exists()
