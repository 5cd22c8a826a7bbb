"""Shared reads of the pipeline: which deals and activities a user may see, the board's columns,
the forecast and the follow-ups a user is assigned.

Who sees which deals (one rule, for pages, API and every list):
- admins: every deal;
- sales: the deals they own, or every deal when CRM_SALES_SEE_ALL is set (as for customers);
- marketing: every deal, read-only (they plan campaigns around what is being sold);
- privacy officers: none (a data-subject export reaches deals through the personal-data registry).
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import (
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone

from crm.roles import Role, user_roles
from customers.selectors import accounts_visible_to, customers_visible_to
from deals.models import Activity, Deal, ForecastTarget, Pipeline, Stage


def user_sees_all_deals(user: AbstractBaseUser | AnonymousUser) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    roles = user_roles(user)
    return Role.MARKETING in roles or (Role.SALES in roles and settings.CRM_SALES_SEE_ALL)


def user_edits_deals(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Sales staff and admins create, change and move deals and log activities."""
    return user.is_authenticated and (user.is_superuser or Role.SALES in user_roles(user))


def user_reads_deals(user: AbstractBaseUser | AnonymousUser) -> bool:
    return user.is_authenticated and bool(
        user.is_superuser or user_roles(user) & {Role.SALES, Role.MARKETING}
    )


def deals_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Deal]:
    if user_sees_all_deals(user):
        return Deal.objects.all()
    if user_edits_deals(user):
        return Deal.objects.filter(owner_id=user.pk)
    return Deal.objects.none()


def activities_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Activity]:
    """Activities on what the user may see, plus the ones they wrote or were assigned."""
    if not user_reads_deals(user):
        return Activity.objects.none()
    if user_sees_all_deals(user) and (user.is_superuser or Role.MARKETING in user_roles(user)):
        return Activity.objects.all()
    return Activity.objects.filter(
        Q(deal__in=deals_visible_to(user).values("pk"))
        | Q(customer__in=customers_visible_to(user).values("pk"))
        | Q(account__in=accounts_visible_to(user).values("pk"))
        | Q(assignee_id=user.pk)
        | Q(author_id=user.pk)
    )


def sales_users() -> QuerySet:
    """The staff who may own deals and be assigned follow-ups: sales and admins."""
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(groups__name=Role.SALES) | Q(is_superuser=True))
        .distinct()
        .order_by("username")
    )


WEIGHTED = ExpressionWrapper(
    F("amount") * Coalesce("probability", "stage__probability") / Value(Decimal(100)),
    output_field=DecimalField(max_digits=16, decimal_places=2),
)


# What the learned model expects (its probability where it scored the deal, else the deal's own
# or the stage's) times the amount: the forecast from the win-probability model.
PREDICTED = ExpressionWrapper(
    F("amount")
    * Coalesce("win_probability", "probability", "stage__probability")
    / Value(Decimal(100)),
    output_field=DecimalField(max_digits=16, decimal_places=2),
)


def deals_with_figures(deals: QuerySet[Deal]) -> QuerySet[Deal]:
    """Deals with `effective_probability` (the override or the stage's) and `weighted_amount`."""
    return deals.annotate(
        effective_probability=Coalesce("probability", "stage__probability"),
        weighted_amount=WEIGHTED,
    )


def default_pipeline() -> Pipeline | None:
    return Pipeline.objects.order_by("-is_default", "id").first()


@dataclass
class BoardColumn:
    stage: Stage
    deals: list[Deal] = field(default_factory=list)
    count: int = 0
    total: Decimal = Decimal("0")
    weighted: Decimal = Decimal("0")


BOARD_CARDS_PER_COLUMN = 50


def board_columns(
    *, deals: QuerySet[Deal], pipeline: Pipeline, cards: int = BOARD_CARDS_PER_COLUMN
) -> list[BoardColumn]:
    """One column per stage of the pipeline: the totals of every deal in it (one grouped query)
    and the cards of the `cards` deals closing soonest (one query per column, bounded)."""
    deals = deals.filter(pipeline=pipeline)
    columns = {s.pk: BoardColumn(stage=s) for s in pipeline.stages.order_by("position", "id")}
    totals = (
        deals.values("stage_id")
        .annotate(count=Count("*"), total=Sum("amount"), weighted=Sum(WEIGHTED))
        .order_by()
    )
    for row in totals:
        column = columns.get(row["stage_id"])
        if column is not None:
            column.count = row["count"]
            column.total = row["total"] or Decimal("0")
            column.weighted = (row["weighted"] or Decimal("0")).quantize(Decimal("0.01"))
    order = (F("expected_close_date").asc(nulls_last=True), "id")
    # Each column's first cards by an index range of its own (deal_stage_cards_idx), all the
    # columns in one statement: the union of the per-stage ranges, then their rows.
    parts = [
        deals.filter(stage_id=stage_id).order_by(*order).values("pk")[:cards]
        for stage_id in columns
    ]
    if parts:
        chosen = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
        rows = (
            deals_with_figures(Deal.objects.filter(pk__in=chosen))
            .select_related("owner", "account", "customer")
            .order_by(*order)
        )
        for deal in rows:
            columns[deal.stage_id].deals.append(deal)
    return list(columns.values())


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def months_from(first: dt.date, count: int) -> list[dt.date]:
    months, year, month = [], first.year, first.month
    for _ in range(count):
        months.append(dt.date(year, month, 1))
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return months


