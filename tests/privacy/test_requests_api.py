import pytest

from customers.models import Customer
from privacy.models import DataSubjectRequest
from privacy.suppression import suppression_add
from tests.customers.factories import CustomerFactory
from tests.privacy.factories import DataSubjectRequestFactory

pytestmark = pytest.mark.django_db


def test_a_privacy_officer_creates_a_request_through_the_api(api_client_for, privacy_user):
    customer = CustomerFactory()

    response = api_client_for(privacy_user).post(
        "/api/data-requests/",
        {"customer": customer.pk, "type": "erasure", "law": "gdpr", "received_on": "2025-01-31"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["deadline"] == "2025-02-28"
    assert response.json()["channel"] == "api"


def test_an_invalid_request_names_the_field(api_client_for, privacy_user):
    response = api_client_for(privacy_user).post(
        "/api/data-requests/", {"type": "forget-me"}, format="json"
    )

    assert response.status_code == 400
    assert "type" in response.json()


def test_requests_are_listed_by_deadline(api_client_for, privacy_user):
    import datetime as dt

    late = DataSubjectRequestFactory(received_on=dt.date(2025, 3, 1))
    soon = DataSubjectRequestFactory(received_on=dt.date(2025, 1, 1))

    response = api_client_for(privacy_user).get("/api/data-requests/")

    assert [r["id"] for r in response.json()["results"]] == [soon.pk, late.pk]
    assert response.json()["results"][0]["is_overdue"] is True


def test_completing_an_erasure_request_through_the_api_erases(api_client_for, privacy_user):
    dsr = DataSubjectRequestFactory()
    client = api_client_for(privacy_user)

    bad = client.post(
        f"/api/data-requests/{dsr.pk}/transition/", {"status": "rejected"}, format="json"
    )
    done = client.post(
        f"/api/data-requests/{dsr.pk}/transition/",
        {"status": "completed", "confirm": dsr.customer.email},
        format="json",
    )

    assert bad.status_code == 400 and "reason" in bad.json()
    assert done.status_code == 200 and done.json()["status"] == "completed"
    assert Customer.objects.get(pk=dsr.customer_id).email is None


def test_suppression_check_answers_yes_or_no(api_client_for, privacy_user):
    suppression_add(reason="erasure", email="gone@example.com")
    client = api_client_for(privacy_user)

    assert client.post(
        "/api/suppression-check/", {"email": "Gone@example.com"}, format="json"
    ).json() == {"suppressed": True}
    assert client.post(
        "/api/suppression-check/", {"email": "here@example.com"}, format="json"
    ).json() == {"suppressed": False}
    assert client.post("/api/suppression-check/", {}, format="json").status_code == 400


def test_an_export_is_queued_built_and_gets_a_download_link(
    api_client_for, privacy_user, django_capture_on_commit_callbacks
):
    customer = CustomerFactory()
    client = api_client_for(privacy_user)

    with django_capture_on_commit_callbacks(execute=True):
        created = client.post("/api/data-exports/", {"customer": customer.pk}, format="json")
    fetched = client.get(f"/api/data-exports/{created.json()['id']}/")

    assert created.status_code == 201
    assert fetched.json()["status"] == "done"
    assert "/privacy/exports/" in fetched.json()["download_url"]


@pytest.mark.parametrize("role_user", ["sales_user", "marketing_user"])
def test_other_roles_cannot_use_the_privacy_endpoints(api_client_for, request, role_user):
    client = api_client_for(request.getfixturevalue(role_user))
    dsr = DataSubjectRequestFactory()

    assert client.get("/api/data-requests/").status_code == 403
    assert (
        client.post(
            f"/api/data-requests/{dsr.pk}/transition/", {"status": "completed"}, format="json"
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/api/suppression-check/", {"email": "a@example.com"}, format="json"
        ).status_code
        == 403
    )
    assert client.get("/api/data-exports/").status_code == 403
    assert DataSubjectRequest.objects.get().status == "received"


def test_an_erasure_through_the_api_needs_the_customers_name_or_email(api_client_for, privacy_user):
    dsr = DataSubjectRequestFactory(customer__first_name="Ilse", customer__last_name="Brandt")
    client = api_client_for(privacy_user)

    missing = client.post(
        f"/api/data-requests/{dsr.pk}/transition/", {"status": "completed"}, format="json"
    )
    wrong = client.post(
        f"/api/data-requests/{dsr.pk}/transition/",
        {"status": "completed", "confirm": "Someone Else"},
        format="json",
    )

    assert missing.status_code == 400 and "confirm" in missing.json()
    assert wrong.status_code == 400 and "confirm" in wrong.json()
    dsr.refresh_from_db()
    assert dsr.status == "received"
    assert Customer.objects.get(pk=dsr.customer_id).first_name == "Ilse"

    done = client.post(
        f"/api/data-requests/{dsr.pk}/transition/",
        {"status": "completed", "confirm": "ilse  brandt"},
        format="json",
    )

    assert done.status_code == 200
    assert Customer.objects.get(pk=dsr.customer_id).email is None
