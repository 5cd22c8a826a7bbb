"""The engine: triggers become enrolments, steps run once per enrolment, exits and the goal end
enrolments before the next step."""

import datetime as dt

import pytest
from django.utils import timezone

from campaigns.models import Send
from campaigns.tracking import message_event_record
from customers.services import purchase_create
from deals.models import Activity
from journeys.engine import enrolments_advance_due, journeys_run_due
from journeys.models import Enrolment, EnrolmentEvent, Journey
from journeys.services import enrolment_create, journey_activate, journey_test_start
from privacy.services import consent_withdraw
from tests.campaigns.factories import consent_grant_all, members_add
from tests.customers.factories import CustomerFactory
from tests.journeys.factories import welcome_journey
from tests.segments.factories import StaticSegmentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def new_customers():
    return StaticSegmentFactory(name="new customers")


@pytest.fixture
def active_welcome(new_customers, marketing_user):
    journey = welcome_journey(segment=new_customers, actor=marketing_user)
    return journey_activate(journey=journey, actor=marketing_user)


def _later(**delta):
    return timezone.now() + dt.timedelta(**delta)


def _join(segment, customers):
    consent_grant_all(customers)
    members_add(segment, customers)


def test_customers_who_enter_the_segment_are_enrolled_and_get_the_first_email(
    active_welcome, new_customers, django_capture_on_commit_callbacks
):
    customers = CustomerFactory.create_batch(3)
    _join(new_customers, customers)

    with django_capture_on_commit_callbacks(execute=True):
        result = journeys_run_due(now=_later(seconds=1))

    assert result["enrolled"] == 3
    enrolments = Enrolment.objects.filter(journey=active_welcome)
    assert {e.step.kind for e in enrolments} == {"wait"}
    first = active_welcome.steps.get(position=1)
    sends = Send.objects.filter(campaign=first.campaign)
    assert sorted(sends.values_list("customer_id", flat=True)) == sorted(c.pk for c in customers)
    assert set(sends.values_list("status", flat=True)) == {"sent"}  # eager delivery, locmem


def test_a_customer_who_joined_before_activation_is_not_enrolled(new_customers, marketing_user):
    before = CustomerFactory()
    _join(new_customers, [before])
    journey = welcome_journey(segment=new_customers, actor=marketing_user)
    journey_activate(journey=journey, actor=marketing_user)

    assert journeys_run_due(now=_later(seconds=1))["enrolled"] == 0


def test_each_branch_of_the_split_and_the_end(active_welcome, new_customers):
    opener, ignorer = CustomerFactory(), CustomerFactory(owner=None)
    _join(new_customers, [opener, ignorer])
    journeys_run_due(now=_later(seconds=1))
    welcome = active_welcome.steps.get(position=1).campaign
    message_event_record(send=Send.objects.get(campaign=welcome, customer=opener), kind="open")

    journeys_run_due(now=_later(days=1, seconds=5))

    second = active_welcome.steps.get(position=4).campaign
    assert list(Send.objects.filter(campaign=second).values_list("customer_id", flat=True)) == [
        opener.pk
    ]
    task = Activity.objects.get(customer=ignorer)
    assert task.subject == "Call the new customer"
    assert task.assignee == active_welcome.created_by  # no owner: the journey's author
    states = dict(Enrolment.objects.values_list("customer_id", "state"))
    assert states == {opener.pk: "completed", ignorer.pk: "completed"}
    kinds = list(
        EnrolmentEvent.objects.filter(enrolment__customer=opener).values_list("kind", flat=True)
    )
    assert kinds == ["entered", "reached", "sent", "reached", "waited", "reached", "yes",
                     "reached", "sent", "reached", "completed"]  # fmt: skip


def test_a_purchase_reaches_the_goal_and_ends_the_enrolment_before_the_next_step(
    active_welcome, new_customers
):
    buyer = CustomerFactory()
    _join(new_customers, [buyer])
    journeys_run_due(now=_later(seconds=1))
    purchase_create(customer=buyer, purchased_at=_later(seconds=2), amount=20)

    journeys_run_due(now=_later(days=2))

    enrolment = Enrolment.objects.get(customer=buyer)
    assert (enrolment.state, enrolment.end_reason) == ("converted", "reached the goal")
    assert not Activity.objects.filter(customer=buyer).exists()
    assert Send.objects.filter(customer=buyer).count() == 1


def test_withdrawn_consent_stops_the_enrolment(active_welcome, new_customers):
    customer = CustomerFactory()
    _join(new_customers, [customer])
    journeys_run_due(now=_later(seconds=1))
    consent_withdraw(customer=customer, purpose="email_marketing", source="staff")

    journeys_run_due(now=_later(days=2))

    enrolment = Enrolment.objects.get(customer=customer)
    assert (enrolment.state, enrolment.end_reason) == ("exited", "withdrew consent")
    assert Send.objects.filter(customer=customer).count() == 1


