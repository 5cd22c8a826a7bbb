"""Every write of the pipeline: pipelines and stages, deals and their lines, stage moves (each
recorded), activities and follow-ups, targets. Pages, API, demo and admin call these."""

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Max, Sum
from django.utils import timezone

from customers.models import Account, Customer, Product, Purchase
from customers.selectors import accounts_visible_to, customers_visible_to
from customers.services import purchase_create
from deals.models import Activity, Deal, DealLine, ForecastTarget, Pipeline, Stage, StageChange
from deals.selectors import deals_visible_to, sales_users, user_edits_deals

OWNER_REFUSED = "Only an administrator can give a deal to someone else."
NOT_SALES = "Deals are owned by sales staff: this user is not in sales."


def _require_editor(actor: AbstractBaseUser | None) -> None:
    if actor is not None and not user_edits_deals(actor):
        raise PermissionDenied("Only sales staff and admins change deals and log activities.")


def _require_admin(actor: AbstractBaseUser | None, *, doing: str) -> None:
    if actor is not None and not actor.is_superuser:
        raise PermissionDenied(f"Only an administrator may {doing}.")


def _check_deal_visible(*, actor: AbstractBaseUser | None, deal: Deal) -> None:
    if actor is not None and not deals_visible_to(actor).filter(pk=deal.pk).exists():
        raise ValidationError({"deal": "No deal with that number that you may see."})


def _check_parties(
    *,
    actor: AbstractBaseUser | None,
    account: Account | None,
    customer: Customer | None,
    current: Deal | Activity | None = None,
) -> None:
    """A deal or an activity goes only on an account or customer the actor may see (keeping the
    one it has is fine)."""
    if actor is None:
        return
    if account is not None and (current is None or current.account_id != account.pk):
        if not accounts_visible_to(actor).filter(pk=account.pk).exists():
            raise ValidationError({"account": "No account with that number that you may see."})
    if customer is not None and (current is None or current.customer_id != customer.pk):
        if not customers_visible_to(actor).filter(pk=customer.pk).exists():
            raise ValidationError({"customer": "No customer with that number that you may see."})


def _check_owner(*, actor: AbstractBaseUser | None, owner, deal: Deal | None) -> None:
    owner_id = getattr(owner, "pk", owner)
    if owner_id is not None and not sales_users().filter(pk=owner_id).exists():
        raise ValidationError({"owner": NOT_SALES})
    if actor is None or actor.is_superuser:
        return
    if owner_id == actor.pk or (deal is not None and owner_id == deal.owner_id):
        return
    raise ValidationError({"owner": OWNER_REFUSED})


def _clean_currency(currency: str) -> str:
    currency = (currency or "").strip().upper()
    if len(currency) != 3 or not currency.isalpha() or not currency.isascii():
        raise ValidationError({"currency": "Give a three-letter currency code, such as EUR."})
    return currency


# Pipelines and stages ---------------------------------------------------------------------------


def pipeline_create(
    *,
    name: str,
    stages: Iterable[tuple[str, int, str]] = (),
    creates_purchases: bool = False,
    is_default: bool = False,
    actor: AbstractBaseUser | None = None,
) -> Pipeline:
    """A pipeline with its stages in order, each (name, default probability, outcome)."""
    _require_admin(actor, doing="set up pipelines")
    with transaction.atomic():
        if is_default:
            Pipeline.objects.filter(is_default=True).update(is_default=False)
        pipeline = Pipeline(
            name=(name or "").strip(), creates_purchases=creates_purchases, is_default=is_default
        )
        pipeline.full_clean()
        pipeline.save(force_insert=True)
        for stage_name, probability, outcome in stages:
            stage_create(
                pipeline=pipeline, name=stage_name, probability=probability, outcome=outcome
            )
    return pipeline


