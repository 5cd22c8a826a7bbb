"""The message preview: its customer picker searches the campaign's audience a page at a time,
and no customer outside the audience can be previewed, whatever id is sent."""

from html.parser import HTMLParser

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


# Stored markup in the preview ---------------------------------------------------------------------


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def _elements(html: str) -> list[tuple[str, dict]]:
    parser = _Elements()
    parser.feed(html)
    return parser.elements


def _policy(response) -> dict:
    policy = response.headers.get("Content-Security-Policy", "")
    return dict((d.strip().split(" ", 1) + [""])[:2] for d in policy.split(";") if d.strip())


@pytest.fixture
def hostile_member(campaign, segment):
    """An audience member who signed up with markup as their first name."""
    customer = CustomerFactory(
        first_name=f'<i hx-post="/campaigns/{campaign.pk}/cancel/" hx-trigger="load">x</i>',
        last_name="<img src=x onerror=alert(1)>",
        email="hostile@shop.test",
    )
    members_add(segment, [customer])
    return customer


def _preview(client, campaign, customer):
    return client.get(f"/campaigns/{campaign.pk}/preview/",
                      {"variant": campaign.variants.get().pk, "customer": customer.pk},
                      HTTP_HX_REQUEST="true")  # fmt: skip


def test_a_name_written_as_markup_is_previewed_as_text(
    client, marketing_user, campaign, hostile_member
):
    client.force_login(marketing_user)

    response = _preview(client, campaign, hostile_member)

    page = response.content.decode()
    tags = [tag for tag, _ in _elements(page)]
    assert response.status_code == 200
    assert "i" not in tags and "img" not in tags
    live = [(attrs.get("id"), a) for _, attrs in _elements(page) for a in attrs
            if a.startswith(("hx-", "on"))]  # fmt: skip
    # Only the product's own test-send form acts, never the customer's name.
    assert live == [("test-send-form", "hx-post"), ("test-send-form", "hx-target")]
    assert f"Hello &lt;i hx-post=&quot;/campaigns/{campaign.pk}/cancel/&quot;" in page
    assert "Hi &lt;i hx-post=" in page  # the text version, as text


def test_the_html_message_is_shown_in_a_sandboxed_frame_of_its_own(
    client, marketing_user, campaign, hostile_member
):
    campaign.variants.update(html='<p style="color: red">Hi {{ customer.first_name }}</p>'
                                  "<img src=x onerror=alert(1)>")  # fmt: skip
    client.force_login(marketing_user)

    fragment = _preview(client, campaign, hostile_member)

    frames = [attrs for tag, attrs in _elements(fragment.content.decode()) if tag == "iframe"]
    assert len(frames) == 1 and frames[0]["sandbox"] == ""  # no allow-scripts, no same origin
    assert "img" not in [tag for tag, _ in _elements(fragment.content.decode())]
    frame = client.get(frames[0]["src"])
    policy = _policy(frame)
    assert frame.status_code == 200 and frame["Content-Type"] == "text/html; charset=utf-8"
    assert "sandbox" in policy and policy["sandbox"] == ""
    assert policy["default-src"] == "'none'" and "script-src" not in policy
    assert policy["frame-ancestors"] == "'self'" and frame["X-Frame-Options"] == "SAMEORIGIN"
    document = frame.content.decode()
    assert '<p style="color: red">Hi &lt;i hx-post=' in document  # the customer's name as text
    assert "<img src=x onerror=alert(1)>" in document  # the author's markup: inert in the frame


def test_the_preview_frame_is_for_marketers_and_the_audience_only(
    client, marketing_user, sales_user, campaign, hostile_member, outsider
):
    url = f"/campaigns/{campaign.pk}/preview/frame/"
    variant = campaign.variants.get().pk
    client.force_login(sales_user)
    as_sales = client.get(url, {"variant": variant, "customer": hostile_member.pk})
    client.force_login(marketing_user)

    outside = client.get(url, {"variant": variant, "customer": outsider.pk})
    no_customer = client.get(url, {"variant": variant, "customer": "x"})

    assert as_sales.status_code == 403
    assert (outside.status_code, outside.content) == (
        404,
        b"customer: not in the campaign's audience.",
    )
    assert (no_customer.status_code, no_customer.content) == (
        400, b"customer: choose a customer to preview."
    )  # fmt: skip
