"""Dispatch: the pending send rows of a sending campaign become delivery tasks; a broadcast with
nothing left to send is done."""

from django.conf import settings
from django.utils import timezone

from campaigns.models import Campaign, Send


def campaign_dispatch_queue(*, campaign_id: int) -> None:
    from campaigns.tasks import campaign_dispatch_task  # tasks import campaigns.services

    campaign_dispatch_task.delay(campaign_id)


def campaign_dispatch(*, campaign: Campaign, batch_size: int | None = None) -> int:
    """Queue delivery tasks over the pending rows (ids only); returns the number of batches."""
    from campaigns.tasks import campaign_send_batch_task

    if campaign.status != Campaign.Status.SENDING:
        return 0
    size = batch_size or settings.CAMPAIGNS_BATCH_SIZE
    Campaign.objects.filter(pk=campaign.pk).update(dispatched_at=timezone.now())
    ids = (
        Send.objects.filter(campaign=campaign, status=Send.Status.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    batches = 0
    batch: list[int] = []
    for send_id in ids.iterator(chunk_size=10000):
        batch.append(send_id)
        if len(batch) >= size:
            campaign_send_batch_task.delay(campaign.pk, batch)
            batches, batch = batches + 1, []
    if batch:
        campaign_send_batch_task.delay(campaign.pk, batch)
        batches += 1
    if not batches:
        campaign_finish_if_done(campaign=campaign)
    return batches


def campaign_finish_if_done(*, campaign: Campaign) -> bool:
    """Mark a sending broadcast sent once no row is pending or being sent."""
    if campaign.kind != Campaign.Kind.BROADCAST:
        return False
    busy = Send.objects.filter(
        campaign=campaign,
        status__in=[Send.Status.PENDING, Send.Status.CLAIMED, Send.Status.HANDING_OVER],
    ).exists()
    if busy:
        return False
    return bool(
        Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.SENDING).update(
            status=Campaign.Status.SENT, finished_at=timezone.now()
        )
    )
