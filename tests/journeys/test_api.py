"""The journeys API: build, test, activate and read a journey; errors name the field."""

import pytest

from journeys.models import Enrolment
from tests.campaigns.factories import consent_grant_all
from tests.customers.factories import CustomerFactory
from tests.segments.factories import StaticSegmentFactory

pytestmark = pytest.mark.django_db


def test_a_marketer_builds_tests_and_activates_a_journey_through_the_api(
    api_client_for, marketing_user, django_capture_on_commit_callbacks
):
    client = api_client_for(marketing_user)
    segment = StaticSegmentFactory(name="new customers")
    customer = CustomerFactory()
    consent_grant_all([customer])

    journey = client.post(
        "/api/journeys/",
        {
            "name": "Welcome",
            "trigger": "segment",
            "trigger_segment": segment.pk,
            "goal": "purchase",
        },
        format="json",
    )
    assert journey.status_code == 201, journey.content
    pk = journey.json()["id"]
    for step in (
        {"kind": "send", "subject": "Welcome", "body": "Hi"},
        {"kind": "wait", "wait": "1 00:00:00"},
        {"kind": "split", "condition": "opened"},
        {"kind": "task", "task_subject": "Call them"},
    ):
        answer = client.post("/api/journey-steps/", {"journey": pk, **step}, format="json")
        assert answer.status_code == 201, answer.content
    with django_capture_on_commit_callbacks(execute=True):
        tested = client.post(f"/api/journeys/{pk}/test/", {"customer": customer.pk}, format="json")
    activated = client.post(f"/api/journeys/{pk}/activate/")

    assert tested.status_code == 201
    assert [e["kind"] for e in tested.json()["history"]][:2] == ["entered", "reached"]
    assert activated.json()["status"] == "active"
    assert [s["kind"] for s in activated.json()["steps"]] == ["send", "wait", "split", "task"]
    enrolment = client.get(f"/api/journey-enrolments/{tested.json()['id']}/").json()
    assert "sent" in [e["kind"] for e in enrolment["history"]]
    report = client.get(f"/api/journeys/{pk}/report/").json()
    assert [line["kind"] for line in report["steps"]] == ["send", "wait", "split", "task"]
    assert Enrolment.objects.get().is_test


def test_a_step_without_its_subject_is_a_400_naming_the_field(api_client_for, marketing_user):
    client = api_client_for(marketing_user)
    journey = client.post(
        "/api/journeys/", {"name": "Manual", "trigger": "manual"}, format="json"
    ).json()

    answer = client.post(
        "/api/journey-steps/", {"journey": journey["id"], "kind": "send"}, format="json"
    )

    assert answer.status_code == 400
    assert "subject" in answer.json()


def test_activating_a_journey_without_steps_is_refused(api_client_for, marketing_user):
    client = api_client_for(marketing_user)
    journey = client.post("/api/journeys/", {"name": "Empty", "trigger": "manual"}, format="json")

    answer = client.post(f"/api/journeys/{journey.json()['id']}/activate/")

    assert answer.status_code == 400
    assert "steps" in answer.json()


def test_a_segment_trigger_needs_its_segment(api_client_for, marketing_user):
    answer = api_client_for(marketing_user).post(
        "/api/journeys/", {"name": "X", "trigger": "segment"}, format="json"
    )

    assert answer.status_code == 400
    assert "trigger_segment" in answer.json()


@pytest.mark.parametrize("role", ["sales_user", "privacy_user"])
def test_only_marketing_reads_journeys(api_client_for, request, role):
    client = api_client_for(request.getfixturevalue(role))

    assert client.get("/api/journeys/").status_code == 403
    assert client.get("/api/journey-enrolments/").status_code == 403