def pipeline_update(
    *, pipeline: Pipeline, actor: AbstractBaseUser | None = None, **fields
) -> Pipeline:
    _require_admin(actor, doing="change pipelines")
    allowed = {"name", "creates_purchases", "is_default"}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValidationError({name: "This field cannot be set." for name in unknown})
    with transaction.atomic():
        if fields.get("is_default"):
            Pipeline.objects.exclude(pk=pipeline.pk).filter(is_default=True).update(
                is_default=False
            )
        for name, value in fields.items():
            setattr(pipeline, name, value.strip() if isinstance(value, str) else value)
        pipeline.full_clean()
        pipeline.save(update_fields=list(fields))
    return pipeline


def _stage_probability(outcome: str, probability: int | None) -> int:
    if outcome == Stage.Outcome.WON:
        return 100
    if outcome == Stage.Outcome.LOST:
        return 0
    if probability is None or not 0 <= probability <= 100:
        raise ValidationError({"probability": "Give a probability from 0 to 100 percent."})
    return probability


def stage_create(
    *,
    pipeline: Pipeline,
    name: str,
    probability: int | None = 10,
    outcome: str = Stage.Outcome.OPEN,
    position: int | None = None,
    actor: AbstractBaseUser | None = None,
) -> Stage:
    """Add a stage (at the end unless a position is given); a won stage is 100 %, a lost one 0 %."""
    _require_admin(actor, doing="set up stages")
    if position is None:
        position = (pipeline.stages.aggregate(last=Max("position"))["last"] or 0) + 1
    stage = Stage(
        pipeline=pipeline,
        name=(name or "").strip(),
        probability=_stage_probability(outcome, probability),
        outcome=outcome,
        position=position,
    )
    stage.full_clean()
    stage.save(force_insert=True)
    return stage


def stage_update(*, stage: Stage, actor: AbstractBaseUser | None = None, **fields) -> Stage:
    _require_admin(actor, doing="change stages")
    allowed = {"name", "probability", "outcome", "position"}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValidationError({name: "This field cannot be set." for name in unknown})
    for name, value in fields.items():
        setattr(stage, name, value.strip() if isinstance(value, str) else value)
    stage.probability = _stage_probability(stage.outcome, stage.probability)
    stage.full_clean(exclude=["pipeline"])
    stage.save(update_fields=sorted({*fields, "probability"}))
    return stage


def stage_delete(*, stage: Stage, actor: AbstractBaseUser | None = None) -> None:
    _require_admin(actor, doing="remove stages")
    if stage.deals.exists():
        raise ValidationError({"stage": "Deals are in this stage: move them first."})
    if StageChange.objects.filter(to_stage=stage).exists():
        raise ValidationError({"stage": "Deals passed through this stage: it stays for history."})
    stage.delete()


# Deals ------------------------------------------------------------------------------------------


def _close_fields(deal: Deal, stage: Stage, now: dt.datetime) -> None:
    deal.closed_at = now if stage.is_closed else None


