"""The journey pages: a marketer builds, tests and activates a journey; others may not."""

import pytest
from django.urls import reverse

from journeys.models import Enrolment, Journey, Step
from tests.campaigns.factories import consent_grant_all
from tests.customers.factories import CustomerFactory
from tests.journeys.factories import welcome_journey
from tests.segments.factories import StaticSegmentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def new_customers():
    return StaticSegmentFactory(name="new customers")


@pytest.fixture
def draft_welcome(new_customers, marketing_user):
    return welcome_journey(segment=new_customers, actor=marketing_user)


def test_a_marketer_creates_a_journey_and_adds_steps(client, marketing_user, new_customers):
    client.force_login(marketing_user)

    answer = client.post(
        reverse("journeys:create"),
        {"name": "Welcome", "trigger": "segment", "trigger_segment": new_customers.pk,
         "reentry": "once", "reentry_days": 30, "goal": "purchase"},
    )  # fmt: skip
    journey = Journey.objects.get(name="Welcome")
    assert answer.status_code == 302
    edit = reverse("journeys:edit", args=[journey.pk])
    client.post(edit, {"form": "step", "kind": "send", "subject": "Hi", "body": "Hello"})
    client.post(edit, {"form": "step", "kind": "wait", "wait_value": 1, "wait_unit": "days"})

    steps = list(journey.steps.order_by("position").values_list("kind", "wait"))
    assert [kind for kind, _w in steps] == ["send", "wait"]
    assert steps[1][1].days == 1
    assert journey.steps.get(kind="send").campaign.variants.get().subject == "Hi"


def test_a_step_with_a_missing_field_is_refused_naming_the_field(
    client, marketing_user, draft_welcome
):
    client.force_login(marketing_user)

    answer = client.post(
        reverse("journeys:edit", args=[draft_welcome.pk]), {"form": "step", "kind": "send"}
    )

    assert answer.status_code == 400
    assert "give the email a subject" in answer.content.decode()
    assert draft_welcome.steps.count() == 6


def test_steps_move_up_and_are_removed(client, marketing_user, draft_welcome):
    client.force_login(marketing_user)
    wait = draft_welcome.steps.get(kind="wait")

    client.post(reverse("journeys:step_move", args=[wait.pk]), {"direction": "up"})
    assert list(draft_welcome.steps.order_by("position").values_list("kind", flat=True))[:2] == [
        "wait",
        "send",
    ]
    client.post(reverse("journeys:step_remove", args=[wait.pk]))
    assert not Step.objects.filter(pk=wait.pk).exists()


def test_activation_asks_first_then_activates(client, marketing_user, draft_welcome):
    client.force_login(marketing_user)
    url = reverse("journeys:activate", args=[draft_welcome.pk])

    asked = client.post(url)
    draft_welcome.refresh_from_db()
    assert asked.status_code == 200 and "Activate the journey" in asked.content.decode()
    assert draft_welcome.status == "draft"

    client.post(url, {"confirmed": "yes"})
    draft_welcome.refresh_from_db()
    assert draft_welcome.status == "active"
    client.post(reverse("journeys:pause", args=[draft_welcome.pk]), {"confirmed": "yes"})
    draft_welcome.refresh_from_db()
    assert draft_welcome.status == "paused"


def test_test_mode_runs_the_chosen_customer_and_shows_the_history(
    client, marketing_user, draft_welcome, django_capture_on_commit_callbacks
):
    client.force_login(marketing_user)
    customer = CustomerFactory(email="tess@example.org")
    consent_grant_all([customer])

    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(
            reverse("journeys:test", args=[draft_welcome.pk]), {"customer": "TESS@example.org"}
        )

    enrolment = Enrolment.objects.get(customer=customer)
    assert enrolment.is_test
    page = client.get(answer.url).content.decode()
    assert "Message queued" in page and "“Welcome”" in page
    assert 'id="message-list"' in page and "Sent</span>" in page  # delivered (locmem, eager)


def test_an_unknown_test_customer_is_named_in_the_error(client, marketing_user, draft_welcome):
    client.force_login(marketing_user)

    answer = client.post(
        reverse("journeys:test", args=[draft_welcome.pk]), {"customer": "nobody@example.org"},
        follow=True,
    )  # fmt: skip

    assert "customer: no customer with this email address or number" in answer.content.decode()
    assert not Enrolment.objects.exists()


def test_the_journey_page_shows_counts_per_step(
    client, marketing_user, draft_welcome, django_assert_max_num_queries
):
    client.force_login(marketing_user)

    with django_assert_max_num_queries(20):
        page = client.get(reverse("journeys:detail", args=[draft_welcome.pk]))

    assert page.status_code == 200
    assert 'id="journey-chart-data"' in page.content.decode()


@pytest.mark.parametrize("role", ["sales_user", "privacy_user"])
def test_only_marketing_opens_journeys(client, request, role, draft_welcome):
    client.force_login(request.getfixturevalue(role))

    assert client.get(reverse("journeys:list")).status_code == 403
    assert client.get(reverse("journeys:detail", args=[draft_welcome.pk])).status_code == 403
