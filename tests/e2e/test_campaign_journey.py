"""A marketer builds a campaign step by step (audience with its live size, two variants with a
preview, a promotion, the schedule, the review), launches it, watches a real Celery worker send it
through a real SMTP server, and reads the report.

The live server runs in this process; delivery runs in a separate worker process against the same
PostgreSQL test database, mailing an SMTP server on loopback, as in production.
"""

import time

import pytest
from playwright.sync_api import expect

from campaigns.models import Campaign, Promotion, PromotionCode, Send
from tests.campaigns.factories import consent_grant_all, members_add
from tests.customers.factories import CustomerFactory
from tests.e2e.test_segment_builder import sign_in
from tests.integration.conftest import campaign_workers, smtp_sink  # noqa: F401 (fixtures)
from tests.segments.factories import StaticSegmentFactory

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def workers(request, monkeypatch):
    """Workers mailing the SMTP sink, throttled so a browser can watch the progress move."""
    monkeypatch.setenv("CAMPAIGNS_RATE_PER_SECOND", "3")
    return request.getfixturevalue("campaign_workers")


@pytest.fixture
def spring_audience():
    """30 newsletter readers: 24 consent, 3 of those complained last year, 6 never consented."""
    readers = StaticSegmentFactory(name="Newsletter readers")
    complained = StaticSegmentFactory(name="Complained last year")
    customers = [
        CustomerFactory(first_name=f"Reader{i:02d}", last_name="Spring", email=f"r{i}@shop.test")
        for i in range(30)
    ]
    members_add(readers, customers)
    consent_grant_all(customers[:24])
    members_add(complained, customers[:3])
    return {"customers": customers, "readers": readers, "complained": complained}


def _audience_line(page) -> tuple[int, int, int]:
    """(recipients, targeted, holdout) as the audience step shows them."""
    box = page.locator("#audience-estimate")
    recipients = int(box.locator("#audience-recipients").inner_text())
    targeted = int(box.locator("#audience-targeted").inner_text())
    holdout = box.locator("#audience-holdout")
    return recipients, targeted, int(holdout.inner_text()) if holdout.count() else 0


def _add_variant(page, *, name: str, subject: str, text: str) -> None:
    page.fill("#id_name", name)
    page.fill("#id_subject", subject)
    page.fill(
        "#id_html",
        '<p>Hello {{ customer.first_name }}</p><a href="https://shop.test/spring">Shop</a>',
    )
    page.fill("#id_text", text)
    page.fill("#id_share", "1")
    with page.expect_navigation():
        page.click("#add-variant")


