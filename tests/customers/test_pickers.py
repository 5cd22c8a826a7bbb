"""Search pickers: wherever a person chooses a customer (merge, a new data-subject request,
matching a request), they type part of a name and choose from the customers they may see; the
form still receives the id, as the API does."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

PICK = reverse("customers:customer_pick")


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tag(page: str, **wanted) -> dict:
    parser = _Tags()
    parser.feed(page)
    return next(a for _t, a in parser.tags if all(a.get(k) == v for k, v in wanted.items()))


def _offered(response) -> list[str]:
    return [str(c) for c in response.context["options"]]


def test_picker_offers_the_customers_a_salesperson_may_see_by_name(client, sales_user,
                                                                   other_sales_user):  # fmt: skip
    mine = CustomerFactory(first_name="Greta", last_name="Lindqvist", owner=sales_user,
                           email="greta@shop.test")  # fmt: skip
    CustomerFactory(first_name="Gregor", last_name="Lindner", owner=other_sales_user)
    client.force_login(sales_user)

    response = client.get(PICK, {"q": "lind"}, HTTP_HX_REQUEST="true",
                          HTTP_HX_TARGET="id_duplicate_options")  # fmt: skip

    assert _offered(response) == ["Greta Lindqvist"]
    page = response.content.decode()
    option = _tag(page, role="option")
    assert option["id"] == f"id_duplicate_options-{mine.pk}"
    assert (option["data-value"], option["data-label"]) == (str(mine.pk), "Greta Lindqvist")
    assert "greta@shop.test" in page


def test_picker_leaves_out_the_customer_being_merged_into(client, superuser):
    target = CustomerFactory(first_name="Anna", last_name="Berg")
    twin = CustomerFactory(first_name="Anna", last_name="Berg")
    client.force_login(superuser)

    response = client.get(PICK, {"q": "anna berg", "exclude": target.pk})

    assert [c.pk for c in response.context["options"]] == [twin.pk]


def test_picker_says_when_nothing_matches_and_answers_nothing_under_two_letters(client, superuser):
    CustomerFactory(first_name="Zoe")
    client.force_login(superuser)

    nothing = client.get(PICK, {"q": "qqqq"}).content.decode()
    short = client.get(PICK, {"q": "z"}).content.decode()

    assert "No customer found for “qqqq”." in nothing
    assert short.strip() == ""


def test_picker_never_finds_by_phone_for_a_marketer(client, marketing_user):
    CustomerFactory(first_name="Phone", last_name="Only", phone="+4930123456")
    client.force_login(marketing_user)

    response = client.get(PICK, {"q": "+4930123456"})

    assert _offered(response) == []


def test_staff_without_a_role_cannot_search(client, make_user):
    client.force_login(make_user("no.role"))

    assert client.get(PICK, {"q": "an"}).status_code == 403


def test_picker_statements_do_not_grow_with_the_matches(client, superuser,
                                                        django_assert_max_num_queries):  # fmt: skip
    for i in range(8):
        CustomerFactory(first_name=f"Match{i}", last_name="Many")
    client.force_login(superuser)
    client.get(PICK, {"q": "many"})

    with django_assert_max_num_queries(4):
        response = client.get(PICK, {"q": "many"})

    assert len(response.context["options"]) == 8


def test_merge_page_picks_the_duplicate_by_name(client, superuser):
    target = CustomerFactory(first_name="Anna", last_name="Berg")
    client.force_login(superuser)

    page = client.get(reverse("customers:customer_merge", args=[target.pk])).content.decode()

    box = _tag(page, id="id_duplicate_search")
    assert box["role"] == "combobox" and box["aria-controls"] == "id_duplicate_options"
    assert box["hx-get"] == f"{PICK}?exclude={target.pk}" and box["data-hx-key"]
    assert box["aria-describedby"] == "id_duplicate_helptext"
    assert _tag(page, id="id_duplicate")["type"] == "hidden"
    assert '<label for="id_duplicate_search">' in page


def test_merge_still_takes_the_chosen_id_and_shows_its_name_when_asked_again(client, superuser):
    target = CustomerFactory(first_name="Anna", last_name="Berg")
    twin = CustomerFactory(first_name="Anne", last_name="Berg")
    client.force_login(superuser)

    response = client.post(reverse("customers:customer_merge", args=[target.pk]),
                           {"duplicate": twin.pk})  # fmt: skip

    page = response.content.decode()
    assert response.status_code == 200  # the side-by-side confirmation
    assert "Anne Berg" in page


def test_new_data_subject_request_picks_the_customer_by_name(client, privacy_user):
    person = CustomerFactory(first_name="Greta", last_name="Sample")
    client.force_login(privacy_user)

    queue = client.get(reverse("privacy:request_create")).content.decode()
    invalid = client.post(reverse("privacy:request_create"),
                          {"customer_id": person.pk, "type": "nonsense", "law": "gdpr",
                           "received_on": "2026-01-05"}).content.decode()  # fmt: skip

    assert _tag(queue, id="id_customer_id_search")["role"] == "combobox"
    assert _tag(queue, id="id_customer_id")["type"] == "hidden"
    assert _tag(invalid, id="id_customer_id_search")["value"] == "Greta Sample"
    assert _tag(invalid, id="id_customer_id")["value"] == str(person.pk)
