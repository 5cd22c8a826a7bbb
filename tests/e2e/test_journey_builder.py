"""A marketer builds the welcome journey of issue 20 in the browser (trigger: enters "new
customers"; send a welcome, wait a day, split on "opened", a second email or a task for the
owner; goal: first purchase), runs test mode for one customer through the "not opened" branch,
and activates the journey after the confirmation."""

import pytest
from playwright.sync_api import expect

from deals.models import Activity
from journeys.models import Enrolment, Journey
from tests.campaigns.factories import consent_grant_all
from tests.customers.factories import CustomerFactory
from tests.e2e.test_segment_builder import sign_in
from tests.segments.factories import StaticSegmentFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _add_step(page, kind: str, **fields) -> None:
    form = page.locator("#add-step")
    form.locator("#id_kind").select_option(kind)
    for name, value in fields.items():
        control = form.locator(f"#id_{name}")
        if control.evaluate("e => e.tagName") == "SELECT":
            control.select_option(label=value)
        else:
            control.fill(value)
    with page.expect_navigation():
        page.click("#add-step-button")
    expect(page.locator(".messages, .message").first).to_contain_text("Step added")


def test_marketer_builds_the_welcome_journey_tests_it_and_activates_it(
    page, marketing_user, settings, screenshot
):
    settings.JOURNEYS_TEST_WAIT_SECONDS = 600  # the test run waits until "Go on now"
    StaticSegmentFactory(name="new customers")
    tess = CustomerFactory(
        first_name="Tess", last_name="Tester", email="tess@shop.test", owner=None
    )
    consent_grant_all([tess])
    page.set_default_timeout(60000)  # a loaded machine serves the first pages slowly
    sign_in(page, marketing_user)

    page.goto("/journeys/")
    page.click("#new-journey")
    page.fill("#id_name", "Welcome")
    page.select_option("#id_trigger", "segment")
    page.select_option("#id_trigger_segment", label="new customers")
    page.select_option("#id_goal", "purchase")
    with page.expect_navigation():
        page.click("#create-journey")

    _add_step(page, "send", subject="Welcome, {{ customer.first_name }}", body="Glad you are here.")
    _add_step(page, "wait", wait_value="1", wait_unit="days")
    _add_step(page, "split", condition="Opened the previous email")
    _add_step(page, "send", subject="Still curious?", body="Here is what others liked.")
    _add_step(page, "exit")
    _add_step(page, "task", task_subject="Call the new customer")
    page.locator("#step-3").get_by_role("link", name="Edit").click()
    page.select_option("#id_yes_step", label="4. Send “Still curious?”")
    page.select_option("#id_no_step", label="6. Task for the owner: Call the new customer")
    with page.expect_navigation():
        page.click("#save-step")
    expect(page.locator("#step-3")).to_contain_text("yes → 4. Send “Still curious?”")
    expect(page.locator("#step-3")).to_contain_text("no → 6. Task for the owner")
    expect(page.locator("#step-2")).to_contain_text("Wait 1 day")
    screenshot("builder")

    # Test mode: Tess goes through now; the day's wait ends when the marketer says so.
    page.click("#to-journey")
    page.fill("#id_customer", "tess@shop.test")
    with page.expect_navigation():
        page.click("#run-test")
    history = page.locator("#history")
    expect(history).to_contain_text("Message queued")
    expect(history).to_contain_text("Welcome, {{ customer.first_name }}")
    expect(page.locator("#enrolment-state")).to_contain_text("on step 2. Wait 1 day")
    with page.expect_navigation():
        page.click("#hurry")
    expect(history).to_contain_text("Condition did not hold")
    expect(history).to_contain_text("Task created")
    expect(page.locator("#enrolment-state")).to_contain_text("Completed")
    screenshot("test-run")
    task = Activity.objects.get(customer=tess)
    assert (task.subject, task.assignee) == ("Call the new customer", marketing_user)
    assert Enrolment.objects.get(customer=tess).is_test

    # Activation asks first.
    page.get_by_role("link", name="Welcome").first.click()
    page.click("#activate")
    expect(page.locator("h1")).to_have_text("Please confirm")
    expect(page.locator("main")).to_contain_text("new customers")
    page.get_by_role("button", name="Activate the journey").click()
    expect(page.locator("#journey-status")).to_have_text("Active")
    assert Journey.objects.get(name="Welcome").status == Journey.Status.ACTIVE
    screenshot("active")
