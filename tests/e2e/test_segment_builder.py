"""A marketer builds a nested rule in the builder, watches the live count, saves, reads the
members (filled on save) and the history, sees who would join and leave on the edit page, and
refreshes."""

import json
import re

import pytest
from playwright.sync_api import expect

from segments.models import Segment
from tests.conftest import DEMO_PASSWORD
from tests.customers.factories import CustomerFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def customers_in_three_countries():
    CustomerFactory(country="DE", city="Berlin", first_name="Greta", last_name="Berlin")
    CustomerFactory(country="DE", city="Munich", first_name="Max", last_name="Munich")
    CustomerFactory(country="FR", city="Paris", first_name="Zoé", last_name="Paris")
    CustomerFactory(country="AT", city="Wien", first_name="Anna", last_name="Wien")


def sign_in(page, user):
    page.goto("/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def test_marketer_builds_a_nested_rule_sees_the_count_saves_refreshes_and_reads_members(
    page, marketing_user, customers_in_three_countries
):
    sign_in(page, marketing_user)
    page.goto("/segments/new/")
    page.fill("#id_name", "DACH outside Munich")

    # all of: country in (DE, AT)  AND  any of: (not city = Munich)
    page.click(".rule-builder .add-condition")
    condition = page.locator(".rule-condition").first
    condition.locator("select.condition-op").select_option("in")
    condition.locator("input[aria-label=values]").fill("DE, AT")
    expect(page.locator("#live-count")).to_have_text(re.compile(r"^3 customers match"))

    page.click(".rule-builder .add-group")
    nested = page.locator(".rule-group .rule-group").first
    nested.locator("input[aria-label=not]").check()
    inner = nested.locator(".rule-condition").first
    inner.locator("select.condition-field").select_option("city")
    inner.locator("input[aria-label=value]").fill("Munich")
    expect(page.locator("#live-count")).to_have_text(re.compile(r"^2 customers match"))

    page.click("#save-segment")
    page.wait_for_url("**/segments/*/")
    segment = Segment.objects.get(name="DACH outside Munich")
    assert segment.rule == {
        "all": [
            {"field": "country", "op": "in", "value": ["DE", "AT"]},
            {"not": {"any": [{"field": "city", "op": "eq", "value": "Munich"}]}},
        ]
    }, json.dumps(segment.rule)

    # Saved, and filled without a refresh (no broker: the refresh ran once the save committed).
    assert page.locator("#member-count").inner_text() == "2"
    members = page.locator("#members").inner_text()
    assert "Greta Berlin" in members and "Anna Wien" in members and "Munich" not in members
    history = page.locator("#history").inner_text()
    assert "Rule edited" in history and "+2" in history and "Done" in history

    # The edit page compares the rule with the saved members as it changes.
    page.click("text=Edit")
    expect(page.locator("#live-count")).to_have_text(
        re.compile(r"^2 customers match · 0 would join, 0 would leave")
    )
    page.go_back()

    page.click("#refresh-segment")
    page.wait_for_url("**/segments/*/")
    assert page.locator("#member-count").inner_text() == "2"
    assert "Manual" in page.locator("#history").inner_text()
    csp = [m for m in page.console_messages if "Content Security Policy" in m or "Refused to" in m]
    assert csp == []
