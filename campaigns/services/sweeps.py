"""Sweeps of send rows: rows a dead worker left claimed, and a person's rows when they are erased."""

import datetime as dt

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from campaigns.models import Campaign, Send
from campaigns.services.dispatch import campaign_dispatch, campaign_finish_if_done

UNKNOWN_REASON = (
    "The worker stopped while handing the message over, before the mail server or provider "
    "answered: it may or may not have arrived."
)


def sends_sweep(*, stale_after: dt.timedelta | None = None, now: dt.datetime | None = None) -> int:
    """Rows whose worker died: those still `claimed` (nothing was handed over) go back to
    pending and their campaigns are re-queued; those left `handing_over` past the timeout become
    `unknown` (the message may have arrived: never recorded as sent, never sent again on its
    own). Returns the rows released. A released row's old worker can no longer record it: every
    record checks the claim's attempt number (an answer that still comes settles an unknown)."""
    now = now or timezone.now()
    stale_after = (
        stale_after
        if stale_after is not None
        else dt.timedelta(seconds=settings.CAMPAIGNS_CLAIM_TIMEOUT)
    )
    released = Send.objects.filter(
        status=Send.Status.CLAIMED, claimed_at__lt=now - stale_after
    ).update(status=Send.Status.PENDING, claimed_at=None)
    Send.objects.filter(status=Send.Status.HANDING_OVER, claimed_at__lt=now - stale_after).update(
        status=Send.Status.UNKNOWN, reason=UNKNOWN_REASON
    )
    # Also re-queue sending campaigns whose queued batches may have died with a worker.
    stale = Campaign.objects.filter(status=Campaign.Status.SENDING).filter(
        Q(dispatched_at__lt=now - stale_after) | Q(dispatched_at__isnull=True)
    )
    for campaign in stale:
        if Send.objects.filter(campaign=campaign, status=Send.Status.PENDING).exists():
            campaign_dispatch(campaign=campaign)
        else:
            campaign_finish_if_done(campaign=campaign)
    return released


def sends_cancel_for_customer(queryset) -> None:
    """Erasure: cancel the person's pending sends, anonymise the delivered ones' provider ids."""
    queryset.filter(status__in=[Send.Status.PENDING, Send.Status.CLAIMED]).update(
        status=Send.Status.CANCELLED, reason="personal data erased"
    )
    queryset.update(provider_message_id="")
