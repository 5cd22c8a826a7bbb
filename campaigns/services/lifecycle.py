"""A campaign's life after its definition: launch (the audience snapshot), pause, resume, cancel,
stop, sending the unknown sends again, and the start of scheduled campaigns."""

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from campaigns.audience import classified_sql, exclusion_counts, insert_sends
from campaigns.models import Campaign, Send
from campaigns.services.access import _require_marketer
from campaigns.services.definition import campaign_problems
from campaigns.services.dispatch import campaign_dispatch_queue
from campaigns.services.promotions import promotion_codes_create


def campaign_snapshot(*, campaign: Campaign, now: dt.datetime | None = None) -> dict[str, int]:
    """Write the send rows of a broadcast's audience, set-based; returns counts by status."""
    now = now or timezone.now()
    sql, params = classified_sql(campaign, now=now)
    insert_sends(sql, params)
    promotion_codes_create(campaign=campaign)
    campaign.exclusions = exclusion_counts(campaign)
    campaign.save(update_fields=["exclusions"])
    return campaign.exclusions


def campaign_launch(*, campaign: Campaign, actor: AbstractBaseUser | None) -> Campaign:
    """Snapshot the audience and start sending (now, or at the scheduled time)."""
    _require_marketer(actor)
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status not in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED):
            raise ValidationError({"status": f"a {campaign.status} campaign cannot be launched"})
        problems = campaign_problems(campaign)
        if problems:
            raise ValidationError(problems)
        now = timezone.now()
        if campaign.send_at and campaign.send_at > now:
            campaign.status = Campaign.Status.SCHEDULED
            campaign.save(update_fields=["status", "updated_at"])
            return campaign
        campaign.launched_at = now
        campaign.status = Campaign.Status.SENDING
        if campaign.kind == Campaign.Kind.TRIGGERED:
            # Only customers who join from now on; the beat task turns joins into sends.
            campaign.trigger_cursor = now
            campaign.save(update_fields=["status", "launched_at", "trigger_cursor", "updated_at"])
            return campaign
        campaign.save(update_fields=["status", "launched_at", "updated_at"])
        campaign_snapshot(campaign=campaign, now=now)
        transaction.on_commit(lambda: campaign_dispatch_queue(campaign_id=campaign.pk))
    return campaign


def _transition(campaign: Campaign, *, allowed: tuple[str, ...], to: str) -> Campaign:
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status not in allowed:
            raise ValidationError({"status": f"a {locked.status} campaign cannot become {to}"})
        locked.status = to
        fields = ["status", "updated_at"]
        if to in (Campaign.Status.CANCELLED, Campaign.Status.STOPPED):
            locked.finished_at = timezone.now()
            fields.append("finished_at")
        locked.save(update_fields=fields)
    return locked


def campaign_pause(*, campaign: Campaign, actor: AbstractBaseUser | None) -> Campaign:
    """Stop handing out rows; the ones being sent finish, the rest wait for resume."""
    _require_marketer(actor)
    return _transition(campaign, allowed=(Campaign.Status.SENDING,), to=Campaign.Status.PAUSED)


def campaign_resume(*, campaign: Campaign, actor: AbstractBaseUser | None) -> Campaign:
    _require_marketer(actor)
    campaign = _transition(campaign, allowed=(Campaign.Status.PAUSED,), to=Campaign.Status.SENDING)
    transaction.on_commit(lambda: campaign_dispatch_queue(campaign_id=campaign.pk))
    return campaign


def campaign_cancel(*, campaign: Campaign, actor: AbstractBaseUser | None) -> Campaign:
    """Cancel: nothing more goes out; pending rows are marked cancelled."""
    _require_marketer(actor)
    with transaction.atomic():
        campaign = _transition(
            campaign,
            allowed=(
                Campaign.Status.DRAFT,
                Campaign.Status.SCHEDULED,
                Campaign.Status.SENDING,
                Campaign.Status.PAUSED,
            ),
            to=Campaign.Status.CANCELLED,
        )
        Send.objects.filter(campaign=campaign, status=Send.Status.PENDING).update(
            status=Send.Status.CANCELLED, reason="campaign cancelled"
        )
    return campaign


def campaign_stop(*, campaign: Campaign, actor: AbstractBaseUser | None) -> Campaign:
    """End a triggered campaign: no new entries; what is queued is cancelled."""
    _require_marketer(actor)
    with transaction.atomic():
        campaign = _transition(
            campaign,
            allowed=(Campaign.Status.SENDING, Campaign.Status.PAUSED),
            to=Campaign.Status.STOPPED,
        )
        Send.objects.filter(campaign=campaign, status=Send.Status.PENDING).update(
            status=Send.Status.CANCELLED, reason="campaign stopped"
        )
    return campaign


def campaign_resend_unknown(*, campaign: Campaign, actor: AbstractBaseUser | None) -> Campaign:
    """Send again the messages whose fate is unknown (a worker stopped while handing them over):
    they go back to pending and are delivered as any other, consent re-checked. Some of them may
    have arrived, and those recipients get the message twice: the marketer decides."""
    _require_marketer(actor)
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        allowed = (Campaign.Status.SENDING, Campaign.Status.PAUSED, Campaign.Status.SENT)
        if locked.status not in allowed:
            raise ValidationError(
                {"status": f"a {locked.status} campaign cannot send its unknown messages again"}
            )
        again = Send.objects.filter(campaign=locked, status=Send.Status.UNKNOWN).update(
            status=Send.Status.PENDING, reason="", claimed_at=None
        )
        if not again:
            raise ValidationError({"status": "the campaign has no sends whose fate is unknown"})
        if locked.status == Campaign.Status.SENT:
            locked.status = Campaign.Status.SENDING
            locked.finished_at = None
            locked.save(update_fields=["status", "finished_at", "updated_at"])
        if locked.status == Campaign.Status.SENDING:
            transaction.on_commit(lambda: campaign_dispatch_queue(campaign_id=locked.pk))
    return locked


def campaigns_start_scheduled(*, now: dt.datetime | None = None) -> list[int]:
    """Launch the scheduled campaigns whose time has come (beat)."""
    now = now or timezone.now()
    started = []
    for campaign in Campaign.objects.filter(status=Campaign.Status.SCHEDULED, send_at__lte=now):
        campaign_launch(campaign=campaign, actor=None)
        started.append(campaign.pk)
    return started
