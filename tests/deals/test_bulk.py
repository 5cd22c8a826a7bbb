"""Bulk actions on the deal list (page and API): a new owner, deletion, an export, over the deals
ticked or every deal matching the filter, run set-based as a job, under the per-owner rules."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from crm.bulk import bulk_job_create, bulk_job_run
from crm.models import BulkJob
from deals.models import Activity, Deal, StageChange
from tests.customers.factories import AccountFactory
from tests.deals.factories import activity_make, deal_make

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def deals_of_two(pipeline, sales_user, other_sales_user, account_of_sam):
    olga_account = AccountFactory(owner=other_sales_user, name="Initech")
    mine = [deal_make(owner=sales_user, account=account_of_sam, name=f"Sam {i}") for i in range(3)]
    hers = [
        deal_make(owner=other_sales_user, account=olga_account, name=f"Olga {i}") for i in range(2)
    ]
    return mine, hers


def test_a_salesperson_takes_over_ticked_deals_only_where_they_may(
    deals_of_two, sales_user, api_client_for, django_capture_on_commit_callbacks
):
    mine, hers = deals_of_two
    client = api_client_for(sales_user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/deals/bulk/",
            {"action": "assign_owner", "ids": [d.pk for d in mine + hers], "owner": sales_user.pk},
            format="json",
        )

    assert response.status_code == 202, response.content
    job = BulkJob.objects.get(pk=response.json()["id"])
    assert (job.status, job.matched) == ("done", 3)
    # Olga's deals are not Sam's to take: they keep their owner.
    assert set(
        Deal.objects.filter(pk__in=[d.pk for d in hers]).values_list("owner", flat=True)
    ) == {hers[0].owner_id}
    progress = client.get(f"/api/deals/bulk/{job.pk}/").json()
    assert (progress["state"], progress["matched"]) == ("done", 3)


def test_a_salesperson_cannot_give_deals_to_a_colleague(
    deals_of_two, sales_user, other_sales_user, api_client_for
):
    mine, _ = deals_of_two

    response = api_client_for(sales_user).post(
        "/api/deals/bulk/",
        {"action": "assign_owner", "ids": [mine[0].pk], "owner": other_sales_user.pk},
        format="json",
    )

    assert response.status_code == 400
    assert "owner" in response.json()
    assert Deal.objects.get(pk=mine[0].pk).owner == sales_user


def test_only_an_administrator_deletes_in_bulk(deals_of_two, sales_user, api_client_for):
    mine, _ = deals_of_two

    response = api_client_for(sales_user).post(
        "/api/deals/bulk/", {"action": "delete", "ids": [mine[0].pk]}, format="json"
    )

    assert response.status_code == 403
    assert Deal.objects.filter(pk=mine[0].pk).exists()


def test_a_bulk_action_without_ids_or_filter_names_the_field(sales_user, api_client_for):
    response = api_client_for(sales_user).post(
        "/api/deals/bulk/", {"action": "export"}, format="json"
    )

    assert response.status_code == 400
    assert "ids" in response.json()


def test_an_export_by_filter_holds_only_what_the_salesperson_may_read(
    deals_of_two, sales_user, api_client_for
):
    response = api_client_for(sales_user).post(
        "/api/deals/bulk/", {"action": "export", "filter": {"q": ""}}, format="json"
    )

    body = b"".join(response.streaming_content).decode()
    assert response["Content-Type"].startswith("text/csv")
    names = sorted(line.split(",")[1] for line in body.splitlines()[1:])
    assert names == ["Sam 0", "Sam 1", "Sam 2"]


def test_marketing_exports_but_does_not_reassign(deals_of_two, marketing_user, api_client_for):
    mine, _ = deals_of_two
    client = api_client_for(marketing_user)

    export = client.post(
        "/api/deals/bulk/", {"action": "export", "ids": [mine[0].pk]}, format="json"
    )
    reassign = client.post(
        "/api/deals/bulk/",
        {"action": "assign_owner", "ids": [mine[0].pk], "owner": marketing_user.pk},
        format="json",
    )

    assert export.status_code == 200
    assert reassign.status_code == 403


def _deals_for_bulk(*, sales_user, account, count: int) -> None:
    for i in range(count):
        deal = deal_make(owner=sales_user, account=account, name=f"Bulk {i}")
        activity_make(author=sales_user, deal=deal)


@pytest.mark.parametrize("action", ["assign_owner", "delete"])
def test_a_bulk_job_issues_the_same_statements_for_3_or_30_deals(
    pipeline, sales_user, superuser, account_of_sam, action
):
    """Set-based: the statement count does not grow with the number of deals."""
    counts = []
    for size in (3, 30):
        Deal.objects.all().delete()
        _deals_for_bulk(sales_user=sales_user, account=account_of_sam, count=size)
        job = bulk_job_create(
            actor=superuser,
            list_name="deals",
            action=action,
            query={"q": "Bulk"},
            params={"owner": superuser.pk} if action == "assign_owner" else {},
        )
        with CaptureQueriesContext(connection) as queries:
            job = bulk_job_run(job=job)
        assert (job.status, job.changed) == ("done", size), job.message
        counts.append(len(queries))

    assert counts[0] == counts[1]
    if action == "delete":
        assert not Deal.objects.exists()
        assert not Activity.objects.exists() and not StageChange.objects.exists()
    else:
        assert set(Deal.objects.values_list("owner", flat=True)) == {superuser.pk}


def test_the_list_asks_before_reassigning_every_deal_matching_the_filter(
    deals_of_two, superuser, sales_user, django_capture_on_commit_callbacks
):
    client = _client(superuser)
    form = {
        "action": "assign_owner",
        "owner": sales_user.pk,
        "scope": "matching",
        "filter": "q=Olga",
    }

    asked = client.post("/deals/bulk/", form)
    assert asked.status_code == 200
    assert "Reassign 2 deals" in asked.content.decode()
    assert Deal.objects.filter(owner=sales_user).count() == 3  # nothing happened yet

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post("/deals/bulk/", {**form, "confirmed": "yes"})

    assert done.status_code == 302
    assert Deal.objects.filter(owner=sales_user).count() == 5
    page = client.get(done["Location"]).content.decode()
    assert 'data-testid="bulk-changed">2<' in page


def test_the_list_deletes_ticked_deals_after_confirmation(
    deals_of_two, superuser, django_capture_on_commit_callbacks
):
    mine, _ = deals_of_two
    client = _client(superuser)
    form = {"action": "delete", "scope": "selected", "ids": [mine[0].pk, mine[1].pk]}

    asked = client.post("/deals/bulk/", form)
    assert "Delete 2 deals" in asked.content.decode()
    assert Deal.objects.count() == 5

    with django_capture_on_commit_callbacks(execute=True):
        client.post("/deals/bulk/", {**form, "confirmed": "yes"})

    assert Deal.objects.count() == 3
    assert not Deal.objects.filter(pk__in=[mine[0].pk, mine[1].pk]).exists()


def test_the_list_shows_checkboxes_and_the_bulk_bar(deals_of_two, sales_user):
    html = _client(sales_user).get("/deals/").content.decode()

    assert 'data-testid="bulk-form"' in html
    assert html.count('name="ids"') == 3


def test_a_salesperson_does_not_see_a_colleagues_bulk_job(
    deals_of_two, sales_user, other_sales_user, api_client_for
):
    mine, _ = deals_of_two
    job = bulk_job_create(
        actor=sales_user,
        list_name="deals",
        action="assign_owner",
        ids=[mine[0].pk],
        params={"owner": sales_user.pk},
    )

    assert _client(other_sales_user).get(f"/deals/bulk/{job.pk}/").status_code == 404
    assert api_client_for(other_sales_user).get(f"/api/deals/bulk/{job.pk}/").status_code == 404
