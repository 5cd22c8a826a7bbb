"""The live audience estimate of unsaved settings (the editor's audience step)."""

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from campaigns.audience import audience_estimate
from campaigns.models import CHANNEL_PURPOSE, Campaign
from campaigns.services.definition import _apply, _set_segments

# What the audience step's live estimate may vary before anything is saved.
ESTIMATE_FIELDS = (
    "target_segments",
    "exclusion_segments",
    "channel",
    "consent_purpose",
    "frequency_cap_count",
    "frequency_cap_days",
    "holdout_percent",
)


def campaign_audience_estimate(
    *, campaign: Campaign | None, changes: dict[str, Any], now: dt.datetime | None = None
) -> dict:
    """The audience (targeted, recipients, holdout, excluded by reason) the campaign would have
    with these unsaved settings.

    The settings are applied inside a transaction that is always rolled back, so the estimate
    runs the very SQL of the launch snapshot and nothing is kept.
    """
    unknown = sorted(set(changes) - set(ESTIMATE_FIELDS))
    if unknown:
        raise ValidationError({name: "unknown field" for name in unknown})
    now = now or timezone.now()
    with transaction.atomic():
        if campaign is None:
            draft = Campaign(name="audience estimate")
        else:
            draft = Campaign.objects.get(pk=campaign.pk)
        scalars = {k: v for k, v in changes.items() if not k.endswith("_segments")}
        # The endpoint does not change who is in the audience; _apply insists on one.
        draft.webhook_url = draft.webhook_url or "https://estimate.invalid/"
        _apply(draft, scalars)
        if not draft.consent_purpose_id:
            draft.consent_purpose_id = CHANNEL_PURPOSE[draft.channel]
        draft.save()
        _set_segments(draft, changes)
        estimate = audience_estimate(draft, now=now)
        transaction.set_rollback(True)
    return estimate
