"""A marketer creates an ML segment, trains it, sees the clusters with their names, and uses one
cluster in a rule segment."""

import re

import pytest
from playwright.sync_api import expect

from segments.ml.models import MLSegment
from tests.conftest import DEMO_PASSWORD
from tests.customers.factories import CustomerFactory
from tests.segments.ml.conftest import buy

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shoppers_in_three_groups():
    """Recent big frequent spenders, occasional mid spenders, long-gone small spenders."""
    for recency, count, amount in [(5, 8, 500), (120, 3, 60), (500, 1, 5)]:
        for k, customer in enumerate(CustomerFactory.create_batch(12)):
            for j in range(count):
                buy(customer, days_ago=recency + j * 3 + k * 0.5, amount=str(amount + k))


def sign_in(page, user):
    page.goto("/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def test_marketer_trains_an_ml_segment_and_targets_one_cluster_in_a_rule(
    page, marketing_user, shoppers_in_three_groups
):
    sign_in(page, marketing_user)
    page.goto("/segments/ml/new/")
    page.fill("#id_name", "Shoppers")
    page.fill("#id_k", "3")
    page.click("#create-and-train")
    page.wait_for_url(re.compile(r".*/segments/ml/\d+/$"))
    if page.locator("#ml-job").count():  # a worker trains it: the page polls until done
        expect(page.locator("#clusters")).to_be_visible(timeout=60000)

    rows = page.locator("#clusters tbody tr")
    expect(rows).to_have_count(3)
    ml_segment = MLSegment.objects.get(name="Shoppers")
    clusters = list(ml_segment.clusters.order_by("-profile__z__monetary"))
    for cluster in clusters:
        expect(page.locator("#clusters")).to_contain_text(cluster.name)
    assert re.search(r"high spend|bought recently|frequent", clusters[0].name.lower())
    expect(page.locator("#ml-profiles canvas")).to_have_count(3)

    page.goto("/segments/new/")
    page.fill("#id_name", "Best cluster")
    page.click(".rule-builder .add-condition")
    condition = page.locator(".rule-condition").first
    condition.locator("select.condition-kind").select_option("segment")
    condition.locator("select[aria-label=segment]").select_option(str(clusters[0].segment_id))
    expect(page.locator("#live-count")).to_have_text(re.compile(r"^12 customers match"))
    page.click("#save-segment")
    page.wait_for_url("**/segments/*/")
    page.click("#refresh-segment")
    page.wait_for_url("**/segments/*/")
    assert page.locator("#member-count").inner_text() == "12"
    csp = [m for m in page.console_messages if "Content Security Policy" in m or "Refused to" in m]
    assert csp == []