def deal_create(
    *,
    name: str,
    actor: AbstractBaseUser | None = None,
    pipeline: Pipeline | None = None,
    stage: Stage | None = None,
    amount: Decimal = Decimal("0"),
    currency: str = "EUR",
    expected_close_date: dt.date | None = None,
    owner: AbstractBaseUser | None = None,
    probability: int | None = None,
    source: str = "",
    account: Account | None = None,
    customer: Customer | None = None,
    next_step: str = "",
    lost_reason: str = "",
) -> Deal:
    """Open a deal in the pipeline's first stage (or the stage given) and record that entry."""
    _require_editor(actor)
    if owner is None and actor is not None:
        owner = actor
    _check_owner(actor=actor, owner=owner, deal=None)
    _check_parties(actor=actor, account=account, customer=customer)
    if account is None and customer is None:
        raise ValidationError({"account": "A deal is with an account or a customer: give one."})
    if stage is not None:
        if pipeline is not None and stage.pipeline_id != pipeline.pk:
            raise ValidationError({"stage": "This stage belongs to another pipeline."})
        pipeline = stage.pipeline
    if pipeline is None:
        from deals.selectors import default_pipeline

        pipeline = default_pipeline()
        if pipeline is None:
            raise ValidationError({"pipeline": "There is no pipeline yet: an admin sets one up."})
    if stage is None:
        stage = pipeline.stages.order_by("position", "id").first()
        if stage is None:
            raise ValidationError({"stage": "This pipeline has no stages yet."})
    now = timezone.now()
    deal = Deal(
        pipeline=pipeline,
        stage=stage,
        name=(name or "").strip(),
        amount=amount,
        currency=_clean_currency(currency),
        expected_close_date=expected_close_date,
        owner=owner,
        probability=probability,
        source=(source or "").strip(),
        account=account,
        customer=customer,
        next_step=(next_step or "").strip(),
        lost_reason=(lost_reason or "").strip(),
        stage_entered_at=now,
    )
    _close_fields(deal, stage, now)
    deal.full_clean(exclude=["purchase"])
    with transaction.atomic():
        deal.save(force_insert=True)
        StageChange.objects.create(
            deal=deal, from_stage=None, to_stage=stage, changed_at=now, changed_by=actor
        )
        _purchase_if_won(deal=deal, actor=actor)
    return deal


DEAL_FIELDS = (
    "name",
    "amount",
    "currency",
    "expected_close_date",
    "owner",
    "probability",
    "source",
    "account",
    "customer",
    "next_step",
    "lost_reason",
)


def deal_update(*, deal: Deal, actor: AbstractBaseUser | None = None, **fields) -> Deal:
    """Change a deal's fields; a new stage goes through deal_move, so the change is recorded."""
    _require_editor(actor)
    _check_deal_visible(actor=actor, deal=deal)
    stage = fields.pop("stage", None)
    unknown = sorted(set(fields) - set(DEAL_FIELDS))
    if unknown:
        raise ValidationError({name: "This field cannot be set." for name in unknown})
    if "owner" in fields:
        _check_owner(actor=actor, owner=fields["owner"], deal=deal)
    _check_parties(
        actor=actor,
        account=fields.get("account"),
        customer=fields.get("customer"),
        current=deal,
    )
    if "currency" in fields:
        fields["currency"] = _clean_currency(fields["currency"])
    for name, value in fields.items():
        setattr(deal, name, value.strip() if isinstance(value, str) else value)
    if deal.account_id is None and deal.customer_id is None:
        raise ValidationError({"account": "A deal is with an account or a customer: give one."})
    deal.full_clean(exclude=["purchase"])
    with transaction.atomic():
        if fields:
            deal.save(update_fields=[*fields, "updated_at"])
        if stage is not None and stage.pk != deal.stage_id:
            deal = deal_move(deal=deal, stage=stage, actor=actor)
    return deal


def deal_move(
    *, deal: Deal, stage: Stage, actor: AbstractBaseUser | None = None, lost_reason: str = ""
) -> Deal:
    """Move a deal to another stage of its pipeline, record the change, and when the stage is won
    (and the pipeline says so) record the purchase. Moving to the stage it is in changes nothing."""
    _require_editor(actor)
    _check_deal_visible(actor=actor, deal=deal)
    if stage.pipeline_id != deal.pipeline_id:
        raise ValidationError({"stage": "This stage belongs to another pipeline."})
    with transaction.atomic():
        deal = Deal.objects.select_for_update().get(pk=deal.pk)
        if deal.stage_id == stage.pk:
            return deal
        now = timezone.now()
        previous = deal.stage_id
        deal.stage = stage
        deal.stage_entered_at = now
        _close_fields(deal, stage, now)
        update = ["stage", "stage_entered_at", "closed_at", "updated_at"]
        if lost_reason.strip():
            deal.lost_reason = lost_reason.strip()[:300]
            update.append("lost_reason")
        deal.save(update_fields=update)
        StageChange.objects.create(
            deal=deal, from_stage_id=previous, to_stage=stage, changed_at=now, changed_by=actor
        )
        _purchase_if_won(deal=deal, actor=actor)
    return deal


