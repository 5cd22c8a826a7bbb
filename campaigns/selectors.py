"""Shared reads of campaigns: whether a promotion code may be redeemed now, the customers a
message may be previewed for, and the audience estimate the editor shows."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from campaigns import services
from campaigns.audience import BUCKETS
from campaigns.models import Campaign, Promotion, PromotionCode, Send
from campaigns.results import promotion_redemptions, redeeming_purchases
from customers.models import Customer
from customers.search import (
    CUSTOMER_ORDERS,
    customer_search_conditions,
    customers_search_ready,
)
from customers.selectors import customer_fields_hidden_from, customers_visible_to
from customers.views.pagination import KeysetPage, keyset_page
from segments.models import Membership

PREVIEW_PAGE_SIZE = 20

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


def campaign_audience_customers(
    *, campaign: Campaign, user: AbstractBaseUser
) -> QuerySet[Customer]:
    """The customers a message of the campaign may be previewed for: those the user may see who
    are in a target segment, or already have a row of the campaign (a triggered campaign's
    recipient may have left the segment since). Anyone else is refused, whatever id is sent."""
    targets = list(campaign.target_segments.values_list("pk", flat=True))
    in_target = Membership.objects.filter(customer_id=OuterRef("pk"), segment_id__in=targets)
    assigned = Send.objects.filter(campaign_id=campaign.pk, customer_id=OuterRef("pk"))
    return customers_visible_to(user).filter(Exists(in_target) | Exists(assigned))


def campaign_audience_search(
    *, campaign: Campaign, user: AbstractBaseUser, term: str, cursor: str = ""
) -> KeysetPage:
    """A page of the campaign's audience in name order, narrowed by the search term as the
    global search does (prefixes of last name, "first last", email; external id, phone)."""
    audience = customers_search_ready(campaign_audience_customers(campaign=campaign, user=user))
    return keyset_page(
        audience,
        order=CUSTOMER_ORDERS["name"],
        cursor=cursor,
        size=PREVIEW_PAGE_SIZE,
        any_of=customer_search_conditions(term, unreadable=customer_fields_hidden_from(user)),
    )


def campaign_audience_customer(
    *, campaign: Campaign, user: AbstractBaseUser, customer_id: int
) -> Customer | None:
    """The customer, when they are in the campaign's audience and the user may see them."""
    return campaign_audience_customers(campaign=campaign, user=user).filter(pk=customer_id).first()


def audience_estimate_for_settings(*, campaign: Campaign | None, changes: dict[str, Any]) -> dict:
    """The editor's audience estimate for settings not saved yet, with `holdout_estimated` set
    when the holdout is an expected size rather than the exact one.

    The holdout is drawn by hashing the campaign id with each customer's, so a saved campaign
    gets its exact split (the one launch will draw), while a campaign not saved yet has no id
    to draw it with: it gets the expected holdout, the eligible customers times the holdout
    share, rounded. Targeted and excluded counts are exact either way.
    """
    estimate = services.campaign_audience_estimate(campaign=campaign, changes=changes)
    if campaign is not None:
        return {**estimate, "holdout_estimated": False}
    percent = changes.get("holdout_percent") or Decimal("0")
    cut = int(Decimal(percent) * BUCKETS / 100)  # as the snapshot cuts the buckets
    if cut == 0:
        return {**estimate, "holdout_estimated": False}
    eligible = estimate["recipients"] + estimate["holdout"]
    holdout = round(eligible * cut / BUCKETS)
    return {
        **estimate,
        "recipients": eligible - holdout,
        "holdout": holdout,
        "holdout_estimated": True,
    }
