"""Saved views of the lists: a named filter and sort, private to its owner or shared."""

import pytest
from django.test import Client

from crm.models import SavedView
from tests.deals.factories import deal_make

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_saved_view_brings_back_the_filter_and_sort(pipeline, sales_user, account_of_sam):
    deal_make(owner=sales_user, account=account_of_sam, name="Fleet")
    deal_make(owner=sales_user, account=account_of_sam, name="Boats")
    client = _client(sales_user)

    saved = client.post("/deals/views/", {"name": "Fleet only", "query": "q=Fleet&sort=-amount"})
    page = client.get(saved["Location"]).content.decode()

    assert saved.status_code == 302 and "q=Fleet" in saved["Location"]
    assert ">Fleet<" in page and ">Boats<" not in page
    assert "Fleet only" in client.get("/deals/").content.decode()


def test_a_private_view_is_seen_by_its_owner_only(sales_user, other_sales_user, superuser):
    SavedView.objects.create(owner=sales_user, list_name="deals", name="Sam private", query={})
    SavedView.objects.create(
        owner=sales_user, list_name="deals", name="Sam shared", query={}, shared=True
    )

    for user in (other_sales_user, superuser):
        page = _client(user).get("/deals/").content.decode()
        assert "Sam shared" in page and "Sam private" not in page
    assert "Sam private" in _client(sales_user).get("/deals/").content.decode()


def test_a_colleague_cannot_change_or_delete_a_shared_view(
    sales_user, other_sales_user, api_client_for
):
    view = SavedView.objects.create(
        owner=sales_user, list_name="deals", name="Shared", query={}, shared=True
    )
    client = api_client_for(other_sales_user)

    assert client.get(f"/api/saved-views/{view.pk}/").status_code == 200
    assert (
        client.patch(f"/api/saved-views/{view.pk}/", {"name": "Mine"}, format="json").status_code
        == 403
    )
    assert client.delete(f"/api/saved-views/{view.pk}/").status_code == 403
    assert _client(other_sales_user).post(f"/deals/views/{view.pk}/delete/").status_code == 302
    assert SavedView.objects.get(pk=view.pk).name == "Shared"


def test_a_saved_view_needs_a_name_and_plain_fields(sales_user, api_client_for):
    client = api_client_for(sales_user)

    nameless = client.post(
        "/api/saved-views/", {"list_name": "deals", "name": " ", "query": {}}, format="json"
    )
    twice = [
        client.post(
            "/api/saved-views/", {"list_name": "deals", "name": "A", "query": {}}, format="json"
        )
        for _ in range(2)
    ]

    assert nameless.status_code == 400 and "name" in nameless.json()
    assert [r.status_code for r in twice] == [201, 400] and "name" in twice[1].json()
