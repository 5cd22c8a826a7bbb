"""Triggered campaigns: new joins of the target segments become sends."""

import datetime as dt

from django.db import transaction
from django.utils import timezone

from campaigns.audience import classified_sql, exclusion_counts, insert_sends, targeted
from campaigns.models import Campaign, Send
from campaigns.services.dispatch import campaign_dispatch_queue
from campaigns.services.promotions import promotion_codes_create


def campaign_trigger(*, campaign: Campaign, now: dt.datetime | None = None) -> int:
    """Turn new joins of the target segments into sends (after the delay); returns rows added.

    A customer is sent to at most once per campaign: a leave and re-entry adds nothing, unless
    the campaign allows repeats, in which case each new join is one more message. Who left the
    segments again before the delay was over gets nothing: they no longer match the targeting.
    """
    from segments.selectors import segment_joiners

    now = now or timezone.now()
    delay = campaign.trigger_delay or dt.timedelta(0)
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.kind != Campaign.Kind.TRIGGERED or campaign.status != Campaign.Status.SENDING:
            return 0
        start = campaign.trigger_cursor or campaign.launched_at or now
        until = now - delay
        if until <= start:
            return 0
        joiners = segment_joiners(
            segments=campaign.target_segments.all(), after=start, until=until
        ).filter(pk__in=targeted(campaign).values("pk"))
        added = 0
        if campaign.allow_repeats:
            # Each repeat gets the next occurrence number, so the unique key still holds.
            rounds = (
                Send.objects.filter(campaign=campaign)
                .values_list("occurrence", flat=True)
                .order_by("-occurrence")
                .first()
            )
            next_round = (rounds or 0) + 1
            # The periods never overlap, so every join in this one is a new entry. Repeats go
            # first: once inserted, this run's first-timers would look like repeats.
            earlier = Send.objects.filter(campaign=campaign).values("customer_id")
            again = joiners.filter(pk__in=earlier)
            added += insert_sends(
                *classified_sql(campaign, now=now, customers=again, occurrence=next_round)
            )
            first_time = joiners.exclude(pk__in=earlier)
            added += insert_sends(*classified_sql(campaign, now=now, customers=first_time))
        else:
            customers = joiners
            added += insert_sends(*classified_sql(campaign, now=now, customers=customers))
        campaign.trigger_cursor = until
        campaign.save(update_fields=["trigger_cursor"])
        promotion_codes_create(campaign=campaign, since=now)
        counts = exclusion_counts(campaign)
        Campaign.objects.filter(pk=campaign.pk).update(exclusions=counts)
        if added:
            transaction.on_commit(lambda: campaign_dispatch_queue(campaign_id=campaign.pk))
    return added


def campaigns_trigger_due(*, now: dt.datetime | None = None) -> int:
    total = 0
    for campaign in Campaign.objects.filter(
        kind=Campaign.Kind.TRIGGERED, status=Campaign.Status.SENDING
    ):
        total += campaign_trigger(campaign=campaign, now=now)
    return total
