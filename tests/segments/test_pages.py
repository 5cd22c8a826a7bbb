import json

import pytest
from django.urls import reverse

from segments.models import Segment
from segments.services import segment_add_members, segment_refresh
from tests.customers.factories import CustomerFactory
from tests.segments.factories import SegmentFactory, StaticSegmentFactory

pytestmark = pytest.mark.django_db

RULE = {"all": [{"field": "country", "op": "eq", "value": "DE"}]}


def test_segment_list_shows_size_and_a_sparkline(
    client, marketing_user, django_assert_max_num_queries
):
    CustomerFactory(country="DE")
    segment = SegmentFactory(name="Germans", rule=RULE)
    segment_refresh(segment=segment)
    segment_refresh(segment=segment)
    SegmentFactory.create_batch(3)
    client.force_login(marketing_user)

    with django_assert_max_num_queries(12):
        response = client.get(reverse("segments:list"))

    assert response.status_code == 200
    assert b"Germans" in response.content
    assert b"<polyline" in response.content


def test_marketer_saves_a_segment_from_the_builder_form(client, marketing_user):
    client.force_login(marketing_user)

    response = client.post(
        reverse("segments:create"),
        {"name": "Germans", "kind": "rule", "rule": json.dumps(RULE), "min_size_warning": 10},
    )

    segment = Segment.objects.get(name="Germans")
    assert response.status_code == 302
    assert segment.rule == RULE


def test_builder_form_shows_rule_errors_with_their_paths(client, marketing_user):
    client.force_login(marketing_user)
    rule = {"all": [{"field": "age", "op": "gt", "value": "x"}]}

    response = client.post(
        reverse("segments:create"),
        {"name": "Bad", "kind": "rule", "rule": json.dumps(rule), "min_size_warning": 10},
    )

    assert response.status_code == 200
    assert "all[0].value: expected a whole number" in response.content.decode()


def test_segment_page_shows_members_history_and_the_small_segment_warning(client, marketing_user):
    customer = CustomerFactory(country="DE", first_name="Greta", last_name="Berg")
    segment = SegmentFactory(rule=RULE, min_size_warning=5)
    segment_refresh(segment=segment)
    client.force_login(marketing_user)

    body = client.get(reverse("segments:detail", args=[segment.pk])).content.decode()

    assert str(customer) in body
    assert "below the warning threshold of 5" in body
    assert "+1" in body


def test_segment_page_notices_protected_characteristics(client, marketing_user):
    segment = SegmentFactory(rule={"field": "gender", "op": "eq", "value": "female"})
    client.force_login(marketing_user)

    body = client.get(reverse("segments:detail", args=[segment.pk])).content.decode()

    assert "protected characteristics (gender)" in body


def test_segment_page_lists_overlapping_segments(client, marketing_user):
    customer = CustomerFactory(country="DE")
    segment = SegmentFactory(rule=RULE)
    segment_refresh(segment=segment)
    other = StaticSegmentFactory(name="Hand picked")
    segment_add_members(segment=other, customers=[customer.pk])
    client.force_login(marketing_user)

    body = client.get(reverse("segments:detail", args=[segment.pk])).content.decode()

    assert "Hand picked" in body and "1 shared" in body


def test_marketer_uploads_members_of_a_static_segment(client, marketing_user):
    from django.core.files.uploadedfile import SimpleUploadedFile

    customer = CustomerFactory(email="zoe@example.com")
    segment = StaticSegmentFactory()
    client.force_login(marketing_user)

    response = client.post(
        reverse("segments:members", args=[segment.pk]),
        {"file": SimpleUploadedFile("m.csv", b"zoe@example.com\nghost@example.com\n")},
        follow=True,
    )

    assert list(segment.memberships.values_list("customer_id", flat=True)) == [customer.pk]
    assert "line 2: ghost@example.com" in response.content.decode()


def test_a_typo_in_the_member_ids_keeps_the_list_the_marketer_typed(client, marketing_user):
    segment = StaticSegmentFactory()
    client.force_login(marketing_user)

    response = client.post(
        reverse("segments:members", args=[segment.pk]), {"customer_ids": "101, 102, 1O3"}
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert "expected whole numbers separated by commas or spaces" in html
    assert 'value="101, 102, 1O3"' in html
    assert not segment.memberships.exists()


def test_sales_can_read_segments_but_not_edit_them(client, sales_user):
    segment = SegmentFactory()
    client.force_login(sales_user)

    assert client.get(reverse("segments:detail", args=[segment.pk])).status_code == 200
    assert client.get(reverse("segments:create")).status_code == 403
    assert client.post(reverse("segments:refresh", args=[segment.pk])).status_code == 403


def test_privacy_staff_cannot_see_segments(client, privacy_user):
    client.force_login(privacy_user)

    assert client.get(reverse("segments:list")).status_code == 403


def test_customer_page_panel_lists_the_segments_with_the_date_joined(rf, marketing_user):
    from django.template.loader import render_to_string

    from customers.registry import customer_panels

    customer = CustomerFactory(country="DE")
    segment = SegmentFactory(name="Germans", rule=RULE)
    segment_refresh(segment=segment)
    panel = next(p for p in customer_panels() if p.key == "segments")
    request = rf.get("/")
    request.user = marketing_user

    html = render_to_string(panel.template, panel.context(request, customer))

    assert "Germans" in html and "since" in html


def test_timeline_shows_when_the_customer_joined_a_segment():
    from customers.registry import timeline_sources

    customer = CustomerFactory(country="DE")
    segment = SegmentFactory(name="Germans", rule=RULE)
    segment_refresh(segment=segment)

    entries = list(timeline_sources()["segments"](customer, 10))

    assert [e.title for e in entries] == ["Joined segment Germans"]
