import threading
import time

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from segments.models import RefreshRun, Segment
from segments.rules import RuleInvalid
from segments.selectors import membership_changes, segment_joiners
from segments.services import (
    segment_add_members,
    segment_refresh,
    segment_remove_members,
    segment_update,
    segments_refresh_due,
)
from tests.segments.factories import SegmentFactory

pytestmark = pytest.mark.django_db


def member_ids(segment):
    return set(segment.memberships.values_list("customer_id", flat=True))


def test_first_refresh_puts_every_matching_customer_in_the_segment(
    segment_of_germans, german_customers, french_customer
):
    run = segment_refresh(segment=segment_of_germans)

    assert member_ids(segment_of_germans) == {c.pk for c in german_customers}
    assert (run.status, run.size, run.joined, run.left) == ("done", 3, 3, 0)
    assert segment_of_germans.member_count == 3
    assert segment_of_germans.last_refreshed_at is not None


def test_refresh_records_who_joined_and_who_left(
    segment_of_germans, german_customers, french_customer
):
    segment_refresh(segment=segment_of_germans)
    moved = german_customers[0]
    moved.country = "AT"
    moved.save(update_fields=["country"])
    french_customer.country = "DE"
    french_customer.save(update_fields=["country"])

    run = segment_refresh(segment=segment_of_germans)

    assert (run.size, run.joined, run.left) == (3, 1, 1)
    changes = {(c["customer_id"], c["change"]) for c in membership_changes(run=run)}
    assert changes == {(french_customer.pk, "joined"), (moved.pk, "left")}
    assert member_ids(segment_of_germans) == {
        german_customers[1].pk,
        german_customers[2].pk,
        french_customer.pk,
    }


def test_refresh_without_changes_keeps_membership_and_logs_nothing(
    segment_of_germans, german_customers
):
    segment_refresh(segment=segment_of_germans)
    since = dict(segment_of_germans.memberships.values_list("customer_id", "since"))

    run = segment_refresh(segment=segment_of_germans)

    assert (run.size, run.joined, run.left) == (3, 0, 0)
    assert dict(segment_of_germans.memberships.values_list("customer_id", "since")) == since
    assert not membership_changes(run=run).exists()


def test_a_customer_who_leaves_keeps_the_join_and_the_leave_in_the_history(
    segment_of_germans, german_customers
):
    first = segment_refresh(segment=segment_of_germans)
    moved = german_customers[0]
    moved.country = "AT"
    moved.save(update_fields=["country"])

    second = segment_refresh(segment=segment_of_germans)

    history = [(c["change"], c["run_id"], c["at"]) for c in membership_changes(customer=moved)]
    assert history == [
        ("left", second.pk, second.started_at),
        ("joined", first.pk, first.started_at),
    ]


def test_a_customer_who_comes_back_has_both_stays_in_the_history(
    segment_of_germans, german_customers
):
    first = segment_refresh(segment=segment_of_germans)
    moved = german_customers[0]
    for country in ("AT", "DE"):
        moved.country = country
        moved.save(update_fields=["country"])
        last = segment_refresh(segment=segment_of_germans)

    history = [(c["change"], c["run_id"]) for c in membership_changes(customer=moved)]

    assert history == [("joined", last.pk), ("left", last.pk - 1), ("joined", first.pk)]
    assert segment_of_germans.memberships.get(customer=moved).since == last.started_at


def test_joiners_of_a_period_include_those_who_left_again(
    segment_of_germans, german_customers, french_customer
):
    stays, leaves = french_customer, german_customers[0]
    leaves.country = "FR"
    leaves.save(update_fields=["country"])
    before = segment_refresh(segment=segment_of_germans).started_at
    for customer in (stays, leaves):
        customer.country = "DE"
        customer.save(update_fields=["country"])
    joined_at = segment_refresh(segment=segment_of_germans).started_at
    leaves.country = "FR"
    leaves.save(update_fields=["country"])
    segment_refresh(segment=segment_of_germans)

    joiners = segment_joiners(
        segments=Segment.objects.filter(pk=segment_of_germans.pk), after=before, until=joined_at
    )

    assert set(joiners.values_list("pk", flat=True)) == {stays.pk, leaves.pk}


