"""A customer uses the preference centre, and a privacy officer answers the erasure request, in a
real browser."""

import re

import pytest
from django.core import mail
from django.core.cache import cache

from customers.models import Customer
from privacy.links import preference_url
from privacy.models import ConsentRecord, DataSubjectRequest
from privacy.services import consent_grant, consent_state_for
from tests.conftest import DEMO_PASSWORD
from tests.customers.factories import CustomerFactory
from tests.privacy.factories import ConsentWordingFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _files_in_tmp(settings, tmp_path):
    settings.PRIVACY_ERASURE_LOG_PATH = str(tmp_path / "erasures.jsonl")
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def greta():
    customer = CustomerFactory(
        first_name="Gretavia",
        last_name="Lindqvorst",
        email="gretavia@example.com",
        phone="+46 70 111 22 33",
    )
    consent_grant(customer=customer, purpose="email_marketing", source="form")
    return customer


def sign_in(page, user):
    page.goto("/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def csp_violations(page) -> list[str]:
    return [m for m in page.console_messages if "Content Security Policy" in m or "Refused to" in m]


def test_customer_withdraws_and_asks_for_erasure_and_the_officer_completes_it(
    browser, live_server, greta, privacy_user
):
    customer_context = browser.new_context(base_url=live_server.url)
    customer_page = customer_context.new_page()
    customer_page.console_messages = []
    customer_page.on("console", lambda msg: customer_page.console_messages.append(msg.text))

    customer_page.goto(preference_url(customer_id=greta.pk))
    assert "Gretavia" in customer_page.locator(".subtitle").inner_text()
    customer_page.check("#purpose-email_marketing input[value=withdrawn]")
    customer_page.click("#save-preferences")
    customer_page.locator(".message", has_text="Your choices are saved").wait_for()
    assert consent_state_for(customer=greta)["email_marketing"] == "withdrawn"
    assert ConsentRecord.objects.filter(customer=greta, source="preference_centre").count() == 1

    customer_page.select_option("#id_type", "erasure")
    customer_page.click("#send-request")
    customer_page.locator(".message", has_text="erasure of your data").wait_for()
    dsr = DataSubjectRequest.objects.get(customer=greta)
    assert csp_violations(customer_page) == []
    customer_context.close()

    officer_context = browser.new_context(base_url=live_server.url)
    officer = officer_context.new_page()
    officer.console_messages = []
    officer.on("console", lambda msg: officer.console_messages.append(msg.text))
    sign_in(officer, privacy_user)
    officer.goto("/privacy/")
    row = officer.locator(f"tr[data-request='{dsr.pk}']")
    assert "Erasure" in row.inner_text()
    row.locator("a").first.click()
    officer.wait_for_url(f"**/privacy/requests/{dsr.pk}/")
    assert officer.locator("#id_status").input_value() == ""  # nothing destructive preselected
    officer.select_option("#id_status", "completed")
    officer.click("button:has-text('Update status')")
    officer.locator("#confirmation", has_text="Erase").wait_for()
    assert Customer.objects.get(pk=greta.pk).email == "gretavia@example.com"  # not yet
    officer.fill("#id_confirm_text", "Gretavia Lindqvorst")
    officer.click("#confirmation-submit")
    officer.locator("#dsr-status", has_text="Completed").wait_for()

    officer.goto("/customers/?q=Lindqvorst")
    listing = officer.locator("main").inner_text()
    assert "Lindqvorst" not in listing and "gretavia@example.com" not in listing
    officer.goto("/customers/")
    assert "Gretavia" not in officer.locator("main").inner_text()
    assert Customer.objects.get(pk=greta.pk).email is None
    assert csp_violations(officer) == []
    officer_context.close()


def test_a_visitor_signs_up_on_the_public_page_and_confirms_by_the_emailed_link(
    browser, live_server, settings
):
    settings.PRIVACY_DOUBLE_OPT_IN = True
    cache.clear()  # the signup limit per client address counts in the cache
    wording = ConsentWordingFactory(purpose_id="email_marketing", version="4.2")
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.console_messages = []
    page.on("console", lambda msg: page.console_messages.append(msg.text))

    page.goto("/privacy/subscribe/")
    assert "4.2" in page.locator("#signup-email_marketing").inner_text()
    assert not page.locator("#id_website").is_visible()  # the trap for bots stays hidden
    page.fill("#id_email", "vivienne.visitor@example.com")
    page.fill("#id_first_name", "Vivienne")
    page.check("#signup-email_marketing input[type=checkbox]")
    page.click("#signup-submit")
    page.locator("#signup-done", has_text="check your inbox").wait_for()
    visitor = Customer.objects.get(email="vivienne.visitor@example.com")
    assert consent_state_for(customer=visitor)["email_marketing"] == "unknown"

    link = re.search(r"https?://[^/\s]+(/\S+)", mail.outbox[-1].body).group(1)
    page.goto(link)
    page.click("#confirm")
    page.locator("#confirmed").wait_for()

    record = ConsentRecord.objects.get(customer=visitor)
    assert (record.state, record.source, record.wording_id) == ("granted", "form", wording.pk)
    assert csp_violations(page) == []
    context.close()
