"""factory-boy factories for the pipeline: deals are written through the service so that their
entry into the first stage is recorded as it would be in the product."""

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from deals.models import Activity, Pipeline
from deals.services import deal_create, pipeline_create

STAGES = (
    ("Qualified", 10, "open"),
    ("Proposal", 40, "open"),
    ("Negotiation", 70, "open"),
    ("Won", 100, "won"),
    ("Lost", 0, "lost"),
)


def pipeline_make(
    name: str = "New business", *, creates_purchases: bool = True, is_default: bool = True
) -> Pipeline:
    return pipeline_create(
        name=name, stages=STAGES, creates_purchases=creates_purchases, is_default=is_default
    )


def stage_named(pipeline: Pipeline, name: str):
    return pipeline.stages.get(name=name)


def deal_make(*, owner, account=None, customer=None, pipeline=None, stage=None, **fields):
    """A deal owned by `owner`, as `owner` would create it."""
    fields.setdefault("name", "Fleet renewal")
    fields.setdefault("amount", Decimal("1000.00"))
    fields.setdefault("expected_close_date", timezone.localdate() + dt.timedelta(days=10))
    return deal_create(
        actor=None,
        owner=owner,
        account=account,
        customer=customer,
        pipeline=pipeline,
        stage=stage,
        **fields,
    )


def activity_make(*, author, **fields) -> Activity:
    fields.setdefault("subject", "Called about the quote")
    fields.setdefault("occurred_at", timezone.now())
    return Activity.objects.create(author=author, **fields)