def test_members_removed_by_hand_keep_their_join_in_the_history(german_customers):
    static = SegmentFactory(kind=Segment.Kind.STATIC, rule={})
    added = segment_add_members(segment=static, customers=[c.pk for c in german_customers])

    removed = segment_remove_members(segment=static, customers=[german_customers[0].pk])

    assert (removed.joined, removed.left, removed.size) == (0, 1, 2)
    assert [
        (c["change"], c["run_id"]) for c in membership_changes(customer=german_customers[0])
    ] == [
        ("left", removed.pk),
        ("joined", added.pk),
    ]
    assert {c["customer_id"] for c in membership_changes(run=added)} == {
        c.pk for c in german_customers
    }


def test_segment_of_a_segment_sees_the_other_segments_last_refresh(
    segment_of_germans, german_customers
):
    in_germans = SegmentFactory(rule={"segment": segment_of_germans.pk})
    segment_refresh(segment=segment_of_germans)

    run = segment_refresh(segment=in_germans)

    assert run.size == 3


def test_due_segments_refresh_dependencies_first(german_customers):
    base = SegmentFactory(rule={"field": "country", "op": "eq", "value": "DE"})
    dependent = SegmentFactory(rule={"segment": base.pk})
    Segment.objects.update(next_refresh_at="2000-01-01T00:00:00Z")

    runs = segments_refresh_due()

    assert [r.segment_id for r in runs] == [base.pk, dependent.pk]
    assert runs[1].size == 3


def test_refresh_reschedules_a_segment_with_an_interval(segment_of_germans):
    import datetime as dt

    segment_update(segment=segment_of_germans, refresh_interval=dt.timedelta(hours=1))

    segment_refresh(segment=segment_of_germans)

    assert (
        segment_of_germans.next_refresh_at
        == segment_of_germans.last_refreshed_at + dt.timedelta(hours=1)
    )


def test_refresh_command_refreshes_the_given_segments(segment_of_germans, german_customers):
    call_command("refresh_segments", str(segment_of_germans.pk), verbosity=0)

    assert RefreshRun.objects.get(segment=segment_of_germans).trigger == "command"
    assert segment_of_germans.memberships.count() == 3


def test_refresh_command_refuses_unknown_ids():
    with pytest.raises(CommandError, match="no segment with id 999"):
        call_command("refresh_segments", "999", verbosity=0)


def test_a_failing_refresh_is_recorded_as_failed(segment_of_germans):
    Segment.objects.filter(pk=segment_of_germans.pk).update(
        rule={"field": "nope", "op": "eq", "value": 1}
    )
    segment_of_germans.refresh_from_db()

    with pytest.raises(RuleInvalid):
        segment_refresh(segment=segment_of_germans)

    run = RefreshRun.objects.get(segment=segment_of_germans)
    assert run.status == "failed"
    assert run.message == "field: unknown field 'nope'"


@pytest.mark.django_db(transaction=True)
def test_the_same_segment_never_refreshes_twice_at_once(german_customers):
    segment = SegmentFactory(rule={"field": "country", "op": "eq", "value": "DE"})
    finished = []

    def refresh_in_other_thread():
        try:
            segment_refresh(segment=Segment.objects.get(pk=segment.pk))
            finished.append(time.monotonic())
        finally:
            connection.close()

    with transaction.atomic():
        Segment.objects.select_for_update().get(pk=segment.pk)  # a refresh holding the lock
        other = threading.Thread(target=refresh_in_other_thread)
        other.start()
        time.sleep(0.5)
        assert finished == []
        released = time.monotonic()
    other.join(timeout=10)

    assert finished and finished[0] >= released
    assert segment.memberships.count() == 3
