"""Journeys on a real worker and a real beat, mailing through a real SMTP server, with waits of
seconds: customers move through each branch, the goal ends an enrolment, a withdrawn consent
stops one, and killing the worker mid-journey never sends a step's message twice."""

import datetime as dt
import os
import signal
import subprocess
import sys
import threading

import pytest
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from campaigns.models import Send
from campaigns.tracking import message_event_record
from customers.models import Customer
from customers.services import purchase_create
from deals.models import Activity
from journeys.models import Enrolment, Journey
from journeys.services import journey_activate, journey_create, step_add
from privacy.services import consent_withdraw
from segments.services import segment_add_members
from tests.campaigns.factories import consent_grant_all
from tests.integration.conftest import REPO, WorkerProcess
from tests.journeys.factories import welcome_journey
from tests.segments.factories import StaticSegmentFactory

pytestmark = pytest.mark.integration


def _schedule(task: str, seconds: int) -> None:
    every, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
    PeriodicTask.objects.update_or_create(name=task, defaults={"task": task, "interval": every})


@pytest.fixture
def journey_set(campaign_workers, tmp_path):
    """Workers (campaign_workers) and one beat that runs the journeys every second and the
    delivery sweeper as production does, with a claim timeout of two seconds."""
    _schedule("journeys.tasks.journeys_run_task", 1)
    _schedule("campaigns.tasks.sends_sweep_task", 1)
    campaign_workers.environment["CAMPAIGNS_CLAIM_TIMEOUT"] = "2"
    campaign_workers.environment["CAMPAIGNS_RATE_PER_SECOND"] = "0"
    beat = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "crm",
            "beat",
            "--loglevel=INFO",
            "-s",
            str(tmp_path / "beat-schedule"),
        ],  # fmt: skip
        cwd=REPO,
        env=campaign_workers.environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    watcher = WorkerProcess(beat, "beat")
    threading.Thread(
        target=lambda: watcher.lines.extend(iter(beat.stdout.readline, "")), daemon=True
    ).start()
    try:
        yield campaign_workers
    finally:
        os.killpg(beat.pid, signal.SIGTERM)
        try:
            beat.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(beat.pid, signal.SIGKILL)
            beat.wait()


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
        ]
    )
    return list(Customer.objects.filter(external_id__startswith=f"{prefix}-").order_by("pk"))


def _until(worker: WorkerProcess, condition, *, timeout: float, what: str):
    return worker.wait_until(condition, timeout=timeout, interval=0.1, what=what)


def _received(sink) -> list[tuple[str, str]]:
    return [(rcpt[0], message["Subject"]) for rcpt, message in sink.snapshot()]


def test_customers_move_through_each_branch_the_goal_and_a_withdrawal_end_enrolments(
    journey_set, admin_user
):
    sink = journey_set.sink
    new_customers = StaticSegmentFactory(name="new customers")
    journey = welcome_journey(segment=new_customers, actor=admin_user, wait=dt.timedelta(seconds=8))
    journey_activate(journey=journey, actor=admin_user)
    opener, ignorer, buyer, withdrawer = _customers(4, "welcome")
    consent_grant_all([opener, ignorer, buyer, withdrawer])
    worker = journey_set.start()

    segment_add_members(
        segment=new_customers, customers=[c.pk for c in (opener, ignorer, buyer, withdrawer)]
    )

    _until(worker, lambda: len(sink) >= 4, timeout=60, what="the four welcome emails")
    welcome = journey.steps.get(position=1).campaign
    sends = {s.customer_id: s for s in Send.objects.filter(campaign=welcome)}
    message_event_record(send=sends[opener.pk], kind="open")
    purchase_create(customer=buyer, purchased_at=timezone.now(), amount=30)
    consent_withdraw(customer=withdrawer, purpose="email_marketing", source="staff")

    _until(
        worker,
        lambda: not Enrolment.objects.filter(journey=journey, state="active").exists(),
        timeout=90,
        what="every enrolment to end",
    )
    _until(
        worker,
        lambda: not Send.objects.filter(status__in=["pending", "claimed", "handing_over"]).exists(),
        timeout=60,
        what="the second email to be delivered",
    )
    ended = {
        e.customer_id: (e.state, e.end_reason) for e in Enrolment.objects.filter(journey=journey)
    }
    assert ended == {
        opener.pk: ("completed", "reached an end step"),
        ignorer.pk: ("completed", "reached the end of the journey"),
        buyer.pk: ("converted", "reached the goal"),
        withdrawer.pk: ("exited", "withdrew consent"),
    }
    received = sorted(_received(sink))
    assert received == sorted(
        [(c.email, "Welcome") for c in (opener, ignorer, buyer, withdrawer)]
        + [(opener.email, "Still curious?")]
    )
    task = Activity.objects.get(customer=ignorer)
    assert (task.subject, task.assignee) == ("Call the new customer", admin_user)
    assert not Activity.objects.exclude(customer=ignorer).exists()


def test_killing_the_worker_mid_journey_never_sends_a_step_twice(journey_set, admin_user):
    sink = journey_set.sink
    sink.answer_delay = 0.02  # the server takes a moment over each message
    journey_set.environment["CAMPAIGNS_BATCH_SIZE"] = "10"
    journey_set.environment["JOURNEYS_BATCH_SIZE"] = "10"
    segment = StaticSegmentFactory(name="kill test")
    journey = journey_create(
        actor=admin_user, name="Three emails", trigger=Journey.Trigger.SEGMENT,
        trigger_segment=segment,
    )  # fmt: skip
    for subject in ("One", "Two"):
        step_add(journey=journey, actor=admin_user, kind="send", subject=subject, body="Hi")
    step_add(journey=journey, actor=admin_user, kind="wait", wait=dt.timedelta(seconds=2))
    step_add(journey=journey, actor=admin_user, kind="send", subject="Three", body="Hi")
    journey_activate(journey=journey, actor=admin_user)
    customers = _customers(40, "kill")
    consent_grant_all(customers)
    worker = journey_set.start(concurrency=2)
    segment_add_members(segment=segment, customers=[c.pk for c in customers])

    kills = 0
    while kills < 4 and len(sink) < 110:
        before = len(sink)
        _until(worker, lambda before=before: len(sink) > before + 5, timeout=60, what="progress")
        journey_set.kill(worker)
        kills += 1
        worker = journey_set.start(concurrency=2)

    _until(
        worker,
        lambda: (
            Enrolment.objects.filter(journey=journey, state="completed").count() == 40
            and not Send.objects.filter(status__in=["pending", "claimed", "handing_over"]).exists()
        ),
        timeout=180,
        what="every enrolment to complete and every message to be settled",
    )
    received = _received(sink)
    assert len(received) == len(set(received)), "a step's message arrived twice"
    rows = Send.objects.filter(customer__in=customers).values_list(
        "customer__email", "campaign__journey_step__subject", "status"
    )
    assert len(rows) == 3 * 40  # one send row per send step per enrolment
    sent = {(email, subject) for email, subject, status in rows if status == "sent"}
    unknown = {(email, subject) for email, subject, status in rows if status == "unknown"}
    assert {status for _e, _s, status in rows} <= {"sent", "unknown"}
    assert sent <= set(received), "recorded as sent but never arrived"
    assert set(received) <= sent | unknown
    print(f"\n{kills} kills: {len(received)} of 120 messages arrived, {len(unknown)} unknown")
