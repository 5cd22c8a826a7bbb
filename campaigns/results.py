"""What a campaign earned: attribution, the report per variant, and the uplift over the holdout.

Attribution: a purchase counts for a send when it carries the recipient's promotion code (or
the campaign's shared code), or when the recipient made it within the attribution window after
the message was sent. Holdout members get the same window from the moment they were set aside,
which is what makes the comparison fair.

Uplift is intent-to-treat: everyone assigned to a variant (sent or not) against the holdout.
Confidence intervals are 95% normal approximations: the difference of two proportions (Wald)
for conversion, and Welch's difference of means for revenue per recipient.
"""

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    DecimalField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce
from django.db.models.lookups import IsNull

from campaigns.audience import REASON_LABELS
from campaigns.models import Campaign, MessageEvent, Promotion, PromotionCode, Send
from customers.models import Purchase

Z95 = 1.959964


_MONEY = DecimalField(max_digits=14, decimal_places=2)
_ZERO = Value(Decimal("0"), output_field=_MONEY)


def _amount(purchases: QuerySet[Purchase]) -> Coalesce:
    """What the purchases (correlated with a send) add up to, 0 when there are none."""
    total = purchases.values("customer_id").annotate(s=Sum("amount")).values("s")
    return Coalesce(Subquery(total, output_field=_MONEY), _ZERO)


def _count(purchases: QuerySet[Purchase]) -> Coalesce:
    """How many purchases (correlated with a send) there are."""
    return Coalesce(
        Subquery(purchases.values("customer_id").annotate(n=Count("pk")).values("n")), 0
    )


def _attributed_rows_sql(campaign_ids: list[int]) -> tuple[str, list]:
    """SELECT campaign_id, variant_id, is_holdout, status, revenue, orders for every assigned
    send row of the campaigns, each with its own window and promotion (one statement for all)."""
    sends = Send.objects.filter(campaign_id__in=campaign_ids).exclude(status=Send.Status.EXCLUDED)
    sends = sends.alias(_start=Coalesce("sent_at", "created_at"))
    window = ExpressionWrapper(
        # Cast: Django multiplies a duration by an IntegerField, not a PositiveIntegerField.
        Cast("campaign__attribution_days", IntegerField()) * Value(timedelta(days=1)),
        output_field=DurationField(),
    )
    shared = Case(
        When(
            campaign__promotion__code_mode=Promotion.CodeMode.SHARED,
            then=F("campaign__promotion__shared_code"),
        ),
        default=None,
    )
    sends = sends.alias(
        _end=F("_start") + window,
        _shared_code=shared,
        _code_until=F("campaign__promotion__expires_at"),
    )
    # Within the window, a range of the (customer, purchased_at) index that holds the amount:
    # two small index-only reads per send. Only campaigns with a promotion look at codes, for
    # the purchases outside the window (a purchase counts once).
    in_window = Q(purchased_at__gte=OuterRef("_start"), purchased_at__lte=OuterRef("_end"))
    personal_code = PromotionCode.objects.filter(
        promotion__campaign_id=OuterRef(OuterRef("campaign_id")),
        promotion__code_mode=Promotion.CodeMode.UNIQUE,
        customer_id=OuterRef(OuterRef("customer_id")),
        code=OuterRef("promotion_code"),
    )
    with_code = Q(promotion_code__iexact=OuterRef("_shared_code")) | Q(Exists(personal_code))
    in_code_time = Q(IsNull(OuterRef("_code_until"), True)) | Q(
        purchased_at__lte=OuterRef("_code_until")
    )
    own = Purchase.objects.filter(customer_id=OuterRef("customer_id")).order_by()
    windowed = own.filter(in_window)
    by_code = own.filter(
        with_code & in_code_time & Q(purchased_at__gte=OuterRef("created_at"))
    ).exclude(in_window)
    has_promotion = Q(campaign__promotion__isnull=False)
    revenue = _amount(windowed) + Case(
        When(has_promotion, then=_amount(by_code)), default=_ZERO, output_field=_MONEY
    )
    orders = _count(windowed) + Case(
        When(has_promotion, then=_count(by_code)), default=Value(0), output_field=IntegerField()
    )
    rows = sends.annotate(_revenue=revenue, _orders=orders).order_by()
    return rows.values_list(
        "campaign_id", "variant_id", "is_holdout", "status", "_revenue", "_orders"
    ).query.sql_with_params()


def redeeming_purchases(promotion: Promotion):
    """Purchases carrying one of the promotion's codes, made while the promotion ran."""
    campaign = promotion.campaign
    if promotion.code_mode == Promotion.CodeMode.SHARED:
        purchases = Purchase.objects.filter(promotion_code__iexact=promotion.shared_code)
    else:
        codes = PromotionCode.objects.filter(promotion=promotion).values("code")
        purchases = Purchase.objects.filter(promotion_code__in=codes)
    if campaign.launched_at is not None:
        purchases = purchases.filter(purchased_at__gte=campaign.launched_at)
    if promotion.expires_at is not None:
        purchases = purchases.filter(purchased_at__lte=promotion.expires_at)
    return purchases