def test_running_a_step_twice_writes_one_message_per_enrolment(active_welcome, new_customers):
    customer = CustomerFactory()
    _join(new_customers, [customer])
    journeys_run_due(now=_later(seconds=1))
    # As if the worker died after the send row was written and the round is run again.
    enrolment = Enrolment.objects.get(customer=customer)
    first = active_welcome.steps.get(position=1)
    Enrolment.objects.filter(pk=enrolment.pk).update(step=first, due_at=timezone.now())

    enrolments_advance_due(now=_later(seconds=2))

    assert Send.objects.filter(campaign=first.campaign, customer=customer).count() == 1


def test_once_ever_refuses_a_second_enrolment_and_every_time_allows_it(
    active_welcome, new_customers, marketing_user
):
    customer = CustomerFactory()
    consent_grant_all([customer])
    first = enrolment_create(journey=active_welcome, actor=marketing_user, customer=customer)
    enrolments_advance_due(now=_later(seconds=1))
    Enrolment.objects.filter(pk=first.pk).update(state="completed")

    with pytest.raises(Exception, match="before"):
        enrolment_create(journey=active_welcome, actor=marketing_user, customer=customer)

    Journey.objects.filter(pk=active_welcome.pk).update(reentry="always")
    active_welcome.refresh_from_db()
    again = enrolment_create(journey=active_welcome, actor=marketing_user, customer=customer)
    assert again.entry == 2
    enrolments_advance_due(now=_later(seconds=1))
    welcome = active_welcome.steps.get(position=1).campaign
    assert sorted(
        Send.objects.filter(campaign=welcome, customer=customer).values_list(
            "occurrence", flat=True
        )
    ) == [1, 2]


def test_test_mode_runs_a_draft_journey_for_one_customer_with_the_waits_shortened(
    new_customers, marketing_user, settings, django_capture_on_commit_callbacks
):
    settings.JOURNEYS_TEST_WAIT_SECONDS = 3
    journey = welcome_journey(segment=new_customers, actor=marketing_user)
    customer = CustomerFactory()
    consent_grant_all([customer])

    with django_capture_on_commit_callbacks(execute=True):
        enrolment = journey_test_start(journey=journey, actor=marketing_user, customer=customer)

    enrolment.refresh_from_db()  # moved on by the task queued on commit (eager)
    assert enrolment.is_test and enrolment.step.kind == "wait"
    assert enrolment.due_at - enrolment.step_since == dt.timedelta(seconds=3)
    enrolments_advance_due(now=_later(seconds=4))
    enrolment.refresh_from_db()
    assert enrolment.state == "completed"
    assert Activity.objects.filter(customer=customer).count() == 1


def test_a_paused_journey_moves_nobody(active_welcome, new_customers, marketing_user):
    from journeys.services import journey_pause

    customer = CustomerFactory()
    _join(new_customers, [customer])
    journeys_run_due(now=_later(seconds=1))
    journey_pause(journey=active_welcome, actor=marketing_user)

    journeys_run_due(now=_later(days=3))

    assert Enrolment.objects.get(customer=customer).step.kind == "wait"


def test_a_round_costs_the_same_statements_for_ten_or_a_hundred_enrolments(
    active_welcome, new_customers, django_assert_max_num_queries
):
    customers = CustomerFactory.create_batch(100)
    _join(new_customers, customers)
    journeys_run_due(now=_later(seconds=1))
    Enrolment.objects.update(due_at=timezone.now())

    with django_assert_max_num_queries(40):
        enrolments_advance_due(now=_later(seconds=2), max_rounds=1)


def test_a_join_recorded_in_real_time_runs_the_journey_at_once(
    marketing_user, django_capture_on_commit_callbacks
):
    from customers.marks import customers_mark
    from segments.realtime import memberships_update_marked
    from segments.services import segment_create

    germans = segment_create(
        name="Germans", rule={"all": [{"field": "country", "op": "eq", "value": "DE"}]},
        owner=marketing_user,
    )  # fmt: skip
    journey = welcome_journey(segment=germans, actor=marketing_user)
    journey_activate(journey=journey, actor=marketing_user)
    customer = CustomerFactory(country="DE")
    consent_grant_all([customer])
    customers_mark(customer_ids=[customer.pk], notify=False)

    with django_capture_on_commit_callbacks(execute=True):
        batch = memberships_update_marked()

    assert batch.joined == 1
    enrolment = Enrolment.objects.get(journey=journey, customer=customer)
    assert enrolment.step.kind == "wait"  # the welcome email's step has run
