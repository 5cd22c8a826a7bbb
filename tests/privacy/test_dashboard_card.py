import datetime as dt

import pytest
from django.utils import timezone

from privacy.models import DataSubjectRequest, Law, RequestType
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _request(deadline: dt.date) -> DataSubjectRequest:
    return DataSubjectRequest.objects.create(
        customer=CustomerFactory(),
        type=RequestType.ACCESS,
        law=Law.GDPR,
        received_on=deadline - dt.timedelta(days=30),
        deadline=deadline,
    )


def test_privacy_officer_sees_open_and_overdue_requests_on_the_dashboard(client, privacy_user):
    today = timezone.localdate()
    _request(today - dt.timedelta(days=2))
    _request(today + dt.timedelta(days=20))
    client.force_login(privacy_user)

    response = client.get("/")

    card = response.context["cards"][0]["context"]
    assert (card["open"], card["overdue"]) == (2, 1)
    assert b'data-testid="dashboard-privacy-requests"' in response.content


def test_salesperson_does_not_see_the_privacy_card(client, sales_user):
    client.force_login(sales_user)

    response = client.get("/")

    assert b"dashboard-privacy-requests" not in response.content
