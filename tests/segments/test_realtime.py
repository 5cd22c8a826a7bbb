"""Real-time membership: writes mark their customers, and a batch re-evaluates exactly those
customers against every rule segment, recording joins and leaves as a full refresh would."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from customers.marks import customers_mark
from customers.models import Customer, MembershipMark, Purchase
from customers.services import (
    account_update,
    customer_create,
    customer_merge,
    customer_update,
    event_create,
    purchase_create,
)
from privacy.erasure import customer_erase
from privacy.services import consent_grant, consent_withdraw
from segments.models import Membership, MembershipChange, RealtimeQueue, RefreshRun, Segment
from segments.realtime import memberships_update_marked, memberships_update_queue
from segments.rules import rule_changes_with_time
from segments.services import segment_add_members, segment_refresh, segments_refresh_due
from tests.customers.factories import AccountFactory, CustomerFactory
from tests.segments.factories import SegmentFactory, StaticSegmentFactory

pytestmark = pytest.mark.django_db

BIG_SPENDERS = {
    "all": [
        {"metric": "purchase_total", "window": {"last_days": 90}, "op": "gt", "value": 100},
        {"consent": "email_marketing", "state": "granted"},
    ]
}


def members(segment: Segment) -> set[int]:
    return set(segment.memberships.values_list("customer_id", flat=True))


def marked() -> set[int]:
    return set(MembershipMark.objects.values_list("customer_id", flat=True))


def process() -> list:
    """Take batches until no mark is left, as the worker does."""
    batches = []
    while (batch := memberships_update_marked()).customers:
        batches.append(batch)
    return batches


@pytest.fixture
def big_spenders():
    segment = SegmentFactory(name="Big spenders", rule=BIG_SPENDERS)
    segment_refresh(segment=segment)
    return segment


@pytest.fixture
def consenting_customer():
    customer = CustomerFactory()
    consent_grant(customer=customer, purpose="email_marketing", source="staff")
    process()
    return customer


def buy(customer: Customer, amount: str, days_ago: int = 1) -> Purchase:
    return purchase_create(
        customer=customer,
        purchased_at=timezone.now() - dt.timedelta(days=days_ago),
        amount=Decimal(amount),
    )


def test_a_purchase_puts_its_customer_into_the_segment_with_a_realtime_run(
    big_spenders, consenting_customer
):
    buy(consenting_customer, "150")

    assert marked() == {consenting_customer.pk}
    (batch,) = process()

    assert (batch.customers, batch.joined, batch.left) == (1, 1, 0)
    assert members(big_spenders) == {consenting_customer.pk}
    run = RefreshRun.objects.get(pk=batch.runs[0])
    assert (run.segment, run.trigger, run.status) == (big_spenders, "realtime", "done")
    assert (run.joined, run.left, run.size) == (1, 0, 1)
    membership = big_spenders.memberships.get()
    assert membership.run_id == run.pk  # the join is recorded as a refresh records it
    big_spenders.refresh_from_db()
    assert big_spenders.member_count == 1
    assert marked() == set()


def test_a_withdrawn_consent_takes_the_customer_out_with_the_leave_in_the_history(
    big_spenders, consenting_customer
):
    buy(consenting_customer, "150")
    process()
    joined_in = big_spenders.memberships.get().run_id

    consent_withdraw(customer=consenting_customer, purpose="email_marketing", source="staff")
    (batch,) = process()

    assert members(big_spenders) == set()
    history = MembershipChange.objects.filter(segment=big_spenders).order_by("id")
    assert [(c.change, c.run_id) for c in history] == [
        ("joined", joined_in),
        ("left", batch.runs[0]),
    ]
    big_spenders.refresh_from_db()
    assert big_spenders.member_count == 0


def test_a_small_purchase_changes_nothing_and_records_no_run(big_spenders, consenting_customer):
    runs = RefreshRun.objects.count()

    buy(consenting_customer, "20")
    (batch,) = process()

    assert (batch.customers, batch.joined, batch.left, batch.runs) == (1, 0, 0, [])
    assert RefreshRun.objects.count() == runs


def test_only_the_marked_customers_are_evaluated_and_a_full_refresh_stays_the_reference(
    big_spenders, consenting_customer
):
    other = CustomerFactory()
    consent_grant(customer=other, purpose="email_marketing", source="staff")
    process()
    # Written behind the services' back: nobody marks this customer.
    Purchase.objects.create(
        customer=other, purchased_at=timezone.now(), amount=Decimal("500"), dedup_key="unmarked"
    )
    buy(consenting_customer, "150")

    process()
    assert members(big_spenders) == {consenting_customer.pk}

    run = segment_refresh(segment=big_spenders)
    assert (run.joined, run.left) == (1, 0)
    assert members(big_spenders) == {consenting_customer.pk, other.pk}


def test_a_segment_built_on_another_follows_it_in_the_same_batch(big_spenders, consenting_customer):
    berliners = SegmentFactory(
        name="Berlin big spenders",
        rule={
            "all": [{"segment": big_spenders.pk}, {"field": "city", "op": "eq", "value": "Berlin"}]
        },
    )
    segment_refresh(segment=berliners)

    buy(consenting_customer, "150")
    (batch,) = process()

    assert members(big_spenders) == members(berliners) == {consenting_customer.pk}
    assert batch.joined == 2


def test_a_full_refresh_marks_its_changes_for_the_segments_built_on_it(consenting_customer):
    germans = SegmentFactory(name="Germans", rule={"field": "country", "op": "eq", "value": "DE"})
    consenting_germans = SegmentFactory(
        name="Consenting Germans",
        rule={"all": [{"segment": germans.pk}, {"consent": "email_marketing", "state": "granted"}]},
    )
    process()

    segment_refresh(segment=germans)  # the customer joins Germans

    assert marked() == {consenting_customer.pk}
    process()
    assert members(consenting_germans) == {consenting_customer.pk}


def test_hand_picked_members_of_a_static_segment_reach_the_rules_built_on_it(consenting_customer):
    picked = StaticSegmentFactory(name="Picked")
    followers = SegmentFactory(name="Picked ones", rule={"segment": picked.pk})

    segment_add_members(segment=picked, customers=[consenting_customer.pk])
    process()

    assert members(followers) == {consenting_customer.pk}


@pytest.mark.parametrize(
    "write",
    [
        "create",
        "update",
        "event",
        "consent",
        "merge",
        "erase",
        "account",
    ],
)
def test_every_write_that_can_change_membership_marks_the_customer(write):
    account = AccountFactory()
    customer = CustomerFactory(account=account)
    MembershipMark.objects.all().delete()

    if write == "create":
        customer = customer_create(first_name="Ada", email="ada@example.com")
    elif write == "update":
        customer_update(customer=customer, city="Hamburg")
    elif write == "event":
        event_create(customer=customer, type="page_view", occurred_at=timezone.now())
    elif write == "consent":
        consent_grant(customer=customer, purpose="email_marketing", source="staff")
    elif write == "merge":
        duplicate = CustomerFactory()
        customer_merge(target=customer, duplicate=duplicate)
    elif write == "erase":
        customer_erase(customer=customer)
    elif write == "account":
        account_update(account=account, industry="Banking")

    assert customer.pk in marked()


def test_an_erased_customer_leaves_every_segment(big_spenders, consenting_customer):
    buy(consenting_customer, "150")
    process()

    customer_erase(customer=consenting_customer)
    process()

    assert members(big_spenders) == set()
    assert marked() == set()


def test_a_field_edit_moves_a_customer_between_segments():
    customer = CustomerFactory(city="Berlin")
    berlin = SegmentFactory(name="Berlin", rule={"field": "city", "op": "eq", "value": "Berlin"})
    hamburg = SegmentFactory(name="Hamburg", rule={"field": "city", "op": "eq", "value": "Hamburg"})
    segment_refresh(segment=berlin)
    segment_refresh(segment=hamburg)

    customer_update(customer=customer, city="Hamburg")
    process()

    assert (members(berlin), members(hamburg)) == (set(), {customer.pk})


def test_a_segment_whose_rule_fails_is_skipped_and_the_others_are_kept_up_to_date(
    big_spenders, consenting_customer
):
    broken = SegmentFactory(name="Broken")
    Segment.objects.filter(pk=broken.pk).update(rule={"field": "no_such_field", "op": "eq"})

    buy(consenting_customer, "150")
    (batch,) = process()

    assert batch.failed == [broken.pk]
    assert members(big_spenders) == {consenting_customer.pk}


def test_a_batch_takes_at_most_its_size_oldest_first():
    customers = CustomerFactory.create_batch(5)
    MembershipMark.objects.all().delete()
    for customer in customers:
        customers_mark(customer_ids=[customer.pk])

    first = memberships_update_marked(limit=2)

    assert first.customers == 2
    assert marked() == {c.pk for c in customers[2:]}


def test_a_customer_marked_twice_keeps_the_earlier_time():
    customer = CustomerFactory()
    customers_mark(customer_ids=[customer.pk])
    first = MembershipMark.objects.get(customer=customer).marked_at

    customers_mark(customer_ids=[customer.pk, customer.pk])

    assert MembershipMark.objects.get(customer=customer).marked_at == first


def test_writes_queue_one_update_while_one_is_waiting_for_a_worker(consenting_customer):
    RealtimeQueue.objects.update_or_create(pk=1, defaults={"queued_at": timezone.now()})
    customers_mark(customer_ids=[consenting_customer.pk])

    assert memberships_update_queue() is False
    assert marked() == {consenting_customer.pk}  # the waiting task will take it

    # A task queued a while ago and never started counts as lost: the next write queues one.
    RealtimeQueue.objects.filter(pk=1).update(queued_at=timezone.now() - dt.timedelta(minutes=1))
    assert memberships_update_queue() is True
    assert marked() == set()  # without a broker the task ran at once


def test_rules_that_change_with_time_alone_keep_a_scheduled_full_refresh():
    recent = SegmentFactory(name="Recent", rule=BIG_SPENDERS)
    germans = SegmentFactory(name="Germans", rule={"field": "country", "op": "eq", "value": "DE"})
    segment_refresh(segment=recent)
    segment_refresh(segment=germans)
    assert rule_changes_with_time(recent.rule) and not rule_changes_with_time(germans.rule)

    runs = segments_refresh_due(now=timezone.now() + dt.timedelta(hours=2))

    assert [run.segment for run in runs] == [recent]
    assert segments_refresh_due(now=timezone.now()) == []


def test_a_segment_that_matches_no_one_loses_its_marked_members():
    customer = CustomerFactory()
    nobody = SegmentFactory(name="Nobody", rule={"any": []})
    Membership.objects.create(segment=nobody, customer=customer, since=timezone.now())
    customers_mark(customer_ids=[customer.pk])

    (batch,) = process()

    assert (batch.failed, batch.left, members(nobody)) == ([], 1, set())
