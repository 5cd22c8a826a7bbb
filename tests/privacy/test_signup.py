"""The public signup page and API: consent from a form, double opt-in, suppression, abuse limits."""

import datetime as dt
import re

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from customers.models import Customer
from privacy.erasure import customer_erase
from privacy.models import ConsentRecord, PendingConsent
from privacy.selectors import customers_eligible_for
from privacy.services import consent_grant, consent_state_for, consent_unsubscribe_all
from privacy.suppression import suppression_contains
from tests.customers.factories import CustomerFactory
from tests.privacy.factories import ConsentWordingFactory

pytestmark = pytest.mark.django_db

SIGNUP = "/privacy/subscribe/"
API = "/api/signups/"


@pytest.fixture(autouse=True)
def _fresh_limits():
    """The limits count in the cache; each test starts with none used."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def email_wording():
    return ConsentWordingFactory(
        purpose_id="email_marketing", version="2.1", text="Send me the monthly newsletter."
    )


@pytest.fixture
def without_double_opt_in(settings):
    settings.PRIVACY_DOUBLE_OPT_IN = False


def sign_up(client, email, *purposes, **extra):
    data = {"email": email, "purposes": list(purposes or ["email_marketing"]), **extra}
    return client.post(SIGNUP, data)


def confirmation_links() -> list[str]:
    return [m.group(1) for m in re.finditer(r"http://testserver(\S+)", mail.outbox[-1].body)]


def test_the_signup_page_needs_no_login_and_shows_the_current_wording_version(
    client, email_wording
):
    ConsentWordingFactory(
        purpose_id="email_marketing",
        version="1.0",
        text="Old text.",
        effective_from=timezone.localdate() - dt.timedelta(days=90),
    )
    ConsentWordingFactory(
        purpose_id="email_marketing",
        version="3.0",
        text="Not yet in force.",
        effective_from=timezone.localdate() + dt.timedelta(days=7),
    )

    page = client.get(SIGNUP)

    html = page.content.decode()
    assert page.status_code == 200
    assert "Send me the monthly newsletter." in html
    assert "Old text." not in html and "Not yet in force." not in html
    assert 'class="wording-version">2.1<' in html
    assert f'name="wording_email_marketing" value="{email_wording.pk}"' in html
    assert "Profiling" in html


def test_a_signup_without_the_csrf_token_is_refused():
    response = Client(enforce_csrf_checks=True).post(
        SIGNUP, {"email": "a@example.com", "purposes": ["email_marketing"]}
    )

    assert response.status_code == 403
    assert not Customer.objects.exists()


def test_a_new_address_is_created_and_granted_only_after_the_emailed_link_is_confirmed(
    client, email_wording, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = sign_up(
            client,
            "New.Reader@Example.com",
            "email_marketing",
            "profiling",
            first_name="Nora",
            wording_email_marketing=email_wording.pk,
        )

    assert response.status_code == 302 and response.url == reverse("privacy:signup_done")
    customer = Customer.objects.get(email="New.Reader@example.com")  # the domain lower-cased
    assert (customer.first_name, customer.source) == ("Nora", "signup_form")
    assert consent_state_for(customer=customer)["email_marketing"] == "unknown"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["New.Reader@example.com"]
    links = confirmation_links()
    assert len(links) == 2  # one per purpose, in one email

    client.post(links[0])

    record = ConsentRecord.objects.get(customer=customer)
    assert (record.purpose_id, record.state, record.source) == (
        "email_marketing",
        "granted",
        "form",
    )
    assert record.wording == email_wording
    assert customers_eligible_for("email_marketing").filter(pk=customer.pk).exists()
    assert consent_state_for(customer=customer)["profiling"] == "unknown"


def test_without_double_opt_in_the_grant_is_recorded_at_once_with_its_evidence(
    client, email_wording, without_double_opt_in
):
    client.post(
        SIGNUP,
        {"email": "quick@example.com", "purposes": ["email_marketing"]},
        REMOTE_ADDR="198.51.100.7",
    )

    record = ConsentRecord.objects.get(customer__email="quick@example.com")
    assert (record.state, record.source, record.wording) == ("granted", "form", email_wording)
    assert str(record.ip_address) == "198.51.100.7"
    assert record.evidence == "Public signup form"
    assert mail.outbox == []


def test_the_answer_is_the_same_for_a_known_and_an_unknown_address(client):
    known = CustomerFactory(email="known@example.com", first_name="Karla", last_name="Known")

    for_known = sign_up(client, "KNOWN@example.com", first_name="Mallory", last_name="Changed")
    for_unknown = sign_up(client, "unknown@example.com", first_name="Mallory")

    assert (for_known.status_code, for_known.url) == (for_unknown.status_code, for_unknown.url)
    done = client.get(for_known.url).content.decode()
    assert "known@example.com" not in done.lower()
    known.refresh_from_db()
    assert (known.first_name, known.last_name) == ("Karla", "Known")  # never changed by a stranger
    assert Customer.objects.filter(email__iexact="known@example.com").count() == 1


def test_an_erased_address_signing_up_again_is_not_a_target_until_it_confirms(
    client, without_double_opt_in, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(email="gone@example.com")
    customer_erase(customer=customer)

    with django_capture_on_commit_callbacks(execute=True):
        response = sign_up(client, "gone@example.com")

    returning = Customer.objects.get(email="gone@example.com")
    assert response.status_code == 302
    assert not customers_eligible_for("email_marketing").filter(pk=returning.pk).exists()
    assert consent_state_for(customer=returning)["email_marketing"] == "unknown"
    assert len(mail.outbox) == 1  # confirmation is required whatever the setting

    client.post(confirmation_links()[0])

    assert not suppression_contains(email="gone@example.com")
    assert customers_eligible_for("email_marketing").filter(pk=returning.pk).exists()


def test_an_unsubscribed_customer_who_signs_up_again_must_confirm(
    client, without_double_opt_in, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(email="left@example.com")
    consent_grant(customer=customer, purpose="email_marketing", source="staff")
    consent_unsubscribe_all(customer=customer)

    with django_capture_on_commit_callbacks(execute=True):
        sign_up(client, "left@example.com")

    assert consent_state_for(customer=customer)["email_marketing"] == "withdrawn"
    assert PendingConsent.objects.filter(customer=customer, record__isnull=True).count() == 1
    assert suppression_contains(email="left@example.com")


def test_signups_from_one_address_are_limited_per_hour(client, settings):
    settings.PRIVACY_SIGNUP_LIMIT_PER_HOUR = 2
    sign_up(client, "one@example.com")
    sign_up(client, "two@example.com")

    third = sign_up(client, "three@example.com")

    assert third.status_code == 429
    assert "Too many sign-ups" in third.content.decode()
    assert not Customer.objects.filter(email="three@example.com").exists()


def test_the_form_cannot_flood_an_inbox_with_confirmation_emails(
    client, settings, django_capture_on_commit_callbacks
):
    settings.PRIVACY_SIGNUP_EMAILS_PER_DAY = 2
    with django_capture_on_commit_callbacks(execute=True):
        responses = [sign_up(client, "victim@example.com") for _ in range(4)]

    assert {r.status_code for r in responses} == {302}
    assert len(mail.outbox) == 2


def test_bad_input_is_shown_on_the_field_that_holds_it(client, email_wording):
    other = ConsentWordingFactory(purpose_id="profiling", version="9")

    no_email = client.post(SIGNUP, {"email": "not-an-email", "purposes": ["email_marketing"]})
    no_purpose = client.post(SIGNUP, {"email": "a@example.com"})
    foreign_wording = sign_up(client, "a@example.com", wording_email_marketing=other.pk)

    assert no_email.status_code == 400
    assert "Enter a valid email address." in no_email.content.decode()
    assert "Choose at least one thing to sign up for." in no_purpose.content.decode()
    assert foreign_wording.status_code == 400
    assert "wording_email_marketing: This is not a wording version of Email marketing." in (
        foreign_wording.content.decode()
    )
    assert not Customer.objects.exists()


def test_a_bot_filling_the_hidden_field_is_answered_but_nothing_is_recorded(client):
    response = sign_up(client, "bot@example.com", website="http://spam.example")

    assert response.status_code == 302
    assert not Customer.objects.exists()


def test_the_gpc_signal_on_a_signup_records_the_data_sale_opt_out(client):
    client.post(
        SIGNUP,
        {"email": "gpc@example.com", "purposes": ["email_marketing"]},
        headers={"Sec-GPC": "1"},
    )

    customer = Customer.objects.get(email="gpc@example.com")
    assert consent_state_for(customer=customer)["data_sale"] == "withdrawn"


def test_the_api_signs_up_without_a_login_and_answers_the_same_for_a_known_address(
    email_wording, django_capture_on_commit_callbacks
):
    CustomerFactory(email="known@example.com")
    api = APIClient()

    with django_capture_on_commit_callbacks(execute=True):
        new = api.post(API, {"email": "api@example.com", "purposes": ["email_marketing"]}, "json")
        known = api.post(
            API, {"email": "known@example.com", "purposes": ["email_marketing"]}, "json"
        )

    assert new.status_code == known.status_code == 202
    assert new.json() == known.json()
    assert PendingConsent.objects.filter(customer__email="api@example.com").get().wording == (
        email_wording
    )
    assert len(mail.outbox) == 2


def test_the_api_names_the_wrong_field_and_limits_submissions(settings):
    settings.PRIVACY_SIGNUP_LIMIT_PER_HOUR = 1
    api = APIClient()

    wrong = api.post(API, {"email": "a@example.com", "purposes": ["data_sale"]}, "json")
    limited = api.post(API, {"email": "a@example.com", "purposes": ["email_marketing"]}, "json")

    assert wrong.status_code == 400 and "purposes" in wrong.json()
    assert limited.status_code == 429