def promotion_redemptions(*, promotion: Promotion) -> int:
    """How many times the promotion was redeemed: a purchase with its code before it expired;
    a recipient's unique code counts once, and never more than the redemption cap."""
    purchases = redeeming_purchases(promotion).order_by()
    if promotion.code_mode == Promotion.CodeMode.SHARED:
        count = purchases.count()
    else:
        count = purchases.values("promotion_code").distinct().count()
    if promotion.redemption_cap is not None:
        count = min(count, promotion.redemption_cap)
    return count


@dataclass
class Group:
    assigned: int = 0
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    converted: int = 0
    orders: int = 0
    revenue: float = 0.0
    revenue_sq: float = 0.0


def _groups(campaign_ids: list[int]) -> dict[int, dict[tuple, Group]]:
    """{campaign id: {(variant id, holdout): Group}} for the campaigns, in one statement."""
    sql, params = _attributed_rows_sql(campaign_ids)
    statement = (
        "SELECT q.campaign_id, q.variant_id, q.is_holdout, q.status, COUNT(*), "
        "SUM(CASE WHEN q._orders > 0 THEN 1 ELSE 0 END), SUM(q._orders), "
        "SUM(q._revenue), SUM(q._revenue * q._revenue) "
        f"FROM ({sql}) q GROUP BY q.campaign_id, q.variant_id, q.is_holdout, q.status"
    )
    groups: dict[int, dict[tuple, Group]] = defaultdict(lambda: defaultdict(Group))
    with transaction.atomic(), connection.cursor() as cursor:
        # Compiling this statement took longer than running it (seconds, past the JIT's cost
        # thresholds); the purchase import turns the JIT off for the same reason.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(statement, params)
        for row in cursor:
            campaign_id, variant_id, holdout, status, n, converted, orders, revenue, revenue_sq = (
                row
            )
            group = groups[campaign_id][(variant_id, bool(holdout))]
            group.assigned += n
            if status == Send.Status.SENT:
                group.sent += n
            elif status == Send.Status.FAILED:
                group.failed += n
            elif status == Send.Status.UNKNOWN:
                group.unknown += n
            elif status == Send.Status.SKIPPED:
                group.skipped += n
            group.converted += converted or 0
            group.orders += orders or 0
            group.revenue += float(revenue or 0)
            group.revenue_sq += float(revenue_sq or 0)
    return groups


def _events(campaign_ids: list[int]) -> dict[int, dict]:
    """{campaign id: {variant id: {kind: sends with such an event}}}, in one statement."""
    rows = (
        MessageEvent.objects.filter(send__campaign_id__in=campaign_ids)
        .values_list("send__campaign_id", "send__variant_id", "kind")
        .annotate(n=Count("send_id", distinct=True))
        .order_by()
    )
    events: dict[int, dict] = defaultdict(lambda: defaultdict(dict))
    for campaign_id, variant_id, kind, n in rows:
        events[campaign_id][variant_id][kind] = n
    return events


def _treated_and_holdout(groups: dict[tuple, Group]) -> tuple[Group, Group]:
    """Everyone assigned to a variant (variants in order, then rows whose variant is gone),
    and the holdout."""
    treated = [g for (v, h), g in sorted(groups.items(), key=_variant_order) if not h]
    return _merge(treated), groups.get((None, True), Group())


def _variant_order(item: tuple) -> tuple:
    (variant_id, _holdout), _group = item
    return (variant_id is None, variant_id or 0)


def _totals_events(events: dict) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for by_kind in events.values():
        for kind, n in by_kind.items():
            totals[kind] += n
    return totals


def _holdout_line(holdout: Group) -> dict:
    return {
        "audience": holdout.assigned,
        "converted": holdout.converted,
        "revenue": round(holdout.revenue, 2),
        "revenue_per_member": round(holdout.revenue / holdout.assigned, 4)
        if holdout.assigned
        else 0,
        "conversion_rate": holdout.converted / holdout.assigned if holdout.assigned else 0,
    }


def _interval(diff: float, se: float) -> tuple[float, float]:
    return (diff - Z95 * se, diff + Z95 * se)


def uplift(treated: Group, holdout: Group) -> dict | None:
    """Conversion and revenue-per-recipient uplift with 95% CIs (normal approximation)."""
    n1, n0 = treated.assigned, holdout.assigned
    if n1 < 2 or n0 < 2:
        return None
    p1, p0 = treated.converted / n1, holdout.converted / n0
    se_p = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    m1, m0 = treated.revenue / n1, holdout.revenue / n0
    v1 = max(0.0, (treated.revenue_sq - n1 * m1 * m1) / (n1 - 1))
    v0 = max(0.0, (holdout.revenue_sq - n0 * m0 * m0) / (n0 - 1))
    se_m = math.sqrt(v1 / n1 + v0 / n0)
    conv_low, conv_high = _interval(p1 - p0, se_p)
    rev_low, rev_high = _interval(m1 - m0, se_m)
    return {
        "method": "95% normal approximation (Wald for conversion, Welch for revenue)",
        "treated_conversion": p1,
        "holdout_conversion": p0,
        "conversion_uplift": p1 - p0,
        "conversion_uplift_ci": [conv_low, conv_high],
        "conversion_uplift_relative": (p1 - p0) / p0 if p0 else None,
        "treated_revenue_per_recipient": m1,
        "holdout_revenue_per_recipient": m0,
        "revenue_uplift_per_recipient": m1 - m0,
        "revenue_uplift_per_recipient_ci": [rev_low, rev_high],
        "incremental_revenue": (m1 - m0) * n1,
        "incremental_revenue_ci": [rev_low * n1, rev_high * n1],
        "significant": conv_low > 0 or conv_high < 0,
    }


