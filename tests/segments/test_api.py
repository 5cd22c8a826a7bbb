import json

import pytest

from segments.models import RefreshRun, Segment
from segments.services import segment_refresh
from tests.customers.factories import CustomerFactory
from tests.segments.factories import SegmentFactory, StaticSegmentFactory

pytestmark = pytest.mark.django_db

RULE = {"all": [{"field": "country", "op": "eq", "value": "DE"}]}


def test_marketer_creates_a_rule_segment(api_client_for, marketing_user):
    response = api_client_for(marketing_user).post(
        "/api/segments/", {"name": "Germans", "rule": RULE}, format="json"
    )

    assert response.status_code == 201, response.data
    assert Segment.objects.get(pk=response.data["id"]).owner == marketing_user


def test_invalid_rule_is_refused_with_the_path_of_each_error(api_client_for, marketing_user):
    rule = {
        "all": [
            {"field": "country", "op": "eq", "value": "DE"},
            {"any": [{"field": "age", "op": "gt", "value": "old"}]},
        ]
    }

    response = api_client_for(marketing_user).post(
        "/api/segments/", {"name": "Bad", "rule": rule}, format="json"
    )

    assert response.status_code == 400
    assert response.data["rule"] == ["all[1].any[0].value: expected a whole number"]


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        ({"field": "city", "op": "eq", "value": "Ber\x00lin"}, "value: the text contains a NUL"),
        ({"field": "tags", "op": "in", "value": ["vip", "\x00"]}, "value[1]: the text contains"),
        ({"field": "attr.tier", "op": "eq", "value": "\ud800"}, "value: the text contains a lone"),
        (
            {"metric": "purchase_count", "filter": {"category": "a\x00"}, "op": "gt", "value": 1},
            "filter.category: the text contains a NUL",
        ),
        ({"field": "created_at", "op": "after", "value": "9999-12-31"}, "value: expected a date"),
        (
            {"metric": "purchase_total", "window": {"from": "0001-01-01"}, "op": "gt", "value": 1},
            "window.from: expected a date YYYY-MM-DD from 1000-01-01 to 9998-12-31",
        ),
    ],
)
def test_a_rule_naming_text_or_a_date_no_customer_can_have_is_refused_by_path(
    api_client_for, marketing_user, rule, error
):
    client = api_client_for(marketing_user)

    def post(url: str, body: dict):
        # As a client sends it: JSON escapes (\u0000, \ud800), which the server decodes.
        return client.post(url, json.dumps(body), content_type="application/json")

    preview = post("/api/segments/preview/", {"rule": rule})
    created = post("/api/segments/", {"name": "Odd", "rule": rule})

    assert preview.status_code == created.status_code == 400
    assert preview.data["rule"][0].startswith(error)
    assert created.data["rule"][0].startswith(error)
    assert not Segment.objects.filter(name="Odd").exists()


def test_preview_counts_and_samples_an_unsaved_rule(api_client_for, marketing_user):
    CustomerFactory.create_batch(2, country="DE")
    CustomerFactory(country="FR")

    response = api_client_for(marketing_user).post(
        "/api/segments/preview/", {"rule": RULE}, format="json"
    )

    assert response.status_code == 200
    assert response.data["count"] == 2
    assert len(response.data["sample"]) == 2


def test_preview_against_a_segment_lists_who_would_join_and_leave(api_client_for, marketing_user):
    german = CustomerFactory(country="DE")
    french = CustomerFactory(country="FR")
    segment = SegmentFactory(rule=RULE)
    segment_refresh(segment=segment)

    response = api_client_for(marketing_user).post(
        "/api/segments/preview/",
        {"rule": {"field": "country", "op": "eq", "value": "FR"}, "segment": segment.pk},
        format="json",
    )

    assert (response.data["would_join"], response.data["would_leave"]) == (1, 1)
    assert response.data["join_sample"][0]["id"] == french.pk
    assert response.data["leave_sample"][0]["id"] == german.pk


def test_preview_of_a_rule_with_age_flags_the_protected_characteristic(
    api_client_for, marketing_user
):
    response = api_client_for(marketing_user).post(
        "/api/segments/preview/",
        {"rule": {"field": "age", "op": "gte", "value": 60}},
        format="json",
    )

    assert response.data["protected_characteristics"] == ["age"]