def test_marketer_builds_previews_launches_watches_and_reads_the_report(
    page, marketing_user, spring_audience, workers, screenshot
):
    sign_in(page, marketing_user)
    worker = workers.start()  # ready long before the launch; the marketer takes a while

    # 1. Audience: the size after exclusions follows every change, before anything is saved.
    page.goto("/campaigns/")
    page.click("#new-campaign")
    page.fill("#id_name", "Spring sale")
    page.fill("#id_goal", "Bring newsletter readers back for the spring collection")
    page.get_by_label("Newsletter readers").first.check()
    expect(page.locator("#audience-recipients")).to_have_text("24")
    assert _audience_line(page) == (24, 30, 0)
    expect(page.locator("#audience-excluded")).to_contain_text("No consent for the purpose: 6")
    page.locator("#id_exclusion_segments").get_by_label("Complained last year").check()
    expect(page.locator("#audience-excluded")).to_contain_text("In an exclusion segment: 3")
    page.fill("#id_holdout_percent", "25")
    page.press("#id_holdout_percent", "Tab")
    expect(page.locator("#audience-holdout")).to_be_visible()
    recipients, targeted, holdout = _audience_line(page)
    assert (recipients + holdout, targeted) == (21, 30) and holdout > 0
    screenshot("audience")
    page.click("#save-step")
    page.wait_for_url("**/edit/message/")
    campaign = Campaign.objects.get(name="Spring sale")
    assert [s.name for s in campaign.target_segments.all()] == ["Newsletter readers"]

    # 2. Message: two variants, a template error caught on save with its line, and a preview.
    _add_variant(page, name="B-broken", subject="Hi", text="Hello\n{{ customer.password }}")
    expect(page.locator("#field-text")).to_contain_text(
        "line 2: unknown variable 'customer.password'"
    )
    _add_variant(
        page,
        name="A",
        subject="[A] Spring is here, {{ customer.first_name }}",
        text="Hi {{ customer.first_name }}, use {{ promotion.code }} for {{ promotion.discount }} off.",
    )
    _add_variant(
        page,
        name="B",
        subject="[B] {{ customer.first_name }}, your spring discount",
        text="{{ customer.first_name }}: {{ promotion.discount }} off with {{ promotion.code }}.",
    )
    expect(page.locator("#variants")).to_contain_text("A: [A] Spring is here")
    expect(page.locator("#variants")).to_contain_text("B: [B]")
    chosen = spring_audience["customers"][4]
    page.select_option("#preview-variant", label="B")
    page.select_option("#preview-customer", label=str(chosen))
    page.click("#preview-button")
    expect(page.locator("#preview-subject")).to_have_text(
        f"[B] {chosen.first_name}, your spring discount"
    )
    expect(page.locator("#preview-text")).to_contain_text(f"{chosen.first_name}: ")
    screenshot("message")
    page.click("#to-promotion")

    # 3. Promotion: 15% off, a unique code per recipient.
    page.wait_for_url("**/edit/promotion/")
    page.select_option("#id_discount", "percent")
    page.fill("#id_value", "15")
    page.select_option("#id_code_mode", "unique")
    page.click("#save-promotion")

    # 4. Schedule: send at launch; 14 days of attribution.
    page.wait_for_url("**/edit/schedule/")
    page.fill("#id_attribution_days", "14")
    page.click("#save-step")

    # 5. Review, then launch.
    page.wait_for_url("**/edit/review/")
    review = page.locator("#review")
    expect(review.locator("#audience-targeted")).to_have_text("30")
    recipients, _targeted, holdout = _audience_line(page)
    assert recipients + holdout == 21
    page.click("#launch")

    # The launch shows its summary and waits for the confirmation; nothing was sent yet.
    summary = page.locator("#confirmation-facts")
    expect(summary).to_contain_text("Audience after exclusions")
    expect(summary).to_contain_text("Variants and split")
    assert campaign.sends.count() == 0
    page.click("#confirmation-submit")

    # 6. The sending view follows the worker without a reload, until it is done.
    page.wait_for_url(f"**/campaigns/{campaign.pk}/")
    expect(page.locator("#campaign-status")).to_have_text("Sending")
    seen = set()
    deadline = time.monotonic() + 90
    while page.locator("#campaign-status").inner_text() != "Sent":
        assert time.monotonic() < deadline, f"not sent in time; worker log:\n{worker.output}"
        seen.add(int(page.locator("#progress-sent").inner_text()))
        page.wait_for_timeout(300)
    sent = Send.objects.filter(campaign=campaign, status=Send.Status.SENT)
    expect(page.locator("#progress-sent")).to_have_text(str(sent.count()))
    expect(page.locator("#progress-remaining")).to_have_text("0")
    expect(page.locator("#progress-percent")).to_have_text("100%")
    assert len(seen) >= 2, f"the progress never moved on screen: {seen}"

    # The mail server got exactly one message per recipient, each with its variant and code.
    received = workers.sink.snapshot()
    by_email = {s.customer.email: s for s in sent.select_related("customer", "variant")}
    eligible = {c.email for c in spring_audience["customers"][3:24]}
    holdout_emails = set(
        Send.objects.filter(campaign=campaign, is_holdout=True).values_list(
            "customer__email", flat=True
        )
    )
    assert sorted(rcpt[0] for rcpt, _m in received) == sorted(eligible - holdout_emails)
    assert set(by_email) == eligible - holdout_emails
    codes = dict(
        PromotionCode.objects.filter(promotion__campaign=campaign).values_list(
            "customer__email", "code"
        )
    )
    split = {"A": 0, "B": 0}
    for (rcpt,), message in received:
        send = by_email[rcpt]
        assert message["X-CRM-Variant"] == send.variant.name
        assert message["Subject"].startswith(f"[{send.variant.name}] ")
        text = message.get_payload()[0].get_payload(decode=True).decode()
        assert codes[rcpt] in text and "15% off" in text
        split[send.variant.name] += 1
    assert split["A"] > 0 and split["B"] > 0, split
    assert len(set(codes.values())) == len(codes)
    assert Promotion.objects.get(campaign=campaign).code_mode == "unique"

    # 7. The report: figures per variant and against the holdout, with both charts drawn.
    page.click("#open-report")
    page.wait_for_url(f"**/campaigns/{campaign.pk}/report/")
    report = page.locator("#report")
    expect(report.locator("tbody tr")).to_have_count(4)  # A, B, all, holdout
    expect(report.locator("#total-sent")).to_have_text(str(len(received)))
    expect(report.locator("#variant-A-sent")).to_have_text(str(split["A"]))
    expect(report.locator("#variant-B-sent")).to_have_text(str(split["B"]))
    expect(report.locator("#holdout-audience")).to_have_text(str(len(holdout_emails)))
    for chart in ("conversion-chart", "funnel-chart"):
        drawn = page.evaluate(
            "(id) => { const c = document.getElementById(id);"
            " return !!(window.Chart && window.Chart.getChart(c)) && c.width > 0; }",
            chart,
        )
        assert drawn, chart
    screenshot("report")
    csp = [m for m in page.console_messages if "Content Security Policy" in m or "Refused to" in m]
    assert csp == []
