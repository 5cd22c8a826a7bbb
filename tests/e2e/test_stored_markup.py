"""In a real browser: markup a customer typed, or a message author wrote, acts on nothing.

The attack of a customer who signs up with the first name
`<i hx-post="/campaigns/N/cancel/" hx-trigger="load">x</i>`; a marketer previews a message for
them, and htmx in the marketer's browser cancels the campaign. Here the preview is shown in
Chromium, and the campaign must still be a draft; the HTML message must be a sandboxed frame that
runs none of its script and cannot reach the page around it.
"""

import re

import pytest
from playwright.sync_api import expect

from campaigns.models import Campaign
from tests.campaigns.factories import CampaignFactory, VariantFactory, members_add
from tests.customers.factories import CustomerFactory
from tests.e2e.test_segment_builder import sign_in
from tests.segments.factories import StaticSegmentFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Long enough for htmx to have fired a load trigger and the server to have answered it.
SETTLE_MS = 1500


def cancel_markup(campaign: Campaign) -> str:
    """The stored attack, carrying the cancel confirmation too (an attacker can write hx-vals)."""
    return (
        f'<i hx-post="/campaigns/{campaign.pk}/cancel/" hx-vals=\'{{"confirmed": "yes"}}\' '
        'hx-trigger="load">x</i>'
    )


@pytest.fixture
def campaign(marketing_user):
    readers = StaticSegmentFactory(name="Readers")
    campaign = CampaignFactory(created_by=marketing_user, name="Spring sale")
    campaign.target_segments.add(readers)
    return campaign


@pytest.fixture
def hostile_customer(campaign):
    """Signed up with the attack as their first name; in the campaign's audience."""
    customer = CustomerFactory(first_name=cancel_markup(campaign), last_name="Mallory")
    members_add(campaign.target_segments.get(), [customer])
    return customer


@pytest.fixture
def hostile_variant(campaign):
    """A message whose author put the attack, an event handler and a script in its HTML."""
    return VariantFactory(
        campaign=campaign,
        name="A",
        subject="Hello {{ customer.first_name }}",
        text="Hi {{ customer.first_name }}",
        html=(
            f"<p id='greeting'>Hi {{{{ customer.first_name }}}}</p>{cancel_markup(campaign)}"
            "<img src=x onerror=\"parent.document.body.dataset.pwned='img'\">"
            "<script>parent.document.body.dataset.pwned = 'script';</script>"
        ),
    )


def test_previewing_a_hostile_customer_with_a_hostile_message_changes_nothing(
    page, marketing_user, campaign, hostile_customer, hostile_variant, screenshot
):
    sign_in(page, marketing_user)
    page.goto(f"/campaigns/{campaign.pk}/edit/message/")
    page.select_option("#preview-customer", str(hostile_customer.pk))

    page.click("#preview-button")

    expect(page.locator("#preview-result")).to_be_visible()
    page.wait_for_timeout(SETTLE_MS)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    expect(page.locator("#preview-subject")).to_have_text(f"Hello {cancel_markup(campaign)}")
    frame = page.frame_locator("#preview-html")
    expect(frame.locator("#greeting")).to_contain_text(f"Hi {cancel_markup(campaign)}")
    assert page.evaluate("document.body.dataset.pwned") is None
    # The frame has an origin of its own: the page cannot reach into it, nor it into the page.
    assert page.evaluate("document.getElementById('preview-html').contentDocument") is None
    assert page.locator("#preview-result i, #preview-result img").count() == 0
    screenshot("desktop")

    page.click("label[for=preview-width-mobile]")

    expect(page.locator("#preview-html")).to_have_css("width", "375px")
    screenshot("phone")


def test_htmx_ignores_request_elements_the_product_did_not_write(page, marketing_user, campaign):
    """Should stored markup ever reach a page unescaped, htmx would not send its requests: only
    elements with the session's key act (crm.htmx). The same element with the key does act,
    so the browser would have sent the request."""
    other = CampaignFactory(created_by=marketing_user, name="Control")
    sign_in(page, marketing_user)
    page.goto("/campaigns/")
    inject = """([markup, key]) => {
        const box = document.createElement('div');
        box.innerHTML = markup;
        if (key) box.firstElementChild.setAttribute('data-hx-key', key);
        document.querySelector('main').append(box);
        htmx.process(box);
    }"""
    key = page.get_attribute("#global-search", "data-hx-key")
    assert re.fullmatch(r"k[0-9a-f]+", key)

    page.evaluate(inject, [cancel_markup(campaign), None])
    page.wait_for_timeout(SETTLE_MS)
    page.evaluate(inject, [cancel_markup(other), key])
    page.wait_for_timeout(SETTLE_MS)

    campaign.refresh_from_db()
    other.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    assert other.status == Campaign.Status.CANCELLED
