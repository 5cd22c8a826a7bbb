"""A saved segment has its members without anyone clicking Refresh: saving a new rule segment, or
a changed rule, queues a refresh (trigger "edit") that runs once the save commits."""

import json

import pytest
from django.urls import reverse

from segments.models import Membership, RefreshRun, Segment
from segments.services import segment_refresh
from tests.customers.factories import CustomerFactory
from tests.segments.factories import SegmentFactory

pytestmark = pytest.mark.django_db

GERMANS = {"field": "country", "op": "eq", "value": "DE"}
FRENCH = {"field": "country", "op": "eq", "value": "FR"}


@pytest.fixture
def germans_and_a_french():
    return CustomerFactory.create_batch(2, country="DE"), CustomerFactory(country="FR")


def _members(segment: Segment) -> set[int]:
    return set(Membership.objects.filter(segment=segment).values_list("customer_id", flat=True))


def _form(name: str, rule: dict | None, kind: str = "rule") -> dict:
    return {"name": name, "kind": kind, "rule": json.dumps(rule or {}), "min_size_warning": 1}


@pytest.mark.django_db(transaction=True)  # the save commits; then the refresh runs (no broker)
def test_a_segment_saved_on_the_builder_page_has_its_members(
    client, marketing_user, germans_and_a_french
):
    germans, _ = germans_and_a_french
    client.force_login(marketing_user)

    response = client.post(reverse("segments:create"), _form("Germans", GERMANS), follow=True)

    segment = Segment.objects.get(name="Germans")
    assert _members(segment) == {c.pk for c in germans}
    assert segment.member_count == 2
    run = segment.runs.get()
    assert (run.trigger, run.status, run.joined) == (RefreshRun.Trigger.EDIT, "done", 2)
    page = response.content.decode()
    assert "Segment “Germans” saved: 2 members." in page
    assert 'id="member-count">2<' in page


def test_a_changed_rule_on_the_edit_page_changes_the_members(
    client, marketing_user, germans_and_a_french, django_capture_on_commit_callbacks
):
    _, french = germans_and_a_french
    segment = SegmentFactory(rule=GERMANS)
    segment_refresh(segment=segment)
    client.force_login(marketing_user)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("segments:edit", args=[segment.pk]), _form(segment.name, FRENCH))

    assert _members(segment) == {french.pk}
    latest = segment.runs.order_by("-id").first()
    assert (latest.trigger, latest.joined, latest.left) == (RefreshRun.Trigger.EDIT, 1, 2)


def test_renaming_a_segment_recomputes_nothing(
    client, marketing_user, germans_and_a_french, django_capture_on_commit_callbacks
):
    segment = SegmentFactory(rule=GERMANS)
    segment_refresh(segment=segment)
    client.force_login(marketing_user)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        client.post(reverse("segments:edit", args=[segment.pk]), _form("Renamed", GERMANS))

    assert callbacks == []
    assert segment.runs.count() == 1


def test_a_static_segment_is_saved_without_a_refresh(
    client, marketing_user, django_capture_on_commit_callbacks
):
    client.force_login(marketing_user)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("segments:create"), _form("By hand", None, kind="static"))

    assert not Segment.objects.get(name="By hand").runs.exists()


def test_while_a_worker_has_the_refresh_the_page_shows_its_state(
    client, marketing_user, germans_and_a_french, django_capture_on_commit_callbacks
):
    client.force_login(marketing_user)

    with django_capture_on_commit_callbacks(execute=False):  # queued; no worker has run it yet
        response = client.post(reverse("segments:create"), _form("Germans", GERMANS), follow=True)

    page = response.content.decode()
    assert "its members are being computed" in page
    assert 'id="members-pending"' in page
    assert 'data-job-state="queued"' in page
    assert Segment.objects.get(name="Germans").runs.get().status == RefreshRun.Status.QUEUED


@pytest.mark.django_db(transaction=True)
def test_a_segment_created_through_the_api_has_its_members(
    api_client_for, marketing_user, germans_and_a_french
):
    client = api_client_for(marketing_user)

    response = client.post("/api/segments/", {"name": "Germans", "rule": GERMANS}, format="json")

    assert response.status_code == 201
    assert response.data["member_count"] == 2
    run = response.data["refresh_run"]
    assert (run["trigger"], run["status"], run["size"]) == ("edit", "done", 2)
    assert client.get(run["state_url"]).data["status"] == "done"


@pytest.mark.django_db(transaction=True)
def test_a_rule_changed_through_the_api_changes_the_members(
    api_client_for, marketing_user, germans_and_a_french
):
    _, french = germans_and_a_french
    segment = SegmentFactory(rule=GERMANS)
    segment_refresh(segment=segment)
    client = api_client_for(marketing_user)

    changed = client.patch(f"/api/segments/{segment.pk}/", {"rule": FRENCH}, format="json")
    renamed = client.patch(f"/api/segments/{segment.pk}/", {"name": "French"}, format="json")

    assert _members(segment) == {french.pk}
    assert (changed.data["member_count"], changed.data["refresh_run"]["left"]) == (1, 2)
    assert renamed.data["refresh_run"] is None
