"""Shared reads of campaigns: whether a promotion code may be redeemed now."""

import datetime as dt

from django.utils import timezone

from campaigns.models import Campaign, Promotion, PromotionCode
from campaigns.results import promotion_redemptions, redeeming_purchases

REASONS = {
    "": "Valid: the discount applies.",
    "unknown": "No campaign gave out this code.",
    "not_sent": "The campaign with this code has not been sent yet.",
    "expired": "The promotion has expired.",
    "used": "This personal code has already been redeemed.",
    "exhausted": "The promotion has reached its redemption cap.",
}


def promotion_code_status(*, code: str, now: dt.datetime | None = None) -> dict:
    """What a till or a shop needs before it accepts a code: valid or why not, and the discount.

    Codes are matched without regard to case or surrounding spaces, as customers type them.
    """
    now = now or timezone.now()
    code = code.strip().upper()
    personal = (
        PromotionCode.objects.select_related("promotion__campaign").filter(code=code).first()
        if code
        else None
    )
    if personal is not None:
        promotion = personal.promotion
    else:
        promotion = (
            Promotion.objects.select_related("campaign")
            .filter(code_mode=Promotion.CodeMode.SHARED, shared_code=code)
            .exclude(shared_code="")
            .order_by("-campaign__launched_at", "-pk")
            .first()
        )
    if promotion is None:
        return {"code": code, "valid": False, "reason": "unknown", "message": REASONS["unknown"]}
    campaign = promotion.campaign
    redemptions = promotion_redemptions(promotion=promotion)
    reason = ""
    if campaign.launched_at is None or campaign.status in (
        Campaign.Status.DRAFT,
        Campaign.Status.SCHEDULED,
    ):
        reason = "not_sent"
    elif promotion.expires_at is not None and promotion.expires_at < now:
        reason = "expired"
    elif (
        personal is not None
        and redeeming_purchases(promotion).filter(promotion_code=personal.code).exists()
    ):
        reason = "used"
    elif promotion.redemption_cap is not None and redemptions >= promotion.redemption_cap:
        reason = "exhausted"
    return {
        "code": code,
        "valid": not reason,
        "reason": reason,
        "message": REASONS[reason],
        "campaign": {"id": campaign.pk, "name": campaign.name},
        "discount": promotion.discount,
        "value": promotion.value,
        "discount_display": promotion.discount_display,
        "expires_at": promotion.expires_at,
        "customer": personal.customer_id if personal is not None else None,
        "redemptions": redemptions,
        "redemption_cap": promotion.redemption_cap,
    }
