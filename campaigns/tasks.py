"""Celery tasks of campaigns: thin, ids only, safe to run twice (rows are claimed, never re-sent)."""

from celery import shared_task

from campaigns.delivery import send_batch
from campaigns.models import Campaign
from campaigns.services import (
    campaign_dispatch,
    campaigns_start_scheduled,
    campaigns_trigger_due,
    sends_sweep,
)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def campaign_dispatch_task(campaign_id: int) -> int:
    """Queue the delivery batches of a sending campaign; returns how many."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return 0
    return campaign_dispatch(campaign=campaign)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def campaign_send_batch_task(campaign_id: int, send_ids: list[int]) -> dict:
    """Deliver one batch of send rows."""
    result = send_batch(campaign_id=campaign_id, send_ids=list(send_ids))
    return result.__dict__


@shared_task(acks_late=True)
def sends_sweep_task() -> int:
    """Release rows stuck in 'claimed' by a dead worker and re-queue their campaigns."""
    return sends_sweep()


@shared_task(acks_late=True)
def campaigns_due_task() -> dict:
    """Start scheduled campaigns whose time has come, and feed triggered ones their new joins."""
    return {"started": len(campaigns_start_scheduled()), "triggered": campaigns_trigger_due()}