@dataclass
class ForecastRow:
    owner_id: int | None
    owner_name: str
    month: dt.date
    weighted: Decimal = Decimal("0")
    predicted: Decimal = Decimal("0")
    won: Decimal = Decimal("0")
    target: Decimal | None = None


def forecast(
    *,
    deals: QuerySet[Deal],
    months: list[dt.date],
    currency: str,
    owner_ids: list[int] | None = None,
) -> list[ForecastRow]:
    """Per owner and month: the weighted open pipeline by expected close month, the won amount by
    the month the deal was won, and the owner's target; set-based, one grouped query each."""
    deals = deals.filter(currency=currency)
    if owner_ids is not None:
        deals = deals.filter(owner_id__in=owner_ids)
    start = months[0]
    end = months_from(months[-1], 2)[1]
    open_rows = (
        deals.filter(
            stage__outcome=Stage.Outcome.OPEN,
            expected_close_date__gte=start,
            expected_close_date__lt=end,
        )
        .annotate(month=TruncMonth("expected_close_date"))
        .values("owner_id", "month")
        .annotate(weighted=Sum(WEIGHTED), predicted=Sum(PREDICTED))
        .order_by()
    )
    tz = timezone.get_current_timezone()
    won_rows = (
        deals.filter(
            stage__outcome=Stage.Outcome.WON,
            closed_at__gte=dt.datetime.combine(start, dt.time.min, tz),
            closed_at__lt=dt.datetime.combine(end, dt.time.min, tz),
        )
        .annotate(month=TruncMonth("closed_at", tzinfo=tz))
        .values("owner_id", "month")
        .annotate(won=Sum("amount"))
        .order_by()
    )
    targets = ForecastTarget.objects.filter(
        month__gte=start, month__lt=end, currency=currency
    ).values("owner_id", "month", "amount")
    if owner_ids is not None:
        targets = targets.filter(owner_id__in=owner_ids)

    def key(owner_id, month) -> tuple:
        month = month.date() if isinstance(month, dt.datetime) else month
        return owner_id, month

    cells: dict[tuple, ForecastRow] = {}

    def cell(owner_id, month) -> ForecastRow:
        k = key(owner_id, month)
        if k not in cells:
            cells[k] = ForecastRow(owner_id=k[0], owner_name="", month=k[1])
        return cells[k]

    for row in open_rows:
        target = cell(row["owner_id"], row["month"])
        target.weighted = (row["weighted"] or Decimal(0)).quantize(Decimal("0.01"))
        target.predicted = (row["predicted"] or Decimal(0)).quantize(Decimal("0.01"))
    for row in won_rows:
        cell(row["owner_id"], row["month"]).won = row["won"] or Decimal(0)
    for row in targets:
        cell(row["owner_id"], row["month"]).target = row["amount"]
    if owner_ids:
        for owner_id in owner_ids:
            for month in months:
                cell(owner_id, month)
    names = dict(
        get_user_model()
        .objects.filter(pk__in={r.owner_id for r in cells.values() if r.owner_id})
        .values_list("pk", "username")
    )
    for row in cells.values():
        row.owner_name = names.get(row.owner_id, "no owner")
    return sorted(
        (r for r in cells.values() if start <= r.month < end),
        key=lambda r: (r.owner_name, r.month),
    )


def forecast_totals_by_month(rows: list[ForecastRow], months: list[dt.date]) -> dict:
    """The chart's series: weighted, won and target per month, summed over the owners shown."""
    by_month: dict[dt.date, dict[str, Decimal]] = defaultdict(
        lambda: {
            "weighted": Decimal(0),
            "predicted": Decimal(0),
            "won": Decimal(0),
            "target": Decimal(0),
        }
    )
    for row in rows:
        by_month[row.month]["weighted"] += row.weighted
        by_month[row.month]["predicted"] += row.predicted
        by_month[row.month]["won"] += row.won
        by_month[row.month]["target"] += row.target or Decimal(0)
    return {
        "labels": [m.strftime("%b %Y") for m in months],
        "weighted": [float(by_month[m]["weighted"]) for m in months],
        "predicted": [float(by_month[m]["predicted"]) for m in months],
        "won": [float(by_month[m]["won"]) for m in months],
        "target": [float(by_month[m]["target"]) for m in months],
    }


def follow_ups_assigned(user: AbstractBaseUser, *, within_days: int = 7) -> list[Activity]:
    """The user's open follow-ups due within the coming days, overdue first."""
    horizon = timezone.localdate() + dt.timedelta(days=within_days)
    return list(
        Activity.objects.filter(
            assignee_id=user.pk, done=False, due_date__isnull=False, due_date__lte=horizon
        )
        .select_related("deal", "customer", "account", "author")
        .order_by("due_date", "id")[:20]
    )


def deal_days_in_stage(deal: Deal) -> int:
    return max(0, (timezone.now() - deal.stage_entered_at).days)
