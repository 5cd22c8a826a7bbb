"""Bulk actions on the customer and account lists (crm/bulk.py, customers/bulk.py,
segments/bulk.py): a new owner, a tag added or removed, a static segment, deletion and an export,
over the rows ticked or every row matching the filter, set-based as a job with progress, under
the per-owner rules."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from crm.bulk import bulk_job_create, bulk_job_run
from crm.models import BulkJob
from customers.models import Account, Customer, Tag
from privacy.models import AuditEntry
from segments.models import Membership
from tests.customers.factories import AccountFactory, CustomerFactory
from tests.segments.factories import SegmentFactory, StaticSegmentFactory

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def customers_of_two(sales_user, other_sales_user):
    sams = [CustomerFactory(owner=sales_user, last_name=f"Sam{i}", country="DE") for i in range(3)]
    olgas = [
        CustomerFactory(owner=other_sales_user, last_name=f"Olga{i}", country="FR")
        for i in range(2)
    ]
    return sams, olgas


def test_a_salesperson_tags_only_their_own_customers(
    customers_of_two, sales_user, api_client_for, django_capture_on_commit_callbacks
):
    sams, olgas = customers_of_two

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(sales_user).post(
            "/api/bulk/",
            {"list": "customers", "action": "add_tag", "ids": [c.pk for c in sams + olgas],
             "tag": "Trade fair"},
            format="json",
        )  # fmt: skip

    assert response.status_code == 202, response.content
    job = BulkJob.objects.get(pk=response.json()["id"])
    assert (job.status, job.matched, job.changed) == ("done", 3, 3)
    assert (job.progress_done, job.progress_total) == (3, 3)
    tagged = set(Customer.objects.filter(tags__name="Trade fair").values_list("pk", flat=True))
    assert tagged == {c.pk for c in sams}


def test_removing_a_tag_from_every_customer_matching_the_filter(
    customers_of_two, superuser, django_capture_on_commit_callbacks
):
    sams, olgas = customers_of_two
    vip = Tag.objects.create(name="VIP")
    for customer in sams + olgas:
        customer.tags.add(vip)

    with django_capture_on_commit_callbacks(execute=True):
        job = bulk_job_create(
            actor=superuser,
            list_name="customers",
            action="remove_tag",
            query={"country": "DE"},
            params={"tag": "vip"},
        )
    job.refresh_from_db()

    assert (job.status, job.changed) == ("done", 3)
    still = set(Customer.objects.filter(tags=vip).values_list("pk", flat=True))
    assert still == {c.pk for c in olgas}


def test_a_salesperson_cannot_give_customers_to_a_colleague(
    customers_of_two, sales_user, other_sales_user, api_client_for
):
    sams, _ = customers_of_two

    response = api_client_for(sales_user).post(
        "/api/bulk/",
        {"list": "customers", "action": "assign_owner", "ids": [sams[0].pk],
         "owner": other_sales_user.pk},
        format="json",
    )  # fmt: skip

    assert response.status_code == 400
    assert "owner" in response.json()
    assert Customer.objects.get(pk=sams[0].pk).owner == sales_user


def test_an_administrator_reassigns_accounts_matching_a_search_in_batches(
    superuser, other_sales_user
):
    accounts = [AccountFactory(name=f"Acme {i}") for i in range(5)]
    AccountFactory(name="Globex")

    job = bulk_job_create(
        actor=superuser,
        list_name="accounts",
        action="assign_owner",
        query={"q": "Acme"},
        params={"owner": other_sales_user.pk},
    )
    BulkJob.objects.filter(pk=job.pk).update(status="queued")
    job = bulk_job_run(job=job, batch=2)

    assert (job.status, job.matched, job.changed) == ("done", 5, 5)
    assert (job.progress_done, job.progress_total) == (5, 5)
    owned = set(Account.objects.filter(owner=other_sales_user).values_list("pk", flat=True))
    assert owned == {a.pk for a in accounts}


@pytest.mark.parametrize("action", ["add_tag", "assign_owner", "delete"])
def test_a_customer_bulk_job_issues_the_same_statements_for_3_or_30_customers(
    superuser, sales_user, action
):
    """Set-based: within a batch, the statement count does not grow with the rows."""
    counts = []
    Tag.objects.create(name="Fair")
    for size in (3, 30):
        Customer.objects.all().delete()
        for i in range(size):
            CustomerFactory(owner=sales_user, last_name=f"Bulk{i}")
        params = {"add_tag": {"tag": "Fair"}, "assign_owner": {"owner": superuser.pk}}
        job = BulkJob.objects.create(
            list_name="customers",
            action=action,
            params=params.get(action, {}),
            by_filter=True,
            filter={"q": "Bulk"},
            created_by=superuser,
        )
        with CaptureQueriesContext(connection) as queries:
            job = bulk_job_run(job=job)
        assert (job.status, job.changed) == ("done", size), job.message
        counts.append(len(queries))

    assert counts[0] == counts[1]


def test_only_an_administrator_deletes_customers_in_bulk(
    customers_of_two, sales_user, api_client_for
):
    sams, _ = customers_of_two

    response = api_client_for(sales_user).post(
        "/api/bulk/", {"list": "customers", "action": "delete", "ids": [sams[0].pk]}, format="json"
    )

    assert response.status_code == 403
    assert Customer.objects.filter(pk=sams[0].pk).exists()


def test_the_customer_list_asks_before_deleting_and_writes_the_audit(
    customers_of_two, superuser, django_capture_on_commit_callbacks
):
    sams, olgas = customers_of_two
    client = _client(superuser)
    form = {"action": "delete", "scope": "selected", "ids": [sams[0].pk, sams[1].pk]}

    asked = client.post("/bulk/customers/", form)
    assert asked.status_code == 200
    assert "Delete 2 customers" in asked.content.decode()
    assert Customer.objects.count() == 5

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post("/bulk/customers/", {**form, "confirmed": "yes"})

    assert done.status_code == 302
    assert Customer.objects.count() == 3
    page = client.get(done["Location"]).content.decode()
    assert 'data-testid="bulk-changed">2<' in page
    assert AuditEntry.objects.filter(action="delete", object_kind="customer").exists()


def test_marketing_adds_customers_matching_a_filter_to_a_static_segment(
    customers_of_two, marketing_user, django_capture_on_commit_callbacks
):
    sams, _ = customers_of_two
    segment = StaticSegmentFactory(name="Fair visitors")
    client = _client(marketing_user)
    form = {
        "action": "add_to_segment",
        "segment": segment.pk,
        "scope": "matching",
        "filter": "country=DE",
    }

    asked = client.post("/bulk/customers/", form)
    assert "Add 3 customers" in asked.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/bulk/customers/", {**form, "confirmed": "yes"})

    members = set(Membership.objects.filter(segment=segment).values_list("customer", flat=True))
    assert members == {c.pk for c in sams}


def test_a_rule_segment_is_refused_as_a_bulk_target(
    customers_of_two, marketing_user, api_client_for
):
    sams, _ = customers_of_two
    rule_segment = SegmentFactory()

    response = api_client_for(marketing_user).post(
        "/api/bulk/",
        {"list": "customers", "action": "add_to_segment", "ids": [sams[0].pk],
         "segment": rule_segment.pk},
        format="json",
    )  # fmt: skip

    assert response.status_code == 400
    assert "segment" in response.json()


def test_sales_may_not_change_static_segments_in_bulk(customers_of_two, sales_user, api_client_for):
    sams, _ = customers_of_two
    segment = StaticSegmentFactory()

    response = api_client_for(sales_user).post(
        "/api/bulk/",
        {"list": "customers", "action": "add_to_segment", "ids": [sams[0].pk],
         "segment": segment.pk},
        format="json",
    )  # fmt: skip

    assert response.status_code == 403


def test_a_marketers_export_leaves_out_the_phone(customers_of_two, marketing_user, api_client_for):
    response = api_client_for(marketing_user).post(
        "/api/bulk/", {"list": "customers", "action": "export", "filter": {}}, format="json"
    )

    body = b"".join(response.streaming_content).decode()
    header = body.splitlines()[0].split(",")
    assert "email" in header and "phone" not in header and "birth_date" not in header
    assert len(body.splitlines()) == 6


def test_a_salespersons_account_export_holds_only_their_accounts(
    sales_user, other_sales_user, api_client_for
):
    AccountFactory(owner=sales_user, name="Mine")
    AccountFactory(owner=other_sales_user, name="Hers")

    response = api_client_for(sales_user).post(
        "/api/bulk/", {"list": "accounts", "action": "export", "filter": {}}, format="json"
    )

    rows = b"".join(response.streaming_content).decode().splitlines()
    assert [r.split(",")[1] for r in rows[1:]] == ["Mine"]


def test_a_bad_filter_names_the_field(sales_user, api_client_for):
    response = api_client_for(sales_user).post(
        "/api/bulk/",
        {"list": "customers", "action": "add_tag", "filter": {"owner": "x"}, "tag": "a"},
        format="json",
    )

    assert response.status_code == 400
    assert "filter" in response.json()


def test_a_colleague_does_not_follow_someone_elses_bulk_job(
    customers_of_two,
    sales_user,
    other_sales_user,
    api_client_for,
    django_capture_on_commit_callbacks,
):
    sams, _ = customers_of_two
    with django_capture_on_commit_callbacks(execute=True):
        job = bulk_job_create(
            actor=sales_user,
            list_name="customers",
            action="add_tag",
            ids=[sams[0].pk],
            params={"tag": "x"},
        )

    assert _client(other_sales_user).get(f"/bulk/jobs/{job.pk}/").status_code == 404
    assert api_client_for(other_sales_user).get(f"/api/bulk/{job.pk}/").status_code == 404
    assert api_client_for(sales_user).get(f"/api/bulk/{job.pk}/").json()["progress_done"] == 1


def test_the_customer_list_has_checkboxes_sortable_headers_a_count_and_saved_views(
    customers_of_two, sales_user
):
    client = _client(sales_user)

    html = client.get("/customers/?sort=name").content.decode()
    count = client.get("/customers/count/?country=DE").content.decode()

    assert 'data-testid="bulk-form"' in html and html.count('name="ids"') == 3
    assert 'aria-sort="ascending"' in html and "sort=-name" in html
    assert 'data-testid="saved-views"' in html
    assert 'data-testid="customer-count">3<' in count


def test_the_account_list_shows_its_total_and_sorts_by_name_descending(sales_user):
    for name in ("Alpha", "Beta", "Gamma"):
        AccountFactory(owner=sales_user, name=name)

    html = _client(sales_user).get("/customers/accounts/?sort=-name").content.decode()

    assert 'data-testid="account-count">3<' in html
    assert html.index("Gamma") < html.index("Beta") < html.index("Alpha")
    assert 'aria-sort="descending"' in html


def test_a_saved_view_of_the_customer_list_is_saved_and_applied(customers_of_two, sales_user):
    client = _client(sales_user)

    saved = client.post(
        "/views/customers/", {"name": "Germany", "query": "country=DE&sort=-lifetime_value"}
    )

    assert saved.status_code == 302
    assert "country=DE" in saved["Location"]
    html = client.get("/customers/").content.decode()
    assert ">Germany</a>" in html
