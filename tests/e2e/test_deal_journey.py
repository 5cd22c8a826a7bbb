"""A salesperson's deal in a real browser: open it on an account, drag it across two stages on
the board, log a call, give a colleague a follow-up (on their dashboard), win it, and watch the
forecast change."""

import re

import pytest
from django.utils import timezone

from deals.models import Deal, StageChange
from tests.conftest import DEMO_PASSWORD
from tests.customers.factories import AccountFactory
from tests.deals.factories import pipeline_make

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def sign_in(page, user):
    page.goto("/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def drag_to_column(page, card, stage_name: str) -> None:
    """Drag a card by its amount (links, selects and buttons on a card are not handles)."""
    handle = card.locator(".board-card-amount").bounding_box()
    target = page.locator(f'[data-testid="column-{stage_name}"] .board-cards').bounding_box()
    page.mouse.move(handle["x"] + 10, handle["y"] + 5)
    page.mouse.down()
    page.mouse.move(handle["x"] + 20, handle["y"] + 15, steps=5)
    page.mouse.move(target["x"] + target["width"] / 2, target["y"] + 20, steps=20)
    with page.expect_navigation():  # the move is saved, then the board reloads with new totals
        page.mouse.up()


def figure(page, testid: str) -> str:
    return page.get_by_test_id(testid).inner_text().strip()


def test_a_deal_goes_from_an_account_across_the_board_to_won_and_into_the_forecast(
    browser, live_server, page, screenshot, sales_user, other_sales_user
):
    pipeline_make()
    account = AccountFactory(owner=sales_user, name="Globex")
    today = timezone.localdate()

    sign_in(page, sales_user)
    page.goto(f"/customers/accounts/{account.pk}/")
    page.locator(".panel-deals").get_by_role("link", name="New deal").click()
    page.fill("#id_name", "Globex fleet")
    page.fill("#id_amount", "1000")
    page.fill("#id_expected_close_date", today.isoformat())
    page.click("button:has-text('Create deal')")
    page.wait_for_url(re.compile(r"/deals/\d+/$"))
    deal = Deal.objects.get(name="Globex fleet")
    assert deal.account == account and figure(page, "deal-stage") == "Qualified"

    page.goto(f"/deals/forecast/?start={today:%Y-%m}")
    assert figure(page, "forecast-weighted") == "€100.00"

    page.goto("/deals/board/")
    card = page.get_by_test_id(f"card-{deal.pk}")
    drag_to_column(page, card, "Proposal")
    assert page.locator(f'[data-testid="column-Proposal"] [data-testid="card-{deal.pk}"]').count()
    drag_to_column(page, page.get_by_test_id(f"card-{deal.pk}"), "Negotiation")
    assert page.locator(
        f'[data-testid="column-Negotiation"] [data-testid="card-{deal.pk}"]'
    ).count()
    screenshot("board")
    assert [c.to_stage.name for c in StageChange.objects.filter(deal=deal).order_by("id")] == [
        "Qualified", "Proposal", "Negotiation",
    ]  # fmt: skip

    page.goto(f"/deals/{deal.pk}/")
    page.select_option("#activity_kind", "call")
    page.fill("#activity_subject", "Walked through the terms")
    page.click(".activity-form button:has-text('Log')")
    page.get_by_test_id("deal-timeline").get_by_text("Walked through the terms").wait_for()
    page.select_option("#activity_kind", "task")
    page.fill("#activity_subject", "Send the contract")
    page.select_option("#activity_assignee", str(other_sales_user.pk))
    page.fill("#activity_due_date", today.isoformat())
    page.click(".activity-form button:has-text('Log')")
    page.get_by_text("Send the contract").first.wait_for()

    page.goto(f"/deals/forecast/?start={today:%Y-%m}")
    assert figure(page, "forecast-weighted") == "€700.00"
    assert figure(page, "forecast-won") == "€0.00"

    page.goto(f"/deals/{deal.pk}/")
    page.select_option("#id_stage", label="Won")
    page.click(".deal-move button:has-text('Move')")
    page.wait_for_url(f"**/deals/{deal.pk}/")
    assert figure(page, "deal-stage") == "Won"

    page.goto(f"/deals/forecast/?start={today:%Y-%m}")
    assert figure(page, "forecast-weighted") == "€0.00"
    assert figure(page, "forecast-won") == "€1,000.00"
    screenshot("forecast")
    assert not [m for m in page.console_messages if "Content Security Policy" in m]

    colleague = browser.new_context(base_url=live_server.url).new_page()
    sign_in(colleague, other_sales_user)
    follow_ups = colleague.get_by_test_id("dashboard-assigned-follow-ups")
    assert "Send the contract" in follow_ups.inner_text()
    colleague.context.close()
