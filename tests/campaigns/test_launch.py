"""Launch: the audience snapshot, each exclusion reason, the split and the holdout."""

import datetime as dt
from collections import Counter
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from campaigns.audience import bucket
from campaigns.models import Campaign, Send
from campaigns.services import variant_create
from privacy.services import consent_grant, consent_withdraw
from privacy.suppression import suppression_add
from tests.campaigns.factories import (
    CampaignFactory,
    VariantFactory,
    consent_grant_all,
    members_add,
)
from tests.customers.factories import CustomerFactory
from tests.segments.factories import StaticSegmentFactory

pytestmark = pytest.mark.django_db


def _statuses(campaign):
    return dict(Send.objects.filter(campaign=campaign).values_list("customer_id", "status"))


def test_launch_sends_one_message_to_every_consenting_member(
    campaign, consenting_members, marketing_user, launch
):
    launch(campaign)

    assert sorted(m.to[0] for m in mail.outbox) == sorted(c.email for c in consenting_members)
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT
    assert set(_statuses(campaign).values()) == {Send.Status.SENT}


def test_member_without_consent_is_excluded_with_its_reason(
    campaign, segment, marketing_user, launch
):
    silent = CustomerFactory()
    members_add(segment, [silent])

    launch(campaign)

    send = Send.objects.get(campaign=campaign, customer=silent)
    assert (send.status, send.reason) == (Send.Status.EXCLUDED, "no_consent")
    assert Campaign.objects.get(pk=campaign.pk).exclusions == {"no_consent": 1}
    assert mail.outbox == []


def test_member_who_withdrew_consent_is_excluded(
    campaign, consenting_members, marketing_user, launch
):
    consent_withdraw(customer=consenting_members[0], purpose="email_marketing", source="staff")

    launch(campaign)

    assert _statuses(campaign)[consenting_members[0].pk] == Send.Status.EXCLUDED
    assert len(mail.outbox) == 4


def test_member_of_an_exclusion_segment_is_excluded(
    campaign, consenting_members, marketing_user, launch
):
    vip = StaticSegmentFactory(name="VIP")
    members_add(vip, consenting_members[:2])
    campaign.exclusion_segments.add(vip)

    launch(campaign)

    assert Campaign.objects.get(pk=campaign.pk).exclusions == {"exclusion_segment": 2}
    assert len(mail.outbox) == 3


def test_suppressed_address_is_excluded_even_with_consent(
    campaign, consenting_members, marketing_user, launch
):
    suppression_add(reason="erasure", email=consenting_members[0].email.upper())

    launch(campaign)

    assert Campaign.objects.get(pk=campaign.pk).exclusions == {"suppressed": 1}
    assert consenting_members[0].email not in [m.to[0] for m in mail.outbox]


def test_customer_without_email_is_excluded_for_the_email_channel(
    campaign, segment, marketing_user, launch
):
    no_email = CustomerFactory(email=None)
    members_add(segment, [no_email])
    consent_grant(customer=no_email, purpose="email_marketing", source="staff")

    launch(campaign)

    assert Campaign.objects.get(pk=campaign.pk).exclusions == {"no_address": 1}


def test_customer_over_the_frequency_cap_is_excluded(
    segment, consenting_members, marketing_user, launch
):
    first = CampaignFactory()
    first.target_segments.add(segment)
    VariantFactory(campaign=first)
    launch(first)
    second = CampaignFactory(frequency_cap_count=1, frequency_cap_days=7)
    second.target_segments.add(segment)
    VariantFactory(campaign=second)

    launch(second)

    assert Campaign.objects.get(pk=second.pk).exclusions == {"frequency_cap": 5}
    assert len(mail.outbox) == 5


def test_customer_outside_the_target_segments_gets_no_row(
    campaign, consenting_members, marketing_user, launch
):
    outsider = CustomerFactory()
    consent_grant(customer=outsider, purpose="email_marketing", source="staff")

    launch(campaign)

    assert not Send.objects.filter(campaign=campaign, customer=outsider).exists()


def test_split_and_holdout_follow_the_hash_of_campaign_and_customer(
    segment, marketing_user, launch
):
    customers = CustomerFactory.create_batch(400)
    members_add(segment, customers)
    consent_grant_all(customers)
    campaign = CampaignFactory(holdout_percent=Decimal("10"))
    campaign.target_segments.add(segment)
    a = VariantFactory(campaign=campaign, name="A")
    b = VariantFactory(campaign=campaign, name="B")

    launch(campaign)

    for send in Send.objects.filter(campaign=campaign):
        holdout = bucket(campaign.pk, send.customer_id, "holdout") < 1000
        assert send.is_holdout == holdout
        if not holdout:
            expected = a.pk if bucket(campaign.pk, send.customer_id, "variant") < 5000 else b.pk
            assert send.variant_id == expected


def test_split_is_even_and_holdout_near_its_share(segment, marketing_user):
    customers = CustomerFactory.create_batch(3000)
    members_add(segment, customers)
    consent_grant_all(customers)
    campaign = CampaignFactory(holdout_percent=Decimal("20"))
    campaign.target_segments.add(segment)
    VariantFactory(campaign=campaign, name="A")
    VariantFactory(campaign=campaign, name="B")
    campaign.status = Campaign.Status.SENDING
    campaign.save()
    from campaigns.services import campaign_snapshot

    campaign_snapshot(campaign=campaign)

    rows = Counter(Send.objects.filter(campaign=campaign).values_list("status", "variant__name"))
    holdout = rows[(Send.Status.HOLDOUT, None)]
    assert 540 <= holdout <= 660  # 20% of 3000, within ~4 standard deviations
    a, b = rows[(Send.Status.PENDING, "A")], rows[(Send.Status.PENDING, "B")]
    assert abs(a - b) <= 4 * (0.25 * (a + b)) ** 0.5 * 2


def test_launch_refuses_a_campaign_without_variants(segment, marketing_user, launch):
    campaign = CampaignFactory()
    campaign.target_segments.add(segment)

    with pytest.raises(ValidationError) as error:
        launch(campaign)

    assert "variants" in error.value.message_dict


def test_launching_twice_is_refused_and_sends_nothing_more(
    campaign, consenting_members, marketing_user, launch
):
    launch(campaign)

    with pytest.raises(ValidationError):
        launch(campaign)

    assert len(mail.outbox) == 5


def test_scheduled_campaign_waits_for_its_time(
    campaign, consenting_members, marketing_user, launch
):
    campaign.send_at = timezone.now() + dt.timedelta(hours=2)
    campaign.save()

    launch(campaign)

    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SCHEDULED
    assert mail.outbox == []


def test_variant_with_unknown_variable_is_refused_with_its_line(campaign, marketing_user):
    with pytest.raises(ValidationError) as error:
        variant_create(
            campaign=campaign,
            actor=marketing_user,
            name="B",
            subject="Hi",
            text="Hello\n{{ customer.password }}",
        )

    assert error.value.message_dict["text"] == ["line 2: unknown variable 'customer.password'"]
