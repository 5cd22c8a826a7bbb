"""The report: attribution within the window, per variant, and the uplift over the holdout with
its confidence interval."""

import datetime as dt
import math
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns.models import Send
from campaigns.results import campaign_report
from customers.models import Purchase
from tests.campaigns.factories import (
    CampaignFactory,
    VariantFactory,
    consent_grant_all,
    members_add,
)
from tests.customers.factories import CustomerFactory, PurchaseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent_with_holdout(segment, marketing_user, launch):
    """400 consenting customers, two variants, a quarter held out; everyone delivered."""
    customers = CustomerFactory.create_batch(400)
    members_add(segment, customers)
    consent_grant_all(customers)
    campaign = CampaignFactory(holdout_percent=Decimal("25"), attribution_days=7)
    campaign.target_segments.add(segment)
    VariantFactory(campaign=campaign, name="A")
    VariantFactory(campaign=campaign, name="B")
    launch(campaign)
    return campaign


def _buy(customer_id: int, *, days: float, amount: str) -> Purchase:
    return PurchaseFactory(customer_id=customer_id, amount=Decimal(amount),
                           purchased_at=timezone.now() + dt.timedelta(days=days))  # fmt: skip


def _wald(p1: float, n1: int, p0: float, n0: int) -> tuple[float, float]:
    se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    return (p1 - p0 - 1.959964 * se, p1 - p0 + 1.959964 * se)


def test_only_purchases_within_the_window_after_the_send_count(sent_with_holdout):
    send = Send.objects.filter(campaign=sent_with_holdout, status=Send.Status.SENT).first()
    _buy(send.customer_id, days=-1, amount="500.00")  # before the message
    _buy(send.customer_id, days=3, amount="40.00")  # within seven days
    _buy(send.customer_id, days=8, amount="900.00")  # after the window

    report = campaign_report(campaign=sent_with_holdout)

    assert report["totals"]["converted"] == 1
    assert report["totals"]["orders"] == 1
    assert report["totals"]["revenue"] == 40.0


def test_each_variant_is_credited_with_its_own_recipients_purchases(sent_with_holdout):
    sends = list(Send.objects.filter(campaign=sent_with_holdout, status=Send.Status.SENT)
                 .select_related("variant"))  # fmt: skip
    a = [s for s in sends if s.variant.name == "A"]
    b = [s for s in sends if s.variant.name == "B"]
    for send in a[:6]:
        _buy(send.customer_id, days=1, amount="10.00")
    for send in b[:3]:
        _buy(send.customer_id, days=1, amount="30.00")

    lines = {v["variant"]: v for v in campaign_report(campaign=sent_with_holdout)["variants"]}

    assert (lines["A"]["audience"], lines["B"]["audience"]) == (len(a), len(b))
    assert (lines["A"]["converted"], lines["A"]["revenue"]) == (6, 60.0)
    assert (lines["B"]["converted"], lines["B"]["revenue"]) == (3, 90.0)
    assert lines["A"]["conversion_rate"] == pytest.approx(6 / len(a))
    assert lines["B"]["revenue_per_recipient"] == pytest.approx(90 / len(b), abs=1e-4)


def test_uplift_over_the_holdout_comes_with_a_95_percent_interval(sent_with_holdout):
    sends = Send.objects.filter(campaign=sent_with_holdout).exclude(status=Send.Status.EXCLUDED)
    treated = [s for s in sends if not s.is_holdout]
    holdout = [s for s in sends if s.is_holdout]
    assert len(holdout) > 50
    for send in treated[::4]:  # a quarter of the recipients buy
        _buy(send.customer_id, days=2, amount="100.00")
    for send in holdout[::10]:  # a tenth of the holdout buys anyway
        _buy(send.customer_id, days=2, amount="100.00")
    p1 = len(treated[::4]) / len(treated)
    p0 = len(holdout[::10]) / len(holdout)

    report = campaign_report(campaign=sent_with_holdout)

    uplift = report["uplift"]
    assert report["holdout"]["audience"] == len(holdout)
    assert report["holdout"]["converted"] == len(holdout[::10])
    assert uplift["conversion_uplift"] == pytest.approx(p1 - p0)
    assert uplift["conversion_uplift_ci"] == pytest.approx(list(_wald(p1, len(treated), p0,
                                                                      len(holdout))))  # fmt: skip
    assert uplift["revenue_uplift_per_recipient"] == pytest.approx(100 * (p1 - p0))
    low, high = uplift["revenue_uplift_per_recipient_ci"]
    assert low < 100 * (p1 - p0) < high
    assert uplift["significant"] is True
    assert uplift["incremental_revenue"] == pytest.approx(100 * (p1 - p0) * len(treated))


def test_no_difference_gives_an_interval_around_zero(sent_with_holdout):
    sends = Send.objects.filter(campaign=sent_with_holdout).exclude(status=Send.Status.EXCLUDED)
    treated = [s for s in sends if not s.is_holdout]
    holdout = [s for s in sends if s.is_holdout]
    for send in treated[::5] + holdout[::5]:  # a fifth of each group buys
        _buy(send.customer_id, days=1, amount="20.00")

    uplift = campaign_report(campaign=sent_with_holdout)["uplift"]

    low, high = uplift["conversion_uplift_ci"]
    assert abs(uplift["conversion_uplift"]) < 0.02
    assert low < 0 < high
    assert uplift["significant"] is False


def test_report_page_shows_the_figures_and_the_chart_data(
    client, marketing_user, sent_with_holdout
):
    send = Send.objects.filter(campaign=sent_with_holdout, status=Send.Status.SENT).first()
    _buy(send.customer_id, days=1, amount="77.00")
    client.force_login(marketing_user)

    response = client.get(f"/campaigns/{sent_with_holdout.pk}/report/")

    page = response.content.decode()
    assert response.status_code == 200
    assert '<td class="num" id="total-revenue">€77.00</td>' in page
    assert '<td class="num" id="total-converted">1</td>' in page
    assert 'id="conversion-chart"' in page and 'id="campaign-chart-data"' in page
    assert response.context["chart"]["labels"] == ["A", "B", "Holdout"]
    assert "95% CI" in page
