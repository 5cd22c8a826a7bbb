"""A salesperson's day in a real browser: sign in, find a customer, log a note and a follow-up,
fix a typo in the profile."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from customers.models import Customer, Note
from customers.services import customer_stats_refresh
from tests.conftest import DEMO_PASSWORD
from tests.customers.factories import AccountFactory, CustomerFactory, PurchaseFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ingrid(sales_user):
    account = AccountFactory(owner=sales_user, name="Bergström Interiors")
    customer = CustomerFactory(
        owner=sales_user,
        account=account,
        first_name="Ingrid",
        last_name="Bergström",
        email="ingrid@example.com",
        phone="+46 8 123 456",
        country="SE",
        city="Stockholm",
    )
    for days, amount in ((5, "240.00"), (60, "99.90"), (200, "410.00")):
        PurchaseFactory(
            customer=customer,
            amount=Decimal(amount),
            purchased_at=timezone.now() - dt.timedelta(days=days),
        )
    for i in range(12):
        CustomerFactory(owner=sales_user, last_name=f"Neighbour{i:02d}", country="SE")
    customer_stats_refresh()
    return customer


def sign_in(page, user):
    page.goto("/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def csp_violations(page) -> list[str]:
    return [m for m in page.console_messages if "Content Security Policy" in m or "Refused to" in m]


def test_salesperson_finds_a_customer_logs_a_note_and_a_follow_up_and_fixes_the_email(
    page, screenshot, sales_user, ingrid
):
    sign_in(page, sales_user)
    assert page.locator("h1").first.inner_text().startswith("Good day")
    screenshot("1-dashboard")

    page.fill("#global-search", "Bergs")
    result = page.locator("#global-search-results a", has_text="Ingrid Bergström")
    result.wait_for()
    screenshot("2-search")
    result.click()
    page.wait_for_url(f"**/customers/{ingrid.pk}/")
    assert page.get_by_test_id("customer-name").inner_text() == "Ingrid Bergström"

    page.fill("#id_body", "Discussed the spring order; wants oak finishes.")
    page.select_option("#id_kind", "call")
    page.click("#notes button:has-text('Add')")
    page.get_by_test_id("notes").get_by_text("Discussed the spring order").wait_for()

    page.fill("#id_body", "Send the quote for the oak tables.")
    page.select_option("#id_kind", "task")
    page.fill("#id_due_date", (timezone.localdate() + dt.timedelta(days=3)).isoformat())
    page.click("#notes button:has-text('Add')")
    page.get_by_test_id("follow-ups").get_by_text("Send the quote for the oak tables.").wait_for()
    screenshot("3-notes")
    assert Note.objects.filter(customer=ingrid, due_date__isnull=False).count() == 1

    page.click("a:has-text('Edit')")
    page.fill("#id_email", "ingrid-at-example.com")
    page.click("button:has-text('Save changes')")
    error = page.locator("#id_email_error")
    error.wait_for()
    assert "valid email" in error.inner_text()
    screenshot("4-invalid-email")

    page.fill("#id_email", "ingrid.bergstrom@example.com")
    page.click("button:has-text('Save changes')")
    page.wait_for_url(f"**/customers/{ingrid.pk}/")
    page.get_by_text("Changes saved.").wait_for()
    assert "ingrid.bergstrom@example.com" in page.locator("dl.props").inner_text()
    screenshot("5-saved")

    assert Customer.objects.get(pk=ingrid.pk).email == "ingrid.bergstrom@example.com"
    assert csp_violations(page) == []


@pytest.mark.parametrize("width,height,label", [(1366, 900, "laptop"), (390, 844, "phone")])
def test_main_pages_render_at_laptop_and_phone_width(
    page, screenshot, sales_user, ingrid, width, height, label
):
    page.set_viewport_size({"width": width, "height": height})
    sign_in(page, sales_user)
    page.wait_for_function(
        "document.querySelector('#revenue-chart') && document.querySelector('#revenue-chart').width > 0"
    )
    screenshot(f"dashboard-{label}")

    page.goto("/customers/?sort=-lifetime_value")
    assert page.locator("table.data tbody tr").count() == 13
    screenshot(f"customer-list-{label}")

    page.goto(f"/customers/{ingrid.pk}/")
    screenshot(f"customer-{label}")

    if label == "phone":
        assert not page.locator("#mainnav").is_visible()
        page.click("[data-nav-toggle]")
        assert page.locator("#mainnav").is_visible()
        screenshot(f"menu-{label}")
    # Nothing wider than the window: no sideways scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
    assert csp_violations(page) == []