def _purchase_if_won(*, deal: Deal, actor: AbstractBaseUser | None) -> None:
    """A deal won in a pipeline that creates purchases becomes its customer's purchase, once.

    A deal with only an account has no person to buy: it stays a deal (the account page and the
    forecast count it)."""
    if deal.stage.outcome != Stage.Outcome.WON or deal.purchase_id is not None:
        return
    if not deal.pipeline.creates_purchases or deal.customer_id is None or deal.amount <= 0:
        return
    # Recorded already (the deal was won before, then its link lost: a restore, an import of the
    # same order): link that purchase instead of counting the sale twice.
    purchase = Purchase.objects.filter(external_id=f"deal-{deal.pk}").first()
    if purchase is not None:
        deal.purchase = purchase
        deal.save(update_fields=["purchase"])
        return
    purchase = purchase_create(
        customer=deal.customer,
        purchased_at=deal.closed_at or timezone.now(),
        amount=deal.amount,
        currency=deal.currency,
        external_id=f"deal-{deal.pk}",
        channel="other",
        category="deal",
        actor=actor,
    )
    deal.purchase = purchase
    deal.save(update_fields=["purchase"])


def deal_delete(*, deal: Deal, actor: AbstractBaseUser | None = None) -> None:
    """Remove a deal and its history (admins only: sales mark a deal lost instead)."""
    _require_admin(actor, doing="delete deals")
    deal.delete()


def _deal_amount_from_lines(deal: Deal) -> None:
    """With product lines, a deal's amount is the sum of its lines."""
    total = deal.lines.aggregate(total=Sum(F("price") * F("quantity")))["total"]
    if total is not None:
        Deal.objects.filter(pk=deal.pk).update(amount=total, updated_at=timezone.now())
        deal.amount = total


def deal_line_add(
    *,
    deal: Deal,
    product: Product,
    quantity: int = 1,
    price: Decimal | None = None,
    actor: AbstractBaseUser | None = None,
) -> DealLine:
    _require_editor(actor)
    _check_deal_visible(actor=actor, deal=deal)
    line = DealLine(
        deal=deal,
        product=product,
        quantity=quantity,
        price=product.price if price is None else price,
    )
    line.full_clean()
    with transaction.atomic():
        line.save(force_insert=True)
        _deal_amount_from_lines(deal)
    return line


def deal_line_update(
    *, line: DealLine, actor: AbstractBaseUser | None = None, **fields
) -> DealLine:
    _require_editor(actor)
    _check_deal_visible(actor=actor, deal=line.deal)
    unknown = sorted(set(fields) - {"product", "quantity", "price"})
    if unknown:
        raise ValidationError({name: "This field cannot be set." for name in unknown})
    for name, value in fields.items():
        setattr(line, name, value)
    line.full_clean()
    with transaction.atomic():
        line.save(update_fields=list(fields))
        _deal_amount_from_lines(line.deal)
    return line


def deal_line_delete(*, line: DealLine, actor: AbstractBaseUser | None = None) -> None:
    _require_editor(actor)
    _check_deal_visible(actor=actor, deal=line.deal)
    deal = line.deal
    with transaction.atomic():
        line.delete()
        _deal_amount_from_lines(deal)


# Activities -------------------------------------------------------------------------------------


