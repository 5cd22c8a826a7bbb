"""Triggered campaigns: customers who newly enter a target segment get the message after the
delay, once, unless the campaign allows repeats."""

import datetime as dt
from collections import Counter

import pytest
from django.core import mail
from django.utils import timezone

from campaigns.audience import bucket
from campaigns.models import Campaign, Send
from campaigns.services import campaign_stop, campaign_trigger
from segments.models import Membership, MembershipChange
from segments.services import segment_add_members, segment_remove_members
from tests.campaigns.factories import CampaignFactory, VariantFactory, consent_grant_all
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

DELAY = dt.timedelta(hours=1)
# The story's clock: the campaign starts at T0, hours are counted from there.
T0 = timezone.now() - dt.timedelta(days=10)


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def enter(segment, customers, *, hours: float) -> None:
    """The customers join the segment at that hour (the join is on the membership row)."""
    segment_add_members(segment=segment, customers=[c.pk for c in customers])
    Membership.objects.filter(segment=segment, customer__in=customers).update(since=at(hours))


def leave(segment, customers, *, hours: float) -> None:
    """The customers leave the segment at that hour (the log keeps the leave)."""
    run = segment_remove_members(segment=segment, customers=[c.pk for c in customers])
    MembershipChange.objects.filter(run=run, change="left").update(at=at(hours))


@pytest.fixture
def start_triggered(segment, launch):
    """Launch a triggered campaign on the segment and move its start back to T0."""

    def start(**fields) -> Campaign:
        campaign = CampaignFactory(kind=Campaign.Kind.TRIGGERED, **fields)
        campaign.target_segments.add(segment)
        VariantFactory(campaign=campaign, name="A", subject="Welcome {{ customer.first_name }}")
        launch(campaign)
        Campaign.objects.filter(pk=campaign.pk).update(launched_at=T0, trigger_cursor=T0)
        return Campaign.objects.get(pk=campaign.pk)

    return start


@pytest.fixture
def welcome(start_triggered):
    """A welcome series: triggered on entering the segment, one hour after the entry."""
    return start_triggered(trigger_delay=DELAY)


@pytest.fixture
def trigger(django_capture_on_commit_callbacks):
    """Run the beat's trigger for a campaign at an hour of the story, delivering what it queues."""

    def run(campaign, *, hours: float) -> int:
        with django_capture_on_commit_callbacks(execute=True):
            return campaign_trigger(campaign=Campaign.objects.get(pk=campaign.pk), now=at(hours))

    return run


@pytest.fixture
def newcomers():
    customers = CustomerFactory.create_batch(3)
    consent_grant_all(customers)
    return customers


def _recipients() -> list[str]:
    return sorted(to for m in mail.outbox for to in m.to)


def test_newcomer_gets_the_message_only_after_the_delay(welcome, segment, newcomers, trigger):
    enter(segment, newcomers, hours=2)

    early = trigger(welcome, hours=2.5)
    assert early == 0 and mail.outbox == []

    trigger(welcome, hours=3.1)

    assert _recipients() == sorted(c.email for c in newcomers)
    assert mail.outbox[0].subject.startswith("Welcome ")


def test_members_from_before_the_launch_get_nothing(
    segment, consenting_members, newcomers, start_triggered, trigger
):
    campaign = start_triggered()
    assert mail.outbox == []

    enter(segment, newcomers[:1], hours=1)
    trigger(campaign, hours=2)

    assert _recipients() == [newcomers[0].email]


def test_each_newcomer_is_sent_to_at_most_once(welcome, segment, newcomers, trigger):
    enter(segment, newcomers, hours=1)
    trigger(welcome, hours=3)

    again = trigger(welcome, hours=5)

    assert again == 0
    assert Counter(_recipients()) == Counter(c.email for c in newcomers)


def test_leaving_and_entering_again_sends_nothing_more(welcome, segment, newcomers, trigger):
    enter(segment, newcomers[:1], hours=1)
    trigger(welcome, hours=3)
    leave(segment, newcomers[:1], hours=4)
    enter(segment, newcomers[:1], hours=5)

    trigger(welcome, hours=8)

    assert _recipients() == [newcomers[0].email]
    assert Send.objects.filter(campaign=welcome, customer=newcomers[0]).count() == 1


def test_campaign_that_allows_repeats_sends_again_on_each_new_entry(
    segment, newcomers, start_triggered, trigger
):
    campaign = start_triggered(trigger_delay=DELAY, allow_repeats=True)
    enter(segment, newcomers[:1], hours=1)
    trigger(campaign, hours=2.5)
    leave(segment, newcomers[:1], hours=3)
    enter(segment, newcomers[:1], hours=4)

    trigger(campaign, hours=5.5)

    assert _recipients() == [newcomers[0].email] * 2
    occurrences = Send.objects.filter(campaign=campaign, customer=newcomers[0])
    assert sorted(occurrences.values_list("status", flat=True)) == ["sent", "sent"]


def test_customer_who_left_again_before_the_delay_gets_nothing(
    welcome, segment, newcomers, trigger
):
    enter(segment, newcomers, hours=1)
    leave(segment, newcomers[:1], hours=1.5)

    trigger(welcome, hours=3)

    assert _recipients() == sorted(c.email for c in newcomers[1:])


def test_newcomer_without_consent_is_excluded_and_counted(welcome, segment, trigger):
    silent = CustomerFactory()
    enter(segment, [silent], hours=1)

    trigger(welcome, hours=3)

    assert mail.outbox == []
    assert Campaign.objects.get(pk=welcome.pk).exclusions == {"no_consent": 1}


def test_stopped_campaign_sends_to_no_newcomer(
    welcome, segment, newcomers, marketing_user, trigger
):
    campaign_stop(campaign=welcome, actor=marketing_user)
    enter(segment, newcomers, hours=1)

    trigger(welcome, hours=3)

    assert mail.outbox == []


def test_newcomers_joining_a_few_at_a_time_split_as_a_broadcast_would(
    segment, start_triggered, trigger
):
    campaign = start_triggered()
    b = VariantFactory(campaign=campaign, name="B")
    a = campaign.variants.get(name="A")
    customers = CustomerFactory.create_batch(40)
    consent_grant_all(customers)

    for i in range(0, 40, 8):  # five runs of the beat, eight entries before each
        enter(segment, customers[i : i + 8], hours=i + 1)
        trigger(campaign, hours=i + 2)

    for send in Send.objects.filter(campaign=campaign):
        expected = a.pk if bucket(campaign.pk, send.customer_id, "variant") < 5000 else b.pk
        assert send.variant_id == expected
    assert Send.objects.filter(campaign=campaign, status=Send.Status.SENT).count() == 40
