"""In a real browser: each role's dashboard draws (charts, no CSP complaint), the sales revenue
card keeps its own height, a customer is picked by name with the keyboard, and the campaign
preview switches between desktop and phone widths and sends a test message."""

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from segments.models import RefreshRun
from tests.campaigns.factories import CampaignFactory, VariantFactory, members_add
from tests.customers.factories import CustomerFactory, NoteFactory
from tests.e2e.test_privacy_journey import csp_violations, sign_in
from tests.segments.factories import SegmentFactory, StaticSegmentFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []


def test_marketing_and_privacy_dashboards_draw_their_cards(page, marketing_user, privacy_user,
                                                           screenshot):  # fmt: skip
    segment = SegmentFactory(name="Germany", member_count=250)
    run = RefreshRun.objects.create(segment=segment, status=RefreshRun.Status.DONE, size=200)
    RefreshRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - dt.timedelta(weeks=5))
    CampaignFactory(name="Autumn letter", status="scheduled",
                    send_at=timezone.now() + dt.timedelta(days=2))  # fmt: skip

    sign_in(page, marketing_user)

    expect(page.locator("[data-testid=dashboard-segment-growth]")).to_contain_text("+25.0%")
    expect(page.locator("[data-testid=dashboard-upcoming-sends]")).to_contain_text("Autumn letter")
    assert page.locator("#segment-growth-chart").evaluate("c => c.width > 0 && !!Chart.getChart(c)")
    assert page.locator("#revenue-chart").count() == 0
    screenshot("marketing-dashboard")
    page.context.clear_cookies()
    sign_in(page, privacy_user)
    expect(page.locator("[data-testid=dashboard-privacy-deadlines]")).to_be_visible()
    expect(page.locator("[data-testid=dashboard-privacy-activity]")).to_be_visible()
    screenshot("privacy-dashboard")
    assert csp_violations(page) == []


def test_a_long_follow_up_list_does_not_stretch_the_revenue_card(page, sales_user, screenshot):
    customer = CustomerFactory(owner=sales_user)
    for i in range(12):
        NoteFactory(customer=customer, author=sales_user, body=f"Call back about offer {i}",
                    due_date=timezone.localdate() + dt.timedelta(days=i % 7))  # fmt: skip

    sign_in(page, sales_user)

    follow_ups = page.locator(
        "section.card", has=page.locator("[data-testid=dashboard-follow-ups]")
    )
    revenue = page.locator("section.revenue-card")
    assert revenue.bounding_box()["height"] < follow_ups.bounding_box()["height"] - 100
    screenshot("sales-dashboard")


def test_the_duplicate_of_a_merge_is_picked_by_name_with_the_keyboard(page, superuser):
    target = CustomerFactory(first_name="Annika", last_name="Bergvall")
    twin = CustomerFactory(first_name="Annika", last_name="Bergvall", email="annika@other.test")
    sign_in(page, superuser)
    page.goto(f"/customers/{target.pk}/merge/")

    page.locator("#id_duplicate_search").press_sequentially("bergv", delay=30)
    expect(page.locator("#id_duplicate_options [role=option]")).to_have_count(1)
    expect(page.locator("#id_duplicate_search")).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("ArrowDown")
    expect(page.locator("#id_duplicate_search")).to_have_attribute(
        "aria-activedescendant", f"id_duplicate_options-{twin.pk}"
    )
    page.keyboard.press("Enter")

    expect(page.locator("#id_duplicate")).to_have_value(str(twin.pk))
    expect(page.locator("#id_duplicate_search")).to_have_value("Annika Bergvall")
    assert csp_violations(page) == []


def test_preview_switches_widths_and_sends_a_test_to_me(page, marketing_user, screenshot):
    segment = StaticSegmentFactory(name="Readers")
    reader = CustomerFactory(first_name="Greta", last_name="Reader")
    members_add(segment, [reader])
    campaign = CampaignFactory(created_by=marketing_user)
    campaign.target_segments.add(segment)
    VariantFactory(campaign=campaign, name="A")
    sign_in(page, marketing_user)
    page.goto(f"/campaigns/{campaign.pk}/edit/message/")

    page.select_option("#preview-customer", label=str(reader))
    page.click("#preview-button")
    frame = page.locator("#preview-html")
    expect(frame).to_be_visible()
    desktop = frame.bounding_box()["width"]
    page.click("label[for=preview-width-mobile]")
    phone = frame.bounding_box()["width"]
    page.click("#test-send-button")

    expect(page.locator("#test-send-outcome")).to_contain_text(f"sent to {marketing_user.email}")
    assert (round(desktop), round(phone)) == (640, 375)
    assert [m.subject for m in mail.outbox] == ["[Test] Hello Greta"]
    screenshot("preview-phone")
    assert csp_violations(page) == []
