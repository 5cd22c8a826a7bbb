import re

import pytest
from django.core import mail
from django.urls import reverse

from privacy.links import preference_token, preference_url
from privacy.models import ConsentRecord, DataSubjectRequest, PendingConsent
from privacy.services import consent_confirmation_request, consent_state_for
from privacy.suppression import suppression_add, suppression_contains
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_a_customer_withdraws_email_consent_in_the_preference_centre(client, consenting_customer):
    url = preference_url(customer_id=consenting_customer.pk)

    client.post(url, {"email_marketing": "withdrawn"})

    record = ConsentRecord.objects.filter(customer=consenting_customer).first()
    assert (record.state, record.source) == ("withdrawn", "preference_centre")
    assert consent_state_for(customer=consenting_customer)["email_marketing"] == "withdrawn"


def test_saving_unchanged_choices_writes_nothing(client, consenting_customer):
    client.post(preference_url(customer_id=consenting_customer.pk), {"email_marketing": "granted"})

    assert ConsentRecord.objects.filter(customer=consenting_customer).count() == 1


def test_unsubscribe_from_everything_withdraws_all_purposes_and_suppresses_the_address(
    client, consenting_customer
):
    client.post(
        reverse(
            "privacy:preference_unsubscribe",
            args=[preference_token(customer_id=consenting_customer.pk)],
        )
    )

    assert set(consent_state_for(customer=consenting_customer).values()) == {"withdrawn"}
    assert suppression_contains(email=consenting_customer.email)


def test_a_customer_asks_for_erasure_from_the_preference_centre(client, consenting_customer):
    token = preference_token(customer_id=consenting_customer.pk)

    client.post(reverse("privacy:preference_request", args=[token]), {"type": "erasure"})
    client.post(reverse("privacy:preference_request", args=[token]), {"type": "erasure"})

    dsr = DataSubjectRequest.objects.get()
    assert (dsr.customer, dsr.type, dsr.channel, dsr.law) == (
        consenting_customer,
        "erasure",
        "preference_centre",
        "gdpr",
    )


@pytest.mark.parametrize(
    "mangle", [lambda t: t[:-2] + "zz", lambda t: "garbage", lambda t: t.replace(":", "")]
)
def test_a_tampered_link_shows_a_clear_error_page(client, consenting_customer, mangle):
    token = mangle(preference_token(customer_id=consenting_customer.pk))

    response = client.get(reverse("privacy:preference_centre", args=[token]))

    assert response.status_code == 400
    assert b"This link is not valid" in response.content


def test_an_expired_link_says_so(client, consenting_customer, settings):
    url = preference_url(customer_id=consenting_customer.pk)
    settings.PRIVACY_PREFERENCE_LINK_MAX_AGE = -1

    response = client.get(url)

    assert response.status_code == 400
    assert b"expired" in response.content


def test_a_bad_choice_is_refused_naming_the_purpose(client, consenting_customer):
    response = client.post(
        preference_url(customer_id=consenting_customer.pk), {"profiling": "maybe"}
    )

    assert response.status_code == 400
    assert ConsentRecord.objects.filter(customer=consenting_customer).count() == 1


def test_global_privacy_control_from_an_identified_customer_opts_out_of_data_sale_once(
    client, consenting_customer
):
    url = preference_url(customer_id=consenting_customer.pk)

    client.get(url, headers={"Sec-GPC": "1"})
    client.get(url, headers={"Sec-GPC": "1"})

    records = ConsentRecord.objects.filter(customer=consenting_customer, purpose_id="data_sale")
    assert [(r.state, r.source) for r in records] == [("withdrawn", "gpc")]


def test_without_the_gpc_header_nothing_is_recorded(client, consenting_customer):
    client.get(preference_url(customer_id=consenting_customer.pk))

    assert not ConsentRecord.objects.filter(purpose_id="data_sale").exists()


def test_double_opt_in_is_not_granted_until_the_emailed_link_is_confirmed(
    client, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(email="new.subscriber@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        consent_confirmation_request(customer=customer, source="form", site_url="http://testserver")
    assert consent_state_for(customer=customer)["email_marketing"] == "unknown"
    link = re.search(r"http://testserver(\S+)", mail.outbox[0].body).group(1)

    shown = client.get(link)  # mail scanners open links: a GET must not confirm
    assert consent_state_for(customer=customer)["email_marketing"] == "unknown"
    client.post(link)
    client.post(link)

    assert shown.status_code == 200
    assert consent_state_for(customer=customer)["email_marketing"] == "granted"
    assert ConsentRecord.objects.filter(customer=customer).count() == 1
    assert PendingConsent.objects.get().confirmed_at is not None


def test_confirming_a_double_opt_in_lifts_the_suppression_of_that_address(client):
    customer = CustomerFactory(email="came.back@example.com")
    suppression_add(reason="unsubscribe", email=customer.email)
    pending = consent_confirmation_request(customer=customer, source="form")
    from privacy.links import confirmation_url

    client.post(confirmation_url(pending_id=pending.pk))

    assert not suppression_contains(email="came.back@example.com")


def test_an_erased_customers_old_link_shows_that_no_data_is_held(client, consenting_customer):
    from privacy.erasure import customer_erase

    url = preference_url(customer_id=consenting_customer.pk)
    customer_erase(customer=consenting_customer)

    response = client.get(url)

    assert response.status_code == 404
    assert b"no longer hold personal data" in response.content