def activity_create(
    *,
    author: AbstractBaseUser | None,
    subject: str,
    kind: str = Activity.Kind.CALL,
    body: str = "",
    deal: Deal | None = None,
    account: Account | None = None,
    customer: Customer | None = None,
    assignee: AbstractBaseUser | None = None,
    due_date: dt.date | None = None,
    occurred_at: dt.datetime | None = None,
) -> Activity:
    """Log a call, meeting or email on a deal, account or customer; with a due date it is a
    follow-up for the assignee (the author when nobody else is named)."""
    _require_editor(author)
    if deal is None and account is None and customer is None:
        raise ValidationError({"deal": "An activity is on a deal, an account or a customer."})
    if deal is not None:
        _check_deal_visible(actor=author, deal=deal)
    _check_parties(actor=author, account=account, customer=customer)
    if assignee is not None and not sales_users().filter(pk=assignee.pk).exists():
        raise ValidationError({"assignee": "Follow-ups are assigned to sales staff only."})
    if due_date is not None and assignee is None:
        assignee = author
    activity = Activity(
        kind=kind,
        subject=(subject or "").strip(),
        body=(body or "").strip(),
        deal=deal,
        account=account,
        customer=customer,
        author=author,
        assignee=assignee,
        due_date=due_date,
        occurred_at=occurred_at or timezone.now(),
    )
    activity.full_clean()
    activity.save(force_insert=True)
    return activity


def _check_activity_editor(*, activity: Activity, actor: AbstractBaseUser | None) -> None:
    """The author, the assignee or an administrator change an activity."""
    if actor is None or actor.is_superuser:
        return
    if actor.pk not in (activity.author_id, activity.assignee_id):
        raise PermissionDenied("Only its author or assignee changes an activity.")


def activity_update(
    *, activity: Activity, actor: AbstractBaseUser | None = None, **fields
) -> Activity:
    _require_editor(actor)
    _check_activity_editor(activity=activity, actor=actor)
    unknown = sorted(set(fields) - {"kind", "subject", "body", "assignee", "due_date", "done"})
    if unknown:
        raise ValidationError({name: "This field cannot be set." for name in unknown})
    if fields.get("assignee") is not None:
        if not sales_users().filter(pk=fields["assignee"].pk).exists():
            raise ValidationError({"assignee": "Follow-ups are assigned to sales staff only."})
    done = fields.pop("done", None)
    for name, value in fields.items():
        setattr(activity, name, value.strip() if isinstance(value, str) else value)
    update = list(fields)
    if done is not None and done != activity.done:
        activity.done = done
        activity.done_at = timezone.now() if done else None
        update += ["done", "done_at"]
    activity.full_clean()
    if update:
        activity.save(update_fields=update)
    return activity


def activity_complete(*, activity: Activity, actor: AbstractBaseUser | None = None) -> Activity:
    """Mark a follow-up done (once: completing it again keeps the first completion time)."""
    if activity.done:
        return activity
    return activity_update(activity=activity, actor=actor, done=True)


def activity_delete(*, activity: Activity, actor: AbstractBaseUser | None = None) -> None:
    _require_editor(actor)
    _check_activity_editor(activity=activity, actor=actor)
    activity.delete()


# Targets ----------------------------------------------------------------------------------------


def forecast_target_set(
    *,
    owner: AbstractBaseUser,
    month: dt.date,
    amount: Decimal,
    currency: str = "EUR",
    actor: AbstractBaseUser | None = None,
) -> ForecastTarget:
    """Set (or replace) what a salesperson is expected to win in a month."""
    _require_admin(actor, doing="set targets")
    if not sales_users().filter(pk=owner.pk).exists():
        raise ValidationError({"owner": NOT_SALES})
    if amount is None or amount < 0:
        raise ValidationError({"amount": "Give a target of zero or more."})
    target, _ = ForecastTarget.objects.update_or_create(
        owner=owner,
        month=month.replace(day=1),
        currency=_clean_currency(currency),
        defaults={"amount": amount},
    )
    return target


def forecast_target_delete(
    *, target: ForecastTarget, actor: AbstractBaseUser | None = None
) -> None:
    _require_admin(actor, doing="remove targets")
    target.delete()
