"""A marketer reads a segment's KPIs, compares it with another, opens its retention cohorts,
sends it an NPS survey, a customer answers through the link in the email, and the marketer
sees the NPS in the KPI view and the NPS class as a rule field in the builder."""

import datetime as dt
import re

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from tests.campaigns.factories import consent_grant_all, members_add
from tests.customers.factories import CustomerFactory
from tests.e2e.test_segment_builder import sign_in
from tests.insights.factories import purchase
from tests.segments.factories import StaticSegmentFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _mail_in_memory(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CAMPAIGNS_RATE_PER_SECOND = 0
    mail.outbox = []


@pytest.fixture
def two_segments(live_server, settings):
    settings.CAMPAIGNS_SITE_URL = live_server.url
    loyal, occasional = StaticSegmentFactory(name="Loyal"), StaticSegmentFactory(name="Occasional")
    fans = [CustomerFactory(email=f"fan{i}@shop.test") for i in range(3)]
    others = [CustomerFactory() for _ in range(2)]
    members_add(loyal, fans)
    members_add(occasional, others)
    consent_grant_all(fans)
    for customer in fans + others:
        at = timezone.now() - dt.timedelta(days=3)
        purchase(customer, at, "80.00")
        customer.first_purchase_at = at
        customer.save(update_fields=["first_purchase_at"])
    return loyal, occasional


def test_marketer_measures_a_segment_surveys_it_and_targets_by_the_answer(
    page, browser, marketing_user, two_segments, live_server
):
    loyal, occasional = two_segments
    sign_in(page, marketing_user)

    page.goto(f"/insights/?segment={loyal.pk}&days=30")
    expect(page.locator("h1")).to_contain_text("KPIs: Loyal")
    expect(page.locator('#kpi-table tr[data-metric="revenue"]')).to_contain_text("240.00")

    page.goto(f"/insights/compare/?segments={loyal.pk}&segments={occasional.pk}&days=30")
    expect(page.locator("#compare-table")).to_contain_text("Occasional")

    page.click("text=Retention cohorts")
    page.select_option("#id_segment", str(loyal.pk))
    page.click("#cohort-filters button[type=submit]")
    expect(page.locator("#cohort-heatmap td.heat-10").first).to_have_text("100%")

    page.click("text=Surveys")
    page.fill("#id_name", "Spring pulse")
    page.select_option("#id_segment", str(loyal.pk))
    page.click("#survey-form button[type=submit]")
    page.click("#survey-send")
    expect(page.locator(".messages")).to_contain_text("being sent")
    assert len(mail.outbox) == 3

    link = re.search(r"https?://\S+/insights/survey/[^/\s]+/", mail.outbox[0].body).group(0)
    customer = browser.new_page()
    customer.goto(link)
    customer.click(".survey-scores >> text=10")
    expect(customer.locator("#survey-thanks")).to_contain_text("(10) is recorded")
    customer.fill("#id_comment", "Fast delivery")
    customer.click("#survey-answer button[type=submit]")
    expect(customer.locator("#survey-thanks")).to_contain_text("comment")
    customer.close()

    page.goto(f"/insights/?segment={loyal.pk}&days=7&end={timezone.localdate():%Y-%m-%d}")
    page.click("#kpi-recompute")
    expect(page.locator('#kpi-table tr[data-metric="nps"] td[data-population="segment"]')
           ).to_have_text("100.0")  # fmt: skip

    page.goto("/segments/new/")
    page.click(".rule-builder .add-condition")
    options = page.locator("select.condition-field option").all_inner_texts()
    assert "NPS class" in options
