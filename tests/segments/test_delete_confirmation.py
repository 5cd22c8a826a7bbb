"""Deleting a segment is never one click: the marketer sees its size and confirms."""

import pytest

from segments.models import Segment
from tests.campaigns.factories import members_add
from tests.customers.factories import CustomerFactory
from tests.segments.factories import StaticSegmentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def readers():
    segment = StaticSegmentFactory(name="Newsletter readers")
    members_add(segment, CustomerFactory.create_batch(3))
    return segment


def test_one_click_on_delete_deletes_nothing_and_shows_what_goes(client, marketing_user, readers):
    client.force_login(marketing_user)

    response = client.post(f"/segments/{readers.pk}/delete/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Delete the segment “Newsletter readers”?" in html
    assert "<dt>Members now</dt>\n    <dd>3</dd>" in html
    assert Segment.objects.filter(pk=readers.pk).exists()


def test_confirming_deletes_the_segment(client, marketing_user, readers):
    client.force_login(marketing_user)

    response = client.post(f"/segments/{readers.pk}/delete/", {"confirmed": "yes"})

    assert response.status_code == 302
    assert not Segment.objects.filter(pk=readers.pk).exists()


def test_sales_staff_get_no_confirmation_page_either(client, sales_user, readers):
    client.force_login(sales_user)

    response = client.post(f"/segments/{readers.pk}/delete/", {"confirmed": "yes"})

    assert response.status_code == 403
    assert Segment.objects.filter(pk=readers.pk).exists()
