"""Campaign delivery through a real Celery worker, Redis, PostgreSQL and an SMTP server."""

import datetime as dt
import os
import random
import time
from decimal import Decimal

import pytest

from campaigns.models import Campaign, PromotionCode, Send
from campaigns.results import campaign_report
from campaigns.services import (
    campaign_launch,
    campaign_resend_unknown,
    promotion_set,
    sends_sweep,
    variant_create,
)
from customers.models import Customer
from tests.campaigns.factories import CampaignFactory, consent_grant_all, members_add
from tests.segments.factories import StaticSegmentFactory

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _purposes(transactional_db):
    """Flushes between transactional tests remove the purposes the migrations created."""
    from privacy.models import Purpose

    for code in (Purpose.EMAIL_MARKETING, Purpose.DATA_SALE):
        Purpose.objects.get_or_create(code=code, defaults={"name": code})


def _customers(n: int, prefix: str) -> list[Customer]:
    Customer.objects.bulk_create(
        [
            Customer(
                first_name=f"First{i}",
                last_name="Tester",
                email=f"{prefix}{i}@example.org",
                external_id=f"{prefix}-{i}",
            )  # fmt: skip
            for i in range(n)
        ],
        batch_size=5000,
    )
    return list(Customer.objects.filter(external_id__startswith=f"{prefix}-").order_by("pk"))


def _campaign(segment, *, holdout: str = "0") -> Campaign:
    campaign = CampaignFactory(holdout_percent=Decimal(holdout))
    campaign.target_segments.add(segment)
    for name in ("A", "B"):
        variant_create(
            campaign=campaign,
            actor=None,
            name=name,
            subject=f"[{name}] Hello {{{{ customer.first_name }}}}",
            text="Hi {{ customer.first_name }}, your code: {{ promotion.code }}. "
            "Unsubscribe: {{ links.unsubscribe }}",
            html='<p>Hi {{ customer.first_name }}</p><a href="https://shop.example/x">Shop</a>',
        )
    return campaign


def _wait_done(workers, worker, campaign, timeout: float) -> None:
    worker.wait_until(
        lambda: Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT,
        timeout=timeout,
        what="the campaign to be sent",
    )


def test_worker_mails_exactly_the_eligible_recipients_with_variant_code_and_headers(
    campaign_workers,
):
    segment = StaticSegmentFactory()
    customers = _customers(60, "smtp")
    members_add(segment, customers)
    consent_grant_all(customers[:50])  # the last ten never consented
    campaign = _campaign(segment, holdout="20")
    promotion_set(campaign=campaign, actor=None, discount="percent", value=Decimal("15"))
    worker = campaign_workers.start()

    campaign_launch(campaign=campaign, actor=None)
    _wait_done(campaign_workers, worker, campaign, timeout=120)

    sends = {s.customer.email: s for s in Send.objects.select_related("customer", "variant")
             .filter(campaign=campaign, status=Send.Status.SENT)}  # fmt: skip
    received = campaign_workers.sink.snapshot()
    assert sorted(rcpt[0] for rcpt, _m in received) == sorted(sends)
    assert {c.email for c in customers[50:]}.isdisjoint(sends)
    holdout = Send.objects.filter(campaign=campaign, is_holdout=True).count()
    assert holdout + len(sends) == 50
    codes = dict(PromotionCode.objects.filter(promotion__campaign=campaign)
                 .values_list("customer__email", "code"))  # fmt: skip
    for (rcpt,), message in received:
        send = sends[rcpt]
        assert message["Subject"] == f"[{send.variant.name}] Hello {send.customer.first_name}"
        text = message.get_payload()[0].get_payload(decode=True).decode()
        assert f"Hi {send.customer.first_name}, your code: {codes[rcpt]}." in text
        assert message["List-Unsubscribe"].strip().startswith("<http://crm.test/campaigns/u/")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["Message-ID"] == send.provider_message_id


# The fault test: workers killed with SIGKILL at random moments, replaced, the sweeper run as
# its beat would. `make test-delivery-faults` runs it longer (more kills, more recipients).
FAULT_KILLS = int(os.environ.get("DELIVERY_FAULT_KILLS", "20"))
FAULT_RECIPIENTS = int(os.environ.get("DELIVERY_FAULT_RECIPIENTS", "2500"))
FAULT_SEED = int(os.environ.get("DELIVERY_FAULT_SEED", "19"))
# The share of kills that take the whole worker down (the others kill one of its processes).
FAULT_WHOLE_WORKER = float(os.environ.get("DELIVERY_FAULT_WHOLE_WORKER", "0.15"))
# What the sweeper's claim timeout is in this test: a killed worker's rows wait this long.
FAULT_CLAIM_TIMEOUT = dt.timedelta(seconds=2)


