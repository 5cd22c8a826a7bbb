"""Campaigns compared: the figures of each campaign's report, computed for all of them at once."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.models import Campaign, MessageEvent, PromotionCode, Send
from campaigns.results import campaign_report, campaigns_compared, campaigns_overview
from campaigns.services import promotion_set
from tests.campaigns.factories import (
    CampaignFactory,
    VariantFactory,
    consent_grant_all,
    members_add,
)
from tests.customers.factories import CustomerFactory, PurchaseFactory

pytestmark = pytest.mark.django_db


def _buy(send: Send, *, days: float, amount: str, code: str = "") -> None:
    PurchaseFactory(customer_id=send.customer_id, amount=Decimal(amount), promotion_code=code,
                    purchased_at=timezone.now() + dt.timedelta(days=days))  # fmt: skip


def _events(sends: list[Send]) -> None:
    now = timezone.now()
    events = []
    for i, send in enumerate(sends):
        if i % 3 == 0:
            events.append(MessageEvent(send=send, kind=MessageEvent.Kind.OPEN, at=now))
        if i % 6 == 0:  # opened twice: still one recipient who opened
            events.append(MessageEvent(send=send, kind=MessageEvent.Kind.OPEN, at=now))
        if i % 5 == 0:
            events.append(MessageEvent(send=send, kind=MessageEvent.Kind.CLICK, at=now))
        if i == 1:
            events.append(MessageEvent(send=send, kind=MessageEvent.Kind.BOUNCE, at=now))
    MessageEvent.objects.bulk_create(events)


def _launched(segment, launch, *, name: str, holdout: str, days: int, variants: int = 1,
              promotion: dict | None = None, marketer=None) -> Campaign:  # fmt: skip
    campaign = CampaignFactory(name=name, holdout_percent=Decimal(holdout), attribution_days=days)
    campaign.target_segments.add(segment)
    for i in range(variants):
        VariantFactory(campaign=campaign, name=f"{name[0]}{i}")
    if promotion is not None:
        promotion_set(campaign=campaign, actor=marketer, discount="percent", value=Decimal("10"),
                      **promotion)  # fmt: skip
    launch(campaign)
    return campaign


@pytest.fixture
def launched_campaigns(segment, launch, marketing_user):
    """Four launched campaigns to the same 80 customers: with and without holdouts, a shared
    and a personal promotion code, opens, clicks, a bounce, and purchases in and out of their
    windows, with codes before and after the promotions expire."""
    customers = CustomerFactory.create_batch(80)
    members_add(segment, customers)
    consent_grant_all(customers)
    soon = timezone.now() + dt.timedelta(days=10)
    later = timezone.now() + dt.timedelta(days=20)
    plain = _launched(segment, launch, name="Plain", holdout="20", days=7, variants=2)
    shared = _launched(segment, launch, name="Shared", holdout="30", days=3, marketer=marketing_user,
                       promotion={"code_mode": "shared", "shared_code": "SPRING10",
                                  "expires_at": soon})  # fmt: skip
    personal = _launched(segment, launch, name="Personal", holdout="25", days=14,
                         marketer=marketing_user,
                         promotion={"code_mode": "unique", "expires_at": later})  # fmt: skip
    tiny = _launched(segment, launch, name="Tiny", holdout="0", days=7)
    CampaignFactory(name="Still a draft")
    for campaign in (plain, shared, personal, tiny):
        sent = list(Send.objects.filter(campaign=campaign, status=Send.Status.SENT).order_by("pk"))
        held = list(Send.objects.filter(campaign=campaign, is_holdout=True).order_by("pk"))
        _events(sent)
        for i, send in enumerate(sent[:: 4 + campaign.attribution_days % 3]):
            _buy(send, days=1, amount=f"{20 + i}.50")
        for send in held[::5]:
            _buy(send, days=0.5, amount="35.00")
    shared_sent = Send.objects.filter(campaign=shared, status=Send.Status.SENT).order_by("-pk")
    _buy(shared_sent[0], days=5, amount="60.00", code="spring10")  # by code, after the window
    _buy(shared_sent[1], days=12, amount="70.00", code="SPRING10")  # after the promotion expired
    codes = PromotionCode.objects.filter(promotion__campaign=personal).order_by("pk")
    _buy(Send.objects.get(campaign=personal, customer=codes[0].customer), days=16,
         amount="80.00", code=codes[0].code)  # fmt: skip
    _buy(
        Send.objects.get(campaign=personal, customer=codes[1].customer),
        days=16,
        amount="90.00",
        code=codes[2].code,
    )  # someone else's code
    return [plain, shared, personal, tiny]


def _same(compared, reported, path="") -> None:
    """Equal, floats to their last few digits (the sums may be added in another order)."""
    if isinstance(reported, dict):
        assert set(compared) == set(reported), path
        for key in reported:
            _same(compared[key], reported[key], f"{path}.{key}")
    elif isinstance(reported, list):
        assert len(compared) == len(reported), path
        for i, (a, b) in enumerate(zip(compared, reported, strict=True)):
            _same(a, b, f"{path}[{i}]")
    elif isinstance(reported, float) and not isinstance(reported, bool):
        assert compared == pytest.approx(reported, rel=1e-9, abs=1e-12), path
    else:
        assert compared == reported, path


def test_compared_figures_are_those_of_each_campaigns_report(launched_campaigns):
    lines = {line["campaign"].pk: line for line in campaigns_compared(campaigns=launched_campaigns)}

    for campaign in launched_campaigns:
        report = campaign_report(campaign=campaign)
        line = lines[campaign.pk]
        _same(line["totals"], report["totals"], campaign.name)
        _same(line["holdout"], report["holdout"], campaign.name)
        _same(line["uplift"], report["uplift"], campaign.name)
    plain, shared, personal, tiny = (lines[c.pk] for c in launched_campaigns)
    for line in (plain, shared, personal):  # the data exercise every figure
        totals = line["totals"]
        assert totals["opened"] and totals["clicked"] and totals["bounced"] == 1
        assert totals["converted"] and line["holdout"]["converted"] and line["uplift"]
    assert tiny["uplift"] is None and tiny["holdout"]["audience"] == 0


def test_purchases_with_a_promotion_code_count_until_it_expires(launched_campaigns):
    _plain, shared, personal, _tiny = launched_campaigns
    # Recipients of the shared code held out of the personal campaign (whose window is longer).
    held = Send.objects.filter(campaign=personal, is_holdout=True).values("customer_id")
    sent = list(Send.objects.filter(campaign=shared, status=Send.Status.SENT,
                                    customer_id__in=held).order_by("pk"))  # fmt: skip
    codes = list(PromotionCode.objects.filter(promotion__campaign=personal).order_by("-pk")[:2])
    before = {ln["campaign"].pk: ln for ln in campaigns_compared(campaigns=launched_campaigns)}
    _buy(sent[0], days=5, amount="11.00", code="Spring10")  # after the window, code still valid
    _buy(sent[1], days=40, amount="13.00", code="SPRING10")  # the promotion has expired
    mine = Send.objects.get(campaign=personal, customer=codes[0].customer)
    theirs = Send.objects.get(campaign=personal, customer=codes[1].customer)
    _buy(mine, days=17, amount="17.00", code=codes[0].code)
    _buy(theirs, days=18, amount="19.00", code=codes[0].code)  # a code given to someone else

    after = {ln["campaign"].pk: ln for ln in campaigns_compared(campaigns=launched_campaigns)}

    def gained(campaign: Campaign) -> float:
        return after[campaign.pk]["totals"]["revenue"] - before[campaign.pk]["totals"]["revenue"]

    assert gained(shared) == pytest.approx(11.0)
    assert gained(personal) == pytest.approx(17.0)


def test_the_comparison_takes_as_many_statements_for_four_campaigns_as_for_one(
    launched_campaigns, django_assert_num_queries
):
    with CaptureQueriesContext(connection) as one:
        campaigns_compared(campaigns=launched_campaigns[:1])

    with django_assert_num_queries(len(one)):
        campaigns_compared(campaigns=launched_campaigns)

    # The figures and the events; around them a transaction (and, on PostgreSQL, the JIT off).
    assert len([q for q in one if q["sql"].startswith("SELECT")]) == 2


def test_overview_lists_launched_campaigns_latest_first(launched_campaigns):
    names = [line["campaign"].name for line in campaigns_overview()]

    assert names == ["Tiny", "Personal", "Shared", "Plain"]


def _sent_campaigns(n: int, segment) -> None:
    for _ in range(n):
        campaign = CampaignFactory(status=Campaign.Status.SENT, holdout_percent=Decimal("10"))
        campaign.target_segments.add(segment)
        variant = VariantFactory(campaign=campaign)
        customer = CustomerFactory()
        send = Send.objects.create(campaign=campaign, customer=customer, variant=variant,
                                   status=Send.Status.SENT, created_at=timezone.now(),
                                   sent_at=timezone.now())  # fmt: skip
        MessageEvent.objects.create(send=send, kind=MessageEvent.Kind.OPEN, at=timezone.now())
        PurchaseFactory(customer=customer, purchased_at=timezone.now())


def test_comparison_page_queries_do_not_grow_with_the_campaigns(
    client, marketing_user, segment, django_assert_num_queries
):
    client.force_login(marketing_user)
    _sent_campaigns(2, segment)
    with CaptureQueriesContext(connection) as few:
        client.get("/campaigns/overview/")
    _sent_campaigns(30, segment)

    with django_assert_num_queries(len(few)):
        response = client.get("/campaigns/overview/")

    assert response.content.decode().count('<tr id="compared-') == 32


def test_comparison_page_shows_the_report_figures_and_charts_them(
    client, marketing_user, launched_campaigns
):
    client.force_login(marketing_user)
    shared = launched_campaigns[1]
    report = campaign_report(campaign=shared)

    response = client.get("/campaigns/overview/")

    page = response.content.decode()
    row = page.split(f'<tr id="compared-{shared.pk}">')[1].split("</tr>")[0]
    assert f'<td class="num converted">{report["totals"]["converted"]}<span' in row
    assert f'<td class="num revenue">€{report["totals"]["revenue"]:,.2f}</td>' in row
    assert f'<td class="num holdout">{report["holdout"]["audience"]}</td>' in row
    assert 'id="conversion-chart"' in page and 'id="revenue-chart"' in page
    chart = response.context["chart"]
    assert chart["labels"] == ["Tiny", "Personal", "Shared", "Plain"]
    assert chart["conversion"][2] == round(100 * report["totals"]["conversion_rate"], 2)
    assert chart["revenue_per_recipient"][2] == report["totals"]["revenue_per_recipient"]
    assert "<script>" not in page  # the chart data is JSON, drawn by a static script (CSP)