def _line(name: str, group: Group, events: dict[str, int]) -> dict:
    delivered = max(0, group.sent - events.get(MessageEvent.Kind.BOUNCE, 0))
    return {
        "variant": name,
        "audience": group.assigned,
        "sent": group.sent,
        "failed": group.failed,
        "unknown": group.unknown,
        "skipped": group.skipped,
        "delivered": delivered,
        "opened": events.get(MessageEvent.Kind.OPEN, 0),
        "clicked": events.get(MessageEvent.Kind.CLICK, 0),
        "unsubscribed": events.get(MessageEvent.Kind.UNSUBSCRIBE, 0),
        "bounced": events.get(MessageEvent.Kind.BOUNCE, 0),
        "complained": events.get(MessageEvent.Kind.COMPLAINT, 0),
        "converted": group.converted,
        "orders": group.orders,
        "revenue": round(group.revenue, 2),
        "revenue_per_recipient": round(group.revenue / group.assigned, 4) if group.assigned else 0,
        "conversion_rate": group.converted / group.assigned if group.assigned else 0,
    }


def _merge(groups: list[Group]) -> Group:
    total = Group()
    for g in groups:
        for field in Group.__dataclass_fields__:
            setattr(total, field, getattr(total, field) + getattr(g, field))
    return total


def send_unknown_reasons(*, campaign: Campaign) -> list[str]:
    """Why a campaign's unknown sends are unknown (each reason once)."""
    return sorted(
        Send.objects.filter(campaign=campaign, status=Send.Status.UNKNOWN)
        .order_by()
        .values_list("reason", flat=True)
        .distinct()
    )


def campaign_report(*, campaign: Campaign) -> dict:
    """The whole report: totals, per variant, exclusions by reason, holdout and uplift."""
    groups = _groups([campaign.pk])[campaign.pk]
    events = _events([campaign.pk])[campaign.pk]
    variants = []
    for variant in campaign.variants.order_by("pk"):
        group = groups.get((variant.pk, False), Group())
        variants.append({"id": variant.pk, **_line(variant.name, group, events[variant.pk]),
                         "uplift": None})  # fmt: skip
    treated, holdout = _treated_and_holdout(groups)
    for line in variants:
        line["uplift"] = uplift(groups.get((line["id"], False), Group()), holdout)
    promotion = Promotion.objects.filter(campaign=campaign).first()
    redemptions = promotion_redemptions(promotion=promotion) if promotion is not None else 0
    excluded = dict(campaign.exclusions or {})
    return {
        "campaign": {
            "id": campaign.pk,
            "name": campaign.name,
            "status": campaign.status,
            "attribution_days": campaign.attribution_days,
        },  # fmt: skip
        "totals": _line("all", treated, _totals_events(events)),
        "variants": variants,
        "holdout": _holdout_line(holdout),
        "uplift": uplift(treated, holdout),
        "excluded": [
            {"reason": reason, "label": REASON_LABELS.get(reason, reason), "count": count}
            for reason, count in sorted(excluded.items())
        ],
        "excluded_total": sum(excluded.values()),
        "promotion_redemptions": redemptions,
        "redemption_cap": promotion.redemption_cap if promotion else None,
        "unknown_reasons": send_unknown_reasons(campaign=campaign),
    }


COMPARED_AT_MOST = 50


def campaigns_compared(*, campaigns: Sequence[Campaign]) -> list[dict]:
    """The report's totals, holdout and uplift for each campaign, computed for all of them at
    once: two statements however many campaigns there are (the report's figures, not its
    variants, exclusions or redemptions)."""
    if not campaigns:
        return []
    ids = [campaign.pk for campaign in campaigns]
    groups, events = _groups(ids), _events(ids)
    lines = []
    for campaign in campaigns:
        treated, holdout = _treated_and_holdout(groups[campaign.pk])
        lines.append(
            {
                "campaign": campaign,
                "totals": _line("all", treated, _totals_events(events[campaign.pk])),
                "holdout": _holdout_line(holdout),
                "uplift": uplift(treated, holdout),
            }
        )
    return lines


def campaigns_overview(*, limit: int = COMPARED_AT_MOST) -> list[dict]:
    """One line per launched campaign, latest first, for comparing them."""
    campaigns = list(
        Campaign.objects.exclude(status=Campaign.Status.DRAFT).order_by("-created_at", "-id")[
            :limit
        ]
    )
    return campaigns_compared(campaigns=campaigns)