def _until(condition, *, timeout: float, what: str, sweep: bool = True):
    """Poll `condition()`, running the sweeper as its beat would, until it is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if sweep:
            sends_sweep(stale_after=FAULT_CLAIM_TIMEOUT)
        time.sleep(0.05)
    pytest.fail(f"Timed out after {timeout}s waiting for {what}")


def test_workers_killed_at_random_moments_never_send_twice_and_record_only_what_arrived(
    campaign_workers,
):
    rng = random.Random(FAULT_SEED)
    segment = StaticSegmentFactory()
    n = FAULT_RECIPIENTS
    customers = _customers(n, "fault")
    members_add(segment, customers)
    consenting = customers[: n - n // 15]
    consent_grant_all(consenting)
    never = {c.email for c in customers[len(consenting) :]}
    campaign = _campaign(segment)
    sink = campaign_workers.sink
    sink.answer_delay = 0.01  # the server takes a moment over each message
    campaign_workers.environment["CAMPAIGNS_GROUP_SIZE"] = "16"
    campaign_workers.environment["CAMPAIGNS_BATCH_SIZE"] = "50"
    started = time.monotonic()
    # One worker with two processes, as `make run` starts it (--concurrency=2). Most kills hit
    # one of its processes (the worker forks a new one at once); some kill the whole worker,
    # which is then started again.
    worker = campaign_workers.start(concurrency=2)

    campaign_launch(campaign=campaign, actor=None)
    kills = []
    while len(kills) < FAULT_KILLS:
        # Each kill hits a worker at work: at a random moment after a message arrived since
        # the last kill.
        before = len(sink)
        _until(
            lambda before=before: (
                len(sink) > before
                or Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT
            ),
            timeout=90,
            what="the worker to deliver",
        )
        if Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT:
            break  # everything went before the last kill (the assertion below says so)
        time.sleep(rng.uniform(0, 0.08))
        processes = campaign_workers.pool_processes(worker)
        if rng.random() < FAULT_WHOLE_WORKER or not processes:
            campaign_workers.kill(worker)
            worker = campaign_workers.start(concurrency=2)
            kills.append(("worker", len(sink)))
        else:
            campaign_workers.kill_pool_process(rng.choice(processes))
            kills.append(("process", len(sink)))
        sends_sweep(stale_after=FAULT_CLAIM_TIMEOUT)
    _until(
        lambda: Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT,
        timeout=120,
        what="the campaign to be sent",
    )
    sends_sweep(stale_after=FAULT_CLAIM_TIMEOUT)  # nothing left to sweep once it is sent

    received = [rcpt[0] for rcpt, _m in sink.snapshot()]
    rows = dict(Send.objects.filter(campaign=campaign).values_list("customer__email", "status"))
    eligible = {c.email for c in consenting}
    sent = {email for email, status in rows.items() if status == Send.Status.SENT}
    unknown = {email for email, status in rows.items() if status == Send.Status.UNKNOWN}
    missing = eligible - set(received)
    assert len(kills) == FAULT_KILLS, f"the campaign was sent after {len(kills)} kills"
    assert len(received) == len(set(received)), "someone got two messages"
    assert never.isdisjoint(received), "a customer without consent got a message"
    assert sent <= set(received), "a send recorded as sent never reached the server"
    assert missing <= unknown, "a message that never arrived is not recorded as unknown"
    assert set(received) <= sent | unknown
    assert set(rows.values()) <= {Send.Status.SENT, Send.Status.UNKNOWN, Send.Status.EXCLUDED}
    assert sent | unknown == eligible  # nothing pending, claimed, handed over, failed
    report = campaign_report(campaign=Campaign.objects.get(pk=campaign.pk))
    assert report["totals"]["unknown"] == len(unknown)
    assert report["totals"]["sent"] == len(sent)
    print(
        f"\nfault test (seed {FAULT_SEED}): {len(kills)} kills (kind, messages received): {kills}; "
        f"{len(received)} of {len(eligible)} arrived, {len(sent)} recorded sent, "
        f"{len(unknown)} unknown ({len(missing)} of them never arrived, "
        f"{len(unknown) - len(missing)} arrived before the answer was recorded) "
        f"in {time.monotonic() - started:.1f}s"
    )

    # Sending the unknown ones again: the missing get theirs, and only unknown ones that had
    # arrived are sent twice (the warning the marketer confirms).
    if unknown:
        campaign_resend_unknown(campaign=campaign, actor=None)
        _until(
            lambda: Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT,
            timeout=60,
            what="the unknown ones to be sent again",
        )
        again = [rcpt[0] for rcpt, _m in sink.snapshot()]
        assert set(again) == eligible
        twice = {email for email in again if again.count(email) > 1}
        assert twice <= unknown - missing
