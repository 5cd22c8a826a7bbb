"""A campaign's definition: create, change, delete a draft; its webhook signing secret; what stops
or questions a launch."""

import secrets
import zoneinfo
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from campaigns.models import (
    CAMPAIGN_SEGMENT_SETTINGS,
    CAMPAIGN_SETTINGS,
    CHANNEL_PURPOSE,
    Campaign,
    Channel,
    Promotion,
)
from campaigns.rendering import variant_problems
from campaigns.services.access import _require_editable, _require_marketer
from privacy.models import Purpose


def _apply(campaign: Campaign, changes: dict[str, Any]) -> list[str]:
    unknown = sorted(set(changes) - set(CAMPAIGN_SETTINGS))
    if unknown:
        raise ValidationError({name: "unknown field" for name in unknown})
    errors: dict[str, str] = {}
    if "name" in changes and not str(changes["name"] or "").strip():
        errors["name"] = "required"
    if "channel" in changes and changes["channel"] not in Channel.values:
        errors["channel"] = f"expected one of {', '.join(Channel.values)}"
    if "kind" in changes and changes["kind"] not in Campaign.Kind.values:
        errors["kind"] = f"expected one of {', '.join(Campaign.Kind.values)}"
    if "time_zone" in changes:
        try:
            zoneinfo.ZoneInfo(str(changes["time_zone"]))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            errors["time_zone"] = f"unknown time zone {changes['time_zone']!r}"
    if "holdout_percent" in changes:
        value = Decimal(str(changes["holdout_percent"] or 0))
        if not 0 <= value <= 50:
            errors["holdout_percent"] = "must be between 0 and 50"
        changes["holdout_percent"] = value
    if "consent_purpose" in changes and changes["consent_purpose"]:
        code = getattr(changes["consent_purpose"], "pk", changes["consent_purpose"])
        if not Purpose.objects.filter(pk=code).exists():
            errors["consent_purpose"] = f"unknown purpose {code!r}"
        changes["consent_purpose"] = code
    if errors:
        raise ValidationError(errors)
    updated = []
    for name, value in changes.items():
        if name in CAMPAIGN_SEGMENT_SETTINGS:
            continue
        if name == "consent_purpose":
            campaign.consent_purpose_id = value or None
        elif name == "send_at" and value is not None and timezone.is_naive(value):
            zone = zoneinfo.ZoneInfo(changes.get("time_zone", campaign.time_zone))
            campaign.send_at = timezone.make_aware(value, zone)
        else:
            setattr(campaign, name, value)
        updated.append(name)
    if campaign.channel == Channel.WEBHOOK and not campaign.webhook_url:
        raise ValidationError({"webhook_url": "required for the webhook channel"})
    if campaign.channel == Channel.WEBHOOK and not campaign.webhook_secret:
        campaign.webhook_secret = webhook_secret_new()
        updated.append("webhook_secret")
    return updated


def webhook_secret_new() -> str:
    """The signing key of a new webhook campaign: CAMPAIGNS_WEBHOOK_SECRET when the site sets one
    (one receiver for every campaign), otherwise a random key of its own."""
    return settings.CAMPAIGNS_WEBHOOK_SECRET or secrets.token_urlsafe(32)


def campaign_webhook_secret_rotate(
    *, campaign: Campaign, actor: AbstractBaseUser | None
) -> Campaign:
    """Give a webhook campaign a new random signing key (the old one was shown to too many, or
    leaked); the receiver must be given the new one."""
    _require_marketer(actor)
    if campaign.channel != Channel.WEBHOOK:
        raise ValidationError({"webhook_secret": "only a webhook campaign has a signing secret"})
    campaign.webhook_secret = secrets.token_urlsafe(32)
    campaign.save(update_fields=["webhook_secret", "updated_at"])
    return campaign


def _set_segments(campaign: Campaign, changes: dict[str, Any]) -> None:
    if "target_segments" in changes:
        campaign.target_segments.set(changes["target_segments"])
    if "exclusion_segments" in changes:
        campaign.exclusion_segments.set(changes["exclusion_segments"])


def campaign_create(*, actor: AbstractBaseUser | None, name: str, **fields: Any) -> Campaign:
    """Create a draft campaign; the consent purpose defaults from the channel."""
    _require_marketer(actor)
    campaign = Campaign(created_by=actor if actor is not None and actor.is_authenticated else None)
    _apply(campaign, {"name": name, **fields})
    campaign.name = campaign.name.strip()
    if not campaign.consent_purpose_id:
        campaign.consent_purpose_id = CHANNEL_PURPOSE[campaign.channel]
    with transaction.atomic():
        campaign.save()
        _set_segments(campaign, fields)
    return campaign


def campaign_update(
    *, campaign: Campaign, actor: AbstractBaseUser | None, **changes: Any
) -> Campaign:
    _require_marketer(actor)
    _require_editable(campaign)
    with transaction.atomic():
        updated = _apply(campaign, changes)
        if updated:
            campaign.save(update_fields=[*updated, "updated_at"])
        _set_segments(campaign, changes)
    return campaign


def campaign_delete(*, campaign: Campaign, actor: AbstractBaseUser | None) -> None:
    _require_marketer(actor)
    if campaign.status != Campaign.Status.DRAFT:
        raise ValidationError({"status": "only draft campaigns can be deleted"})
    campaign.delete()


def campaign_problems(campaign: Campaign) -> dict[str, str]:
    """What stops a campaign from launching, by field."""
    problems = {}
    if not campaign.target_segments.exists():
        problems["target_segments"] = "choose at least one target segment"
    variants = list(campaign.variants.all())
    if not variants:
        problems["variants"] = "add at least one message variant"
    for variant in variants:
        found = variant_problems(subject=variant.subject, html=variant.html, text=variant.text)
        if found:
            problems["variants"] = f"variant {variant.name}: {found[0]}"
    if campaign.channel == Channel.WEBHOOK and not campaign.webhook_url:
        problems["webhook_url"] = "required for the webhook channel"
    if campaign.channel == Channel.WEBHOOK and not campaign.webhook_secret:
        problems["webhook_secret"] = (
            "the webhook campaign has no signing secret: rotate the secret to create one"
        )
    return problems


def campaign_warnings(campaign: Campaign) -> list[str]:
    """What does not stop a launch but is likely a mistake (shown on the review step)."""
    warnings = []
    uses_promotion = any(
        "promotion." in source
        for variant in campaign.variants.all()
        for source in (variant.subject, variant.html, variant.text)
    )
    if uses_promotion and not Promotion.objects.filter(campaign=campaign).exists():
        warnings.append(
            "The message uses the promotion, but the campaign has none: its code and discount "
            "will be empty."
        )
    return warnings
