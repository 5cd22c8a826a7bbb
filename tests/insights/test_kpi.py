"""The KPI figures of a segment, of the customers outside it and of everyone, against counts
made by hand from the purchases, messages and answers seeded here."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.models import MessageEvent, Send
from customers.models import Event
from insights.kpi import METRIC_KEYS, Period, figure, kpi_counts, kpi_figures
from insights.models import SURVEY_EVENT, KpiSnapshot
from insights.services import (
    kpi_period,
    kpi_refresh_queue,
    kpi_refresh_run,
    kpi_snapshot_get,
    kpi_snapshots_refresh_nightly,
)
from segments.models import CustomerScore
from tests.campaigns.factories import CampaignFactory, members_add
from tests.customers.factories import CustomerFactory
from tests.insights.factories import day, purchase
from tests.segments.factories import StaticSegmentFactory

pytestmark = pytest.mark.django_db

PERIOD = Period(days=30, end=dt.date(2025, 6, 30))


@pytest.fixture
def shop():
    """Two loyal members (one buying twice now), one lapsed member, two outsiders."""
    segment = StaticSegmentFactory(name="Loyal")
    loyal, loyal_too, lapsed = CustomerFactory(), CustomerFactory(), CustomerFactory()
    outsider, newcomer = CustomerFactory(), CustomerFactory()
    members_add(segment, [loyal, loyal_too, lapsed])
    # previous period (30 days before) and the one before it
    purchase(loyal, day(PERIOD, -10), "50.00")
    purchase(loyal, day(PERIOD, -40), "10.00")
    purchase(lapsed, day(PERIOD, -5), "80.00")
    purchase(outsider, day(PERIOD, -20), "30.00")
    # this period
    purchase(loyal, day(PERIOD, 1), "100.00")
    purchase(loyal, day(PERIOD, 29), "60.00")
    purchase(loyal_too, day(PERIOD, 5), "40.00")
    purchase(outsider, day(PERIOD, 10), "20.00")
    purchase(newcomer, day(PERIOD, 0, hour=0), "200.00")
    # after the period: not counted
    purchase(loyal_too, day(PERIOD, 30, hour=0), "999.00")
    for customer in (loyal, loyal_too, lapsed, outsider, newcomer):
        first = customer.purchases.order_by("purchased_at").first().purchased_at
        customer.first_purchase_at = first
        customer.lifetime_value = 100
        customer.save(update_fields=["first_purchase_at", "lifetime_value"])
    return segment, (loyal, loyal_too, lapsed, outsider, newcomer)


def value(counts, population, key, which="current"):
    return figure(METRIC_KEYS[key], counts[population][which]).value


def test_purchase_figures_of_the_segment_the_rest_and_everyone(shop):
    segment, _ = shop

    counts = kpi_counts(segment_id=segment.pk, period=PERIOD)

    assert value(counts, "segment", "active_customers") == 2
    assert value(counts, "segment", "revenue") == 200.0
    assert value(counts, "segment", "average_order_value") == pytest.approx(200 / 3)
    assert value(counts, "segment", "purchase_frequency") == 1.5
    assert value(counts, "segment", "repeat_rate") == 0.5
    # last period's active members: loyal and lapsed; only loyal is still active
    assert value(counts, "segment", "retention") == 0.5
    assert value(counts, "segment", "churn") == 0.5
    assert value(counts, "segment", "revenue", "previous") == 130.0
    assert value(counts, "outside", "active_customers") == 2
    assert value(counts, "outside", "revenue") == 220.0
    assert value(counts, "outside", "new_customers") == 1
    assert value(counts, "all", "revenue") == 420.0
    assert value(counts, "all", "revenue_per_customer") == 105.0
    assert value(counts, "all", "customers") == 5
    # previous period: loyal was also active in the period before it
    assert value(counts, "segment", "retention", "previous") == 1.0


def test_without_a_segment_everyone_is_counted_once(shop):
    counts = kpi_counts(segment_id=None, period=PERIOD)

    assert value(counts, "all", "revenue") == 420.0
    assert value(counts, "segment", "customers") == 0
    assert [row["metric"].key for row in kpi_figures(counts)][0] == "customers"
    assert set(kpi_figures(counts)[0]) == {"metric", "all"}


def test_predicted_lifetime_value_when_scored_and_historical_value_until_then(shop):
    segment, (loyal, loyal_too, *_rest) = shop
    counts = kpi_counts(segment_id=segment.pk, period=PERIOD)
    historical = figure(METRIC_KEYS["predicted_value"], counts["segment"]["current"])
    assert historical.value == 100.0
    assert historical.note == "historical value (no predictions yet)"

    # The churn model's short-horizon spend (predicted_value) is not a lifetime value.
    CustomerScore.objects.create(customer=loyal, predicted_value=30, lifetime_value=300)
    CustomerScore.objects.create(customer=loyal_too, predicted_value=50, lifetime_value=500)
    counts = kpi_counts(segment_id=segment.pk, period=PERIOD)

    predicted = figure(METRIC_KEYS["predicted_value"], counts["segment"]["current"])
    assert predicted.value == 400.0
    assert predicted.note == ""


def test_customers_with_only_a_churn_model_score_show_historical_value(shop):
    segment, (loyal, *_rest) = shop
    CustomerScore.objects.create(customer=loyal, predicted_value=30)

    counts = kpi_counts(segment_id=segment.pk, period=PERIOD)

    shown = figure(METRIC_KEYS["predicted_value"], counts["segment"]["current"])
    assert shown.value == 100.0
    assert shown.note == "historical value (no predictions yet)"


def test_campaign_engagement_and_conversion_of_messages_sent_to_the_segment(shop):
    segment, (loyal, loyal_too, lapsed, outsider, _newcomer) = shop
    campaign = CampaignFactory(attribution_days=3)
    sent_at = day(PERIOD, 0, hour=6)  # loyal_too bought on day 5: too late; newcomer not sent
    sends = {
        c: Send.objects.create(campaign=campaign, customer=c, status="sent", sent_at=sent_at,
                               created_at=sent_at)
        for c in (loyal, loyal_too, lapsed, outsider)
    }  # fmt: skip
    MessageEvent.objects.create(send=sends[loyal], kind="open", at=sent_at)
    MessageEvent.objects.create(send=sends[loyal], kind="click", at=sent_at)
    MessageEvent.objects.create(send=sends[loyal_too], kind="click", at=sent_at)
    MessageEvent.objects.create(send=sends[lapsed], kind="unsubscribe", at=sent_at)

    counts = kpi_counts(segment_id=segment.pk, period=PERIOD)

    assert value(counts, "segment", "messages_sent") == 3
    assert value(counts, "segment", "open_rate") == pytest.approx(2 / 3)  # a click is an open
    assert value(counts, "segment", "click_rate") == pytest.approx(2 / 3)
    assert value(counts, "segment", "unsubscribe_rate") == pytest.approx(1 / 3)
    assert value(counts, "segment", "conversion_rate") == pytest.approx(1 / 3)  # loyal, day 1
    assert value(counts, "outside", "conversion_rate") == 0.0


def test_nps_and_csat_from_survey_answers_only_when_they_are_answers(shop):
    segment, (loyal, loyal_too, lapsed, outsider, _newcomer) = shop
    at = day(PERIOD, 3)
    for customer, kind, score in (
        (loyal, "nps", 10), (loyal_too, "nps", 3), (lapsed, "nps", 8),
        (outsider, "csat", 5), (outsider, "nps", "ten"), (outsider, "nps", 42),
    ):  # fmt: skip
        Event.objects.create(customer=customer, type=SURVEY_EVENT, occurred_at=at,
                             properties={"kind": kind, "score": score})  # fmt: skip

    counts = kpi_counts(segment_id=segment.pk, period=PERIOD)

    assert value(counts, "segment", "nps") == 0.0  # one promoter, one detractor, one passive
    assert counts["segment"]["current"]["nps_n"] == 3
    assert value(counts, "outside", "nps") is None  # "ten" and 42 are no scores
    assert value(counts, "outside", "csat") == 1.0
    june = counts["months"][-1]
    assert june["month"] == "2025-06" and june["segment"]["nps_n"] == 3


def test_the_figures_are_a_fixed_number_of_statements_whatever_the_customers(shop):
    segment, _ = shop

    with CaptureQueriesContext(connection) as few:
        kpi_counts(segment_id=segment.pk, period=PERIOD)
    for _ in range(20):
        purchase(CustomerFactory(), day(PERIOD, 2))
    with CaptureQueriesContext(connection) as more:
        kpi_counts(segment_id=segment.pk, period=PERIOD)

    def figure_statements(captured):
        return [q for q in captured if q["sql"].lstrip().startswith(("SELECT", "WITH"))]

    assert len(few) == len(more)
    assert len(figure_statements(few)) == len(figure_statements(more)) == 6


def test_monthly_series_end_with_the_periods_month(shop):
    counts = kpi_counts(segment_id=None, period=PERIOD)

    months = [m["month"] for m in counts["months"]]
    assert months[0] == "2024-07" and months[-1] == "2025-06" and len(months) == 12
    june = counts["months"][-1]["all"]
    assert june["revenue"] == 420.0
    assert counts["months"][-2]["all"]["revenue"] == 160.0  # May: 50 + 80 + 30
    assert counts["months"][-3]["all"]["revenue"] == 10.0


def test_figures_are_kept_per_period_until_recomputed(shop):
    segment, (loyal, *_rest) = shop
    kept = kpi_snapshot_get(segment=segment, period=PERIOD)
    purchase(loyal, day(PERIOD, 4), "1000.00")

    assert kpi_snapshot_get(segment=segment, period=PERIOD).pk == kept.pk
    assert value(kpi_snapshot_get(segment=segment, period=PERIOD).figures, "all", "revenue") == 420

    refresh = kpi_refresh_queue(segment=segment, period=PERIOD, actor=None)
    assert refresh.status == "queued"  # the task is queued when the transaction commits
    kpi_refresh_run(refresh=refresh)

    assert refresh.status == "done"
    assert value(kpi_snapshot_get(segment=segment, period=PERIOD).figures, "all", "revenue") == 1420


def test_the_nightly_run_keeps_every_segment_and_everyone_ready(shop):
    segment, _ = shop

    computed = kpi_snapshots_refresh_nightly(today=dt.date(2025, 7, 1))

    assert computed == 4
    assert set(KpiSnapshot.objects.values_list("segment_id", "days", "end")) == {
        (None, 30, PERIOD.end), (None, 90, PERIOD.end),
        (segment.pk, 30, PERIOD.end), (segment.pk, 90, PERIOD.end),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("days", "end", "field"),
    [
        ("31", "", "days"),
        ("x", "", "days"),
        ("30", "2025-13-01", "end"),
        ("30", "2999-01-01", "end"),
    ],
)
def test_a_period_that_is_not_one_is_refused_naming_the_field(days, end, field):
    with pytest.raises(ValidationError) as refused:
        kpi_period(days=days, end=end)

    assert field in refused.value.message_dict


def test_the_default_period_ends_with_the_last_complete_day():
    period = kpi_period(days="30", end=None)

    assert period.end == timezone.localdate() - dt.timedelta(days=1)


def test_monthly_figures_count_each_buyer_once_a_month_by_the_sites_calendar(shop, settings):
    """The months are the site's: a purchase late on the last evening of May is May's, one just
    after midnight on 1 June is June's, though both are 31 May in UTC."""
    settings.TIME_ZONE = "Europe/Berlin"
    segment, (loyal, _loyal_too, lapsed, outsider, _newcomer) = shop
    berlin = timezone.get_current_timezone()
    may_evening = dt.datetime(2025, 5, 31, 23, 30, tzinfo=berlin)
    june_morning = dt.datetime(2025, 6, 1, 0, 30, tzinfo=berlin)
    purchase(lapsed, may_evening, "7.00")
    purchase(lapsed, june_morning, "3.00")
    purchase(outsider, june_morning, "5.00")

    months = {m["month"]: m for m in kpi_counts(segment_id=segment.pk, period=PERIOD)["months"]}

    june, may = months["2025-06"], months["2025-05"]
    # June: loyal (twice), loyal_too, lapsed (after midnight); outside: outsider, newcomer
    assert june["segment"]["active"] == 3 and june["segment"]["orders"] == 4
    assert june["segment"]["revenue"] == 203.0
    assert june["outside"]["active"] == 2 and june["outside"]["revenue"] == 225.0
    # May: loyal (day -10), lapsed twice (day -5 and the last evening): two buyers, three orders
    assert may["segment"]["active"] == 2 and may["segment"]["orders"] == 3
    assert may["segment"]["revenue"] == 137.0
    assert june["all"]["active"] == 5 and may["all"]["active"] == 3
