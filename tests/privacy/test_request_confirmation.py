"""Closing a data-subject request is never one click: nothing is preselected, the officer sees
what is about to happen, and an erasure needs the customer's name or email typed."""

import pytest
from django.urls import reverse

from customers.models import Customer
from privacy.models import DataSubjectRequest
from tests.privacy.factories import DataSubjectRequestFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def erasure_request():
    return DataSubjectRequestFactory(
        customer__first_name="Ilse",
        customer__last_name="Brandt",
        customer__email="ilse@example.com",
    )


@pytest.fixture
def officer(client, privacy_user):
    client.force_login(privacy_user)
    return client


def _transition(officer, dsr, **data):
    return officer.post(reverse("privacy:request_transition", args=[dsr.pk]), data)


def test_the_move_to_choice_preselects_nothing(officer, erasure_request):
    page = officer.get(reverse("privacy:request_detail", args=[erasure_request.pk]))

    html = page.content.decode()
    assert '<option value="" selected>Choose…</option>' in html
    assert '<option value="completed" selected' not in html


def test_the_page_names_the_customer_not_a_number(officer, erasure_request):
    page = officer.get(reverse("privacy:request_detail", args=[erasure_request.pk]))

    assert "Ilse Brandt" in page.content.decode()
    assert f"Customer {erasure_request.customer_id}<" not in page.content.decode()


def test_one_click_on_completed_erases_no_one_and_asks_first(officer, erasure_request):
    response = _transition(officer, erasure_request, status="completed")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="confirmation"' in html and "Erase Ilse Brandt everywhere?" in html
    assert 'name="confirm_text"' in html
    erasure_request.refresh_from_db()
    assert erasure_request.status == "received"
    assert Customer.objects.get(pk=erasure_request.customer_id).email == "ilse@example.com"


def test_confirming_without_the_right_name_erases_no_one(officer, erasure_request):
    response = _transition(
        officer, erasure_request, status="completed", confirmed="yes", confirm_text="Ilse"
    )

    assert response.status_code == 400
    assert "does not match" in response.content.decode()
    assert DataSubjectRequest.objects.get(pk=erasure_request.pk).status == "received"
    assert Customer.objects.get(pk=erasure_request.customer_id).email == "ilse@example.com"


@pytest.mark.parametrize("typed", ["Ilse Brandt", "ILSE@example.com"])
def test_typing_the_name_or_email_completes_the_erasure(officer, erasure_request, typed):
    response = _transition(
        officer, erasure_request, status="completed", confirmed="yes", confirm_text=typed
    )

    assert response.status_code == 302
    assert DataSubjectRequest.objects.get(pk=erasure_request.pk).status == "completed"
    assert Customer.objects.get(pk=erasure_request.customer_id).email is None


def test_rejecting_with_a_reason_asks_before_closing_the_request(officer, erasure_request):
    asked = _transition(officer, erasure_request, status="rejected", reason="Identity not proven")
    assert asked.status_code == 200 and 'id="confirmation"' in asked.content.decode()
    assert DataSubjectRequest.objects.get(pk=erasure_request.pk).status == "received"

    _transition(
        officer, erasure_request, status="rejected", reason="Identity not proven", confirmed="yes"
    )

    assert DataSubjectRequest.objects.get(pk=erasure_request.pk).status == "rejected"


def test_moving_an_open_request_on_needs_no_confirmation(officer, erasure_request):
    response = _transition(officer, erasure_request, status="verifying")

    assert response.status_code == 302
    assert DataSubjectRequest.objects.get(pk=erasure_request.pk).status == "verifying"