def test_refresh_is_queued_and_its_state_can_be_followed(
    api_client_for, marketing_user, django_capture_on_commit_callbacks
):
    CustomerFactory(country="DE")
    segment = SegmentFactory(rule=RULE)
    client = api_client_for(marketing_user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/segments/{segment.pk}/refresh/")

    assert response.status_code == 202
    state = client.get(response.data["state_url"])
    assert state.data["status"] == "done"
    assert state.data["size"] == 1


def test_members_and_history_are_listed(api_client_for, marketing_user):
    customer = CustomerFactory(country="DE")
    segment = SegmentFactory(rule=RULE)
    segment_refresh(segment=segment)
    client = api_client_for(marketing_user)

    members = client.get(f"/api/segments/{segment.pk}/members/")
    history = client.get(f"/api/segments/{segment.pk}/history/")

    assert [m["id"] for m in members.data["results"]] == [customer.pk]
    assert members.data["results"][0]["since"] is not None
    assert [(r["joined"], r["left"], r["size"]) for r in history.data["results"]] == [(1, 0, 1)]


def test_sales_see_only_the_members_they_own(api_client_for, sales_user):
    mine = CustomerFactory(country="DE", owner=sales_user)
    CustomerFactory(country="DE")
    segment = SegmentFactory(rule=RULE)
    segment_refresh(segment=segment)

    response = api_client_for(sales_user).get(f"/api/segments/{segment.pk}/members/")

    assert [m["id"] for m in response.data["results"]] == [mine.pk]


def test_sales_cannot_create_or_refresh_segments(api_client_for, sales_user):
    segment = SegmentFactory(rule=RULE)
    client = api_client_for(sales_user)

    assert (
        client.post("/api/segments/", {"name": "x", "rule": RULE}, format="json").status_code == 403
    )
    assert client.post(f"/api/segments/{segment.pk}/refresh/").status_code == 403
    assert client.post("/api/segments/preview/", {"rule": RULE}, format="json").status_code == 403


def test_privacy_staff_and_strangers_see_no_segments(api_client_for, privacy_user):
    SegmentFactory()

    assert api_client_for(privacy_user).get("/api/segments/").status_code == 403
    assert api_client_for(None).get("/api/segments/").status_code in (401, 403)


def test_export_escapes_cells_that_would_run_as_formulas(api_client_for, marketing_user):
    CustomerFactory(country="DE", first_name='=HYPERLINK("http://x")')
    segment = SegmentFactory(rule=RULE)
    segment_refresh(segment=segment)

    response = api_client_for(marketing_user).get(f"/api/segments/{segment.pk}/export/")

    body = b"".join(response.streaming_content).decode()
    assert "'=HYPERLINK" in body
    assert response["Content-Type"].startswith("text/csv")


def test_static_segment_members_come_from_a_csv_with_unmatched_lines_reported(
    api_client_for, marketing_user
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    by_email = CustomerFactory(email="ann@example.com")
    by_id = CustomerFactory(external_id="X-1")
    segment = StaticSegmentFactory()
    upload = SimpleUploadedFile("m.csv", b"email\nANN@example.com\nX-1\nnobody@example.com\n")

    response = api_client_for(marketing_user).post(
        f"/api/segments/{segment.pk}/add-members/", {"file": upload}, format="multipart"
    )

    assert response.status_code == 200, response.data
    assert response.data["joined"] == 2
    assert response.data["unmatched"] == [{"line": 4, "value": "nobody@example.com"}]
    assert set(segment.memberships.values_list("customer_id", flat=True)) == {by_email.pk, by_id.pk}


def test_members_cannot_be_added_by_hand_to_a_rule_segment(api_client_for, marketing_user):
    segment = SegmentFactory(rule=RULE)
    customer = CustomerFactory()

    response = api_client_for(marketing_user).post(
        f"/api/segments/{segment.pk}/add-members/", {"customer_ids": [customer.pk]}, format="json"
    )

    assert response.status_code == 400


def test_a_segment_used_by_another_cannot_be_deleted(api_client_for, marketing_user):
    base = SegmentFactory(rule=RULE)
    SegmentFactory(name="Uses base", rule={"segment": base.pk})

    response = api_client_for(marketing_user).delete(f"/api/segments/{base.pk}/")

    assert response.status_code == 400
    assert "Uses base" in str(response.data)


def test_editing_a_rule_into_a_cycle_is_refused_naming_the_cycle(api_client_for, marketing_user):
    a = SegmentFactory(name="A", rule=RULE)
    b = SegmentFactory(name="B", rule={"segment": a.pk})

    response = api_client_for(marketing_user).patch(
        f"/api/segments/{a.pk}/", {"rule": {"segment": b.pk}}, format="json"
    )

    assert response.status_code == 400
    assert response.data["rule"] == [
        f"segment: cycle through segment membership: A (#{a.pk}) → B (#{b.pk}) → A (#{a.pk})"
    ]


def test_the_run_state_of_another_segment_is_not_found(api_client_for, marketing_user):
    a, b = SegmentFactory(), SegmentFactory()
    run = RefreshRun.objects.create(segment=a)

    assert (
        api_client_for(marketing_user).get(f"/api/segments/{b.pk}/runs/{run.pk}/").status_code
        == 404
    )
