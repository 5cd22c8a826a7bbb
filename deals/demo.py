"""Demo pipelines, deals in every stage with the history of how they got there, activities,
follow-ups for each salesperson and monthly targets (`manage.py seed_demo` runs it after the
customers). Deterministic: the same demo customers give the same deals. Won demo deals are not
turned into purchases: the demo's purchase history is the customers step's, and stays the same
whether or not deals are installed."""

import datetime as dt
import random
from decimal import Decimal

from django.db import models, transaction
from django.db.models import Max
from django.utils import timezone

from customers.models import Account, Customer, Purchase
from deals.models import Activity, Deal, ForecastTarget, Pipeline, Stage, StageChange
from deals.services import pipeline_create

DEMO_SOURCE = "demo"
PIPELINES = (
    (
        "New business",
        True,
        True,
        (
            ("Qualified", 10, "open"),
            ("Needs analysis", 25, "open"),
            ("Proposal", 50, "open"),
            ("Negotiation", 75, "open"),
            ("Won", 100, "won"),
            ("Lost", 0, "lost"),
        ),
    ),
    (
        "Renewals",
        False,
        False,
        (
            ("Renewal due", 60, "open"),
            ("Offer sent", 80, "open"),
            ("Renewed", 100, "won"),
            ("Churned", 0, "lost"),
        ),
    ),
)
DEAL_NAMES = (
    "Fleet renewal", "Store fit-out", "Spring collection", "Loyalty programme", "Web shop",
    "Service contract", "Staff uniforms", "Warehouse shelving", "Event catering", "Gift boxes",
)  # fmt: skip
ACTIVITIES = (
    ("call", "Intro call", "Talked through their needs and budget."),
    ("meeting", "Site visit", "Met the buying team on site."),
    ("email", "Sent the proposal", "Proposal with prices and delivery dates."),
    ("call", "Follow-up call", "Questions about delivery times answered."),
    ("meeting", "Negotiation meeting", "Discussed volume discount."),
)
LOST_REASONS = ("Price too high", "Chose a competitor", "No budget this year")
DEALS_PER_SALESPERSON = 24


def _pipelines() -> list[Pipeline]:
    found = []
    for name, creates_purchases, is_default, stages in PIPELINES:
        pipeline = Pipeline.objects.filter(name=name).first() or pipeline_create(
            name=name, stages=stages, creates_purchases=creates_purchases, is_default=is_default
        )
        found.append(pipeline)
    return found


def demo_deals_seed(users: dict[str, models.Model]) -> int:
    """Write the demo deals once (a second run on the same data adds nothing); returns how many."""
    pipelines = _pipelines()
    if Deal.objects.filter(source=DEMO_SOURCE).exists():
        return Deal.objects.filter(source=DEMO_SOURCE).count()
    latest = Purchase.objects.aggregate(at=Max("purchased_at"))["at"]
    now = latest or timezone.now()
    today = now.date()
    rng = random.Random(21)
    salespeople = [u for name, u in sorted(users.items()) if name.startswith("sales")]
    stages = {p.pk: list(p.stages.order_by("position")) for p in pipelines}
    written = 0
    with transaction.atomic():
        for seller_index, seller in enumerate(salespeople):
            accounts = list(Account.objects.filter(owner=seller).order_by("id")[:12])
            if not accounts:
                continue
            contacts = {
                c.account_id: c
                for c in Customer.objects.filter(account__in=accounts, erased_at__isnull=True)
                .order_by("account_id", "id")
                .distinct("account_id")
            }
            for n in range(DEALS_PER_SALESPERSON):
                pipeline = pipelines[0] if n % 4 else pipelines[1]
                path = stages[pipeline.pk]
                # Every stage gets deals: walk round them, open ones more often.
                target = path[n % len(path)] if n < len(path) * 2 else rng.choice(path)
                written += _deal_with_history(
                    rng=rng,
                    now=now,
                    today=today,
                    seller=seller,
                    colleague=salespeople[(seller_index + 1) % len(salespeople)],
                    account=accounts[n % len(accounts)],
                    contact=contacts.get(accounts[n % len(accounts)].pk),
                    pipeline=pipeline,
                    path=path,
                    target=target,
                    number=n,
                )
            for month_offset in range(-2, 4):
                month = (today.replace(day=1) + dt.timedelta(days=32 * month_offset)).replace(day=1)
                ForecastTarget.objects.update_or_create(
                    owner=seller,
                    month=month,
                    currency="EUR",
                    defaults={"amount": Decimal(20000 + 5000 * rng.randrange(4))},
                )
    return written


def _deal_with_history(
    *, rng, now, today, seller, colleague, account, contact, pipeline, path, target, number
) -> int:
    open_path = [s for s in path if s.outcome == Stage.Outcome.OPEN]
    if target.outcome == Stage.Outcome.OPEN:
        walk = open_path[: open_path.index(target) + 1]
    else:
        walk = open_path[: rng.randrange(1, len(open_path) + 1)] + [target]
    started = now - dt.timedelta(days=rng.randrange(20, 120))
    moments = sorted(
        started + dt.timedelta(days=rng.uniform(0, (now - started).days)) for _ in walk[1:]
    )
    moments = [started, *moments]
    closed = target.outcome != Stage.Outcome.OPEN
    amount = Decimal(rng.randrange(20, 400) * 50)
    close_date = moments[-1].date() if closed else today + dt.timedelta(days=rng.randrange(5, 150))
    deal = Deal.objects.create(
        pipeline=pipeline,
        stage=target,
        name=f"{DEAL_NAMES[number % len(DEAL_NAMES)]} – {account.name}",
        amount=amount,
        currency="EUR",
        expected_close_date=close_date,
        owner=seller,
        source=DEMO_SOURCE,
        account=account,
        customer=contact,
        next_step="" if closed else rng.choice(("Send revised quote", "Book a demo", "Call back")),
        lost_reason=rng.choice(LOST_REASONS) if target.outcome == Stage.Outcome.LOST else "",
        stage_entered_at=moments[-1],
        closed_at=moments[-1] if closed else None,
    )
    Deal.objects.filter(pk=deal.pk).update(created_at=started, updated_at=moments[-1])
    StageChange.objects.bulk_create(
        StageChange(
            deal=deal,
            from_stage=walk[i - 1] if i else None,
            to_stage=stage,
            changed_at=moments[i],
            changed_by=seller,
        )
        for i, stage in enumerate(walk)
    )
    activities = [
        Activity(
            kind=kind,
            subject=subject,
            body=body,
            deal=deal,
            author=seller,
            occurred_at=moments[min(i, len(moments) - 1)] + dt.timedelta(hours=2),
            done=True,
            done_at=moments[min(i, len(moments) - 1)] + dt.timedelta(hours=2),
        )
        for i, (kind, subject, body) in enumerate(ACTIVITIES[: rng.randrange(1, 4)])
    ]
    if not closed and number % 3 == 0:
        activities.append(
            Activity(
                kind=Activity.Kind.TASK,
                subject=rng.choice(("Send the contract", "Check the budget", "Book a demo")),
                deal=deal,
                author=seller,
                assignee=colleague if number % 2 else seller,
                due_date=today + dt.timedelta(days=rng.randrange(-2, 6)),
                occurred_at=now,
            )
        )
    Activity.objects.bulk_create(activities)
    return 1
