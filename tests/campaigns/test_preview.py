"""The message preview: its customer picker searches the campaign's audience a page at a time,
and no customer outside the audience can be previewed, whatever id is sent."""

import pytest

from tests.campaigns.factories import members_add
from tests.customers.factories import CustomerFactory
from tests.segments.factories import StaticSegmentFactory

pytestmark = pytest.mark.django_db

PICKER = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "preview-customer-picker"}


@pytest.fixture
def large_audience(segment):
    """45 members of the target segment, named Member00 Aalto to Member44 Aalto, and Zoe Zimmer,
    who sorts last."""
    members = [
        CustomerFactory(first_name=f"Member{i:02d}", last_name="Aalto", email=f"m{i}@shop.test")
        for i in range(45)
    ]
    zoe = CustomerFactory(first_name="Zoe", last_name="Zimmer", email="zoe@shop.test")
    members_add(segment, [*members, zoe])
    return {"members": members, "zoe": zoe}


@pytest.fixture
def outsider():
    """A customer the marketer may see who is in no target segment of the campaign."""
    customer = CustomerFactory(first_name="Zack", last_name="Zimmer", email="zack@shop.test")
    members_add(StaticSegmentFactory(name="Somewhere else"), [customer])
    return customer


def _offered(response) -> list[str]:
    return [c.full_name for c in response.context["preview_page"].rows]


def test_picker_starts_with_a_page_of_the_audience(client, marketing_user, campaign,
                                                  large_audience, outsider):  # fmt: skip
    client.force_login(marketing_user)

    response = client.get(f"/campaigns/{campaign.pk}/edit/message/")

    page = response.content.decode()
    assert _offered(response) == [f"Member{i:02d} Aalto" for i in range(20)]
    assert 'id="preview-customer-search"' in page and 'id="preview-customer-next"' in page


def test_search_finds_audience_members_beyond_the_first_page(
    client, marketing_user, campaign, large_audience, outsider
):
    client.force_login(marketing_user)
    url = f"/campaigns/{campaign.pk}/edit/message/"

    by_last_name = client.get(url, {"q": "zim"}, **PICKER)
    by_full_name = client.get(url, {"q": "Zoe Zim"}, **PICKER)
    by_email = client.get(url, {"q": "ZOE@shop"}, **PICKER)

    assert _offered(by_last_name) == ["Zoe Zimmer"]  # not Zack, who is not in the audience
    assert _offered(by_full_name) == ["Zoe Zimmer"]
    assert _offered(by_email) == ["Zoe Zimmer"]
    assert by_email.content.decode().startswith('<label for="preview-customer">')
    assert f'<option value="{large_audience["zoe"].pk}"' in by_email.content.decode()


def test_picker_pages_through_the_matches(client, marketing_user, campaign, large_audience):
    client.force_login(marketing_user)
    url = f"/campaigns/{campaign.pk}/edit/message/"
    first = client.get(url, {"q": "aalto"}, **PICKER)

    second = client.get(url, {"q": "aalto", "after": first.context["preview_page"].next_cursor},
                        **PICKER)  # fmt: skip
    third = client.get(url, {"q": "aalto", "after": second.context["preview_page"].next_cursor},
                       **PICKER)  # fmt: skip

    assert _offered(first) + _offered(second) + _offered(third) == [
        f"Member{i:02d} Aalto" for i in range(45)
    ]
    assert third.context["preview_page"].next_cursor is None
    assert 'id="preview-customer-first"' in third.content.decode()


def test_search_without_a_match_says_so(client, marketing_user, campaign, large_audience):
    client.force_login(marketing_user)

    response = client.get(f"/campaigns/{campaign.pk}/edit/message/", {"q": "nobody"}, **PICKER)

    assert "No one in the audience matches “nobody”" in response.content.decode()


def test_picker_queries_do_not_grow_with_the_audience(
    client, marketing_user, campaign, segment, django_assert_max_num_queries
):
    client.force_login(marketing_user)
    url = f"/campaigns/{campaign.pk}/edit/message/"
    members_add(segment, CustomerFactory.create_batch(3))
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get(url, {"q": "a"}, **PICKER)
    members_add(segment, CustomerFactory.create_batch(40))

    with django_assert_max_num_queries(len(few)):
        response = client.get(url, {"q": ""}, **PICKER)

    assert len(_offered(response)) == 20


def test_preview_with_the_chosen_audience_member(client, marketing_user, campaign, large_audience):
    client.force_login(marketing_user)
    zoe = large_audience["zoe"]

    response = client.get(f"/campaigns/{campaign.pk}/preview/",
                          {"variant": campaign.variants.get().pk, "customer": zoe.pk})  # fmt: skip

    assert response.status_code == 200
    assert "Hello Zoe" in response.content.decode()


def test_preview_refuses_a_customer_outside_the_audience(
    client, marketing_user, campaign, large_audience, outsider
):
    client.force_login(marketing_user)

    response = client.get(f"/campaigns/{campaign.pk}/preview/",
                          {"variant": campaign.variants.get().pk, "customer": outsider.pk})  # fmt: skip

    assert response.status_code == 404
    assert "Zack" not in response.content.decode()
    assert response.content.decode() == "customer: not in the campaign's audience."


def test_preview_api_refuses_a_customer_outside_the_audience(
    api_client_for, marketing_user, campaign, outsider
):
    api = api_client_for(marketing_user)

    response = api.post(f"/api/campaigns/{campaign.pk}/preview/", {"customer": outsider.pk},
                        format="json")  # fmt: skip

    assert response.status_code == 400
    assert response.json() == {"customer": ["no such customer in the campaign's audience"]}


def test_the_picker_finds_no_one_by_a_phone_number_a_marketer_may_not_read(
    client, marketing_user, superuser, campaign, segment
):
    zoe = CustomerFactory(first_name="Zoe", last_name="Zimmer", phone="+49 30 555 0199")
    members_add(segment, [zoe])
    url = f"/campaigns/{campaign.pk}/edit/message/"

    client.force_login(marketing_user)
    as_marketer = client.get(url, {"q": "+49 30 555"}, **PICKER)
    client.force_login(superuser)
    as_admin = client.get(url, {"q": "+49 30 555"}, **PICKER)

    assert _offered(as_marketer) == []
    assert _offered(as_admin) == ["Zoe Zimmer"]
