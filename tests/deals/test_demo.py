import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db.models import Count

from deals.models import Activity, Deal, Stage, StageChange

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed(**options) -> None:
    call_command("seed_demo", customers=150, seed=7, today=dt.date(2026, 3, 15), verbosity=0,
                 stdout=io.StringIO(), **options)  # fmt: skip


def deals_seen() -> list[tuple]:
    return sorted(Deal.objects.values_list("name", "stage__name", "amount", "owner__username"))


def test_the_demo_has_deals_in_every_stage_with_their_history_and_activities():
    seed()

    empty_stages = Stage.objects.annotate(n=Count("deals")).filter(n=0)
    assert Deal.objects.count() > 20
    assert not empty_stages.exists(), list(empty_stages.values_list("name", flat=True))
    for deal in Deal.objects.all():
        walk = list(StageChange.objects.filter(deal=deal).order_by("changed_at", "id"))
        assert walk[0].from_stage is None and walk[-1].to_stage == deal.stage
        assert all(a.to_stage == b.from_stage for a, b in zip(walk, walk[1:], strict=False))
    assert Activity.objects.filter(deal__isnull=False, kind="call").exists()
    assert set(
        Activity.objects.filter(done=False, due_date__isnull=False).values_list(
            "assignee__username", flat=True
        )
    ) == {"sales", "sales2"}


def test_seeding_afresh_gives_the_same_deals():
    seed()
    before = deals_seen()

    seed(replace=True)

    assert deals_seen() == before
